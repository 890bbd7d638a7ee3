"""Bounded cache of PyBullet texture ids per physics client.

PyBullet (3.2.x, checked) has no ``removeTexture``, and ``changeTexture`` does not reach the TinyRenderer used in
DIRECT mode, so neither freeing a single texture nor rewriting a slot works there: a texture's decoded pixels are
only released by ``resetSimulation``. The cache therefore bounds the number of textures loaded per client to
``capacity``; when one more is needed it calls the scene owner's ``flush(client_id)``, which must reset the
simulation and rebuild the scene, then forgets that client's ids and starts again. Without ``flush`` it raises
:class:`TextureCacheFull` rather than grow without bound. A visual randomizer calls :meth:`ensure_room` for all
the textures of one reset *before* applying any, so a flush never undoes half a scene.
(Measured with pybullet 3.2.7 in DIRECT mode: PyBullet also keeps each distinct PNG file's bytes, about the
PNG size per unique texture, across resets; that part is bounded by the texture set's ``n_unique``.)

Images are written once to ``cache_dir`` as PNG under a content-addressed name (PyBullet keeps file contents by
path, so a path must never be reused for other pixels), atomically so parallel env processes can share the dir.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from randomizers.textures.families import Image, TextureKey

Flush = Callable[[int], None]


class TextureCacheFull(RuntimeError):
    """The per-client texture budget is spent and no ``flush`` callback can free it."""


def default_cache_dir() -> Path:
    """``$SIM2REAL_TEXTURE_CACHE`` or ``<tmp>/sim2real-textures``."""
    env = os.environ.get("SIM2REAL_TEXTURE_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "sim2real-textures"


def write_png(path: Path, rgb: Image) -> None:
    """Write an RGB uint8 image as PNG atomically (temp file + ``os.replace``)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {rgb.dtype} {rgb.shape}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode PNG for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PyBulletTextureCache:
    """Texture ids per physics client with at most ``capacity`` textures loaded in each.

    Args:
        capacity: textures loaded per client before a flush (each costs about size*size*3 bytes decoded).
        cache_dir: where PNG files go (default :func:`default_cache_dir`).
        flush: ``flush(client_id)`` resets that client's simulation and rebuilds its scene; called when the
            budget is spent. After it returns every id this cache handed out for that client is invalid.
    """

    def __init__(self, capacity: int = 512, cache_dir: str | Path | None = None, flush: Flush | None = None) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.flush = flush
        self._flushers: dict[int, Flush] = {}
        self._ids: dict[int, dict[TextureKey, int]] = {}
        self.loads = 0
        self.flushes = 0

    def texture_id(self, client_id: int, key: TextureKey, image: Callable[[TextureKey], Image]) -> int:
        """PyBullet texture id of ``key`` in ``client_id``, loading ``image(key)`` on a miss."""
        ids = self._ids.setdefault(client_id, {})
        hit = ids.get(key)
        if hit is not None:
            return hit
        self.ensure_room(client_id, [key])
        ids = self._ids.setdefault(client_id, {})
        path = self.png_path(key, image)
        tex = p.loadTexture(str(path), physicsClientId=client_id)
        if tex < 0:
            raise RuntimeError(f"PyBullet could not load texture {path} in client {client_id}")
        self.loads += 1
        ids[key] = tex
        return tex

    def ensure_room(self, client_id: int, keys: Iterable[TextureKey]) -> bool:
        """Make room to load every key of ``keys`` not yet in ``client_id``, flushing if needed; True if it flushed."""
        wanted = set(keys)
        n = len(wanted - self._ids.get(client_id, {}).keys())
        if len(wanted) > self.capacity:
            raise ValueError(f"{len(wanted)} textures at once exceed the cache capacity {self.capacity}")
        if self.loaded(client_id) + n <= self.capacity:
            return False
        flush = self._flushers.get(client_id, self.flush)
        if flush is None:
            raise TextureCacheFull(
                f"{self.loaded(client_id)} textures loaded in physics client {client_id} (capacity "
                f"{self.capacity}); PyBullet cannot free one texture, so give a flush callback that resets the "
                f"scene or raise capacity")
        flush(client_id)
        self.flushes += 1
        self.forget(client_id)
        return True

    def register_flush(self, client_id: int, flush: Flush) -> None:
        """Use ``flush`` for ``client_id`` instead of the cache-wide one (a cache shared by several envs)."""
        self._flushers[client_id] = flush

    def png_path(self, key: TextureKey, image: Callable[[TextureKey], Image]) -> Path:
        """The PNG of ``key`` in the cache dir, written on first use."""
        path = self.cache_dir / f"{key.cache_name()}.png"
        if not path.exists():
            write_png(path, image(key))
        return path

    def forget(self, client_id: int) -> None:
        """Drop every id of ``client_id`` (call after ``resetSimulation`` or disconnect)."""
        self._ids.pop(client_id, None)

    def loaded(self, client_id: int) -> int:
        """Number of textures currently loaded through this cache in ``client_id``."""
        return len(self._ids.get(client_id, ()))
