"""Procedural families, train / held-out splits, user image directories."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from randomizers.textures import (
    BASE_FAMILIES, FAMILIES, MIX, ImageDirTextureSet, TextureKey, TextureSet, TextureSetError, generate,
)


def _digest(img: np.ndarray) -> str:
    return hashlib.sha1(img.tobytes()).hexdigest()


@pytest.mark.parametrize("family", FAMILIES)
def test_family_is_deterministic_and_seed_dependent(family: str) -> None:
    parts = ("checker", "perlin") if family == MIX else ()
    a = generate(TextureKey(family, 7, 32, parts))
    b = generate(TextureKey(family, 7, 32, parts))
    c = generate(TextureKey(family, 8, 32, parts))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_family_character() -> None:
    def n_colors(img: np.ndarray) -> int:
        return len(np.unique(img.reshape(-1, 3), axis=0))

    for seed in range(5):
        assert n_colors(generate(TextureKey("solid", seed, 32))) == 1
        assert n_colors(generate(TextureKey("checker", seed, 32))) == 2
        assert 2 <= n_colors(generate(TextureKey("stripes", seed, 32))) <= 3
        perlin = generate(TextureKey("perlin", seed, 64)).astype(float)
        # spatially correlated: neighbours differ much less than the same pixels shuffled (white noise ~ 1.0)
        shuffled = np.random.default_rng(seed).permutation(perlin.reshape(-1, 3)).reshape(perlin.shape)
        ratio = np.abs(np.diff(perlin, axis=1)).mean() / np.abs(np.diff(shuffled, axis=1)).mean()
        assert ratio < 0.5
        assert n_colors(generate(TextureKey("cells", seed, 64))) >= 6


def test_bad_keys() -> None:
    with pytest.raises(ValueError, match="power of two"):
        generate(TextureKey("solid", 0, 48))
    with pytest.raises(ValueError, match="unknown texture family 'marble'"):
        generate(TextureKey("marble", 0, 32))
    with pytest.raises(ValueError, match="base families"):
        generate(TextureKey(MIX, 0, 32, ("mix",)))


def test_train_and_heldout_disjoint_by_seed() -> None:
    train = TextureSet(n_unique=300, size=16, seed=3)
    held = train.other_split()
    assert held.split == "heldout" and held.families == train.families
    train_keys, held_keys = set(train), set(held)
    assert len(train_keys) == 300 and len(held_keys) == 300
    assert not train_keys & held_keys
    assert not {k.seed for k in train_keys} & {k.seed for k in held_keys}
    train_pixels = {_digest(train.image(k)) for k in list(train_keys)[:100]}
    held_pixels = {_digest(held.image(k)) for k in list(held_keys)[:100]}
    assert not train_pixels & held_pixels


def test_heldout_families_never_in_training() -> None:
    train = TextureSet(n_unique=400, size=16, heldout_families=["cells", "dots"], seed=1)
    held = train.other_split(n_unique=200)
    train_fams = {k.family for k in train}
    assert train_fams == set(FAMILIES) - {"cells", "dots"}
    for k in train:
        assert not {"cells", "dots"} & set(k.parts)
    assert {k.family for k in held} == {"cells", "dots"}
    held_mix = TextureSet(n_unique=50, size=16, heldout_families=["mix", "perlin"], split="heldout")
    assert {k.family for k in held_mix} == {"mix", "perlin"}
    assert all(k.parts == ("perlin",) for k in held_mix if k.family == MIX)


def test_n_unique_bounds_distinct_textures_and_is_lazy() -> None:
    rng = np.random.default_rng(0)
    small = TextureSet(n_unique=10, size=16)
    drawn = {small.sample(rng) for _ in range(500)}
    assert len(drawn) == 10 and drawn == set(small)
    big = TextureSet(n_unique=10_000, size=16, cache_images=8)
    keys = [big.sample(rng) for _ in range(20)]
    for k in keys:
        big.image(k)
    assert len(big._images._items) == 8  # generated on demand, memory bounded
    with pytest.raises(IndexError):
        big.key(10_000)


def test_same_seed_same_set_other_seed_differs() -> None:
    a, b, c = TextureSet(50, size=16, seed=5), TextureSet(50, size=16, seed=5), TextureSet(50, size=16, seed=6)
    assert list(a) == list(b)
    assert not set(a) & set(c)
    assert np.array_equal(a.image(a.key(3)), b.image(b.key(3)))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(families=["solid", "marble"]), "unknown texture family 'marble'"),
        (dict(families=["cells"], heldout_families=["cells"]), "nothing left to train on"),
        (dict(size=100), "power of two"),
        (dict(n_unique=0), "n_unique"),
        (dict(split="test"), "split"),
    ],
)
def test_bad_texture_sets(kwargs: dict, needle: str) -> None:
    with pytest.raises(TextureSetError, match=needle):
        TextureSet(**kwargs)


def _write_images(directory: Path, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = (40 * i % 256, 255 - 30 * i % 256, 100)
        ext = ".png" if i % 2 else ".jpg"
        cv2.imwrite(str(directory / f"img{i:02d}{ext}"), img[..., ::-1])
        images.append(img)
    return images


def test_image_directory_loader(tmp_path: Path) -> None:
    originals = _write_images(tmp_path, 6)
    (tmp_path / "notes.txt").write_text("not an image")
    textures = ImageDirTextureSet(tmp_path, size=32)
    assert len(textures) == 6
    for i, key in enumerate(textures):
        img = textures.image(key)
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        expected = originals[i][0, 0].astype(int)
        assert np.abs(img.reshape(-1, 3).mean(0) - expected).max() < 6  # RGB order kept (JPEG tolerance)
    rng = np.random.default_rng(0)
    assert textures.sample(rng) in set(textures)


def test_image_directory_split(tmp_path: Path) -> None:
    _write_images(tmp_path, 10)
    train = ImageDirTextureSet(tmp_path, size=16, heldout_fraction=0.3, seed=2)
    held = ImageDirTextureSet(tmp_path, size=16, heldout_fraction=0.3, seed=2, split="heldout")
    assert len(train) == 7 and len(held) == 3
    train_paths, held_paths = {k.path for k in train}, {k.path for k in held}
    assert not train_paths & held_paths and len(train_paths | held_paths) == 10


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    _write_images(tmp_path, 3)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(TextureSetError, match="broken.png"):
        ImageDirTextureSet(tmp_path)
    bad.write_bytes(b"")
    with pytest.raises(TextureSetError, match="broken.png"):
        ImageDirTextureSet(tmp_path)


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("no images here")
    with pytest.raises(TextureSetError, match=f"{tmp_path}.*no .png/.jpg"):
        ImageDirTextureSet(tmp_path)
    with pytest.raises(TextureSetError, match="does not exist"):
        ImageDirTextureSet(tmp_path / "nope")


def test_base_families_cover_the_issue() -> None:
    assert {"solid", "gradient", "checker", "stripes", "perlin", "cells", "dots"} <= set(BASE_FAMILIES)
    assert MIX in FAMILIES
