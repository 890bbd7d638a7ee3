"""Procedural texture library, user-image texture sets and a bounded PyBullet texture cache."""
from randomizers.textures.families import BASE_FAMILIES, FAMILIES, MIX, TextureKey, generate
from randomizers.textures.texture_set import (
    ImageDirTextureSet, TextureSet, TextureSetError, TextureSource, read_image,
)

__all__ = [
    "BASE_FAMILIES", "FAMILIES", "MIX", "TextureKey", "generate",
    "ImageDirTextureSet", "TextureSet", "TextureSetError", "TextureSource", "read_image",
]
