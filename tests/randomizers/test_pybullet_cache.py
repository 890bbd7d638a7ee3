"""Bounded PyBullet texture cache: ids per client, content-addressed PNGs, flush at capacity, real rendering."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pybullet as p
import pytest

from randomizers.textures import TextureKey, TextureSet, generate
from randomizers.textures.pybullet_cache import PyBulletTextureCache, TextureCacheFull


@pytest.fixture
def client() -> Iterator[int]:
    cid = p.connect(p.DIRECT)
    yield cid
    p.disconnect(cid)


def _box(cid: int) -> int:
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[1, 1, 0.05], rgbaColor=[1, 1, 1, 1], physicsClientId=cid)
    return p.createMultiBody(baseMass=0, baseVisualShapeIndex=vis, physicsClientId=cid)


def _render_mean(cid: int) -> np.ndarray:
    view = p.computeViewMatrix([0, 0, 2], [0, 0, 0], [0, 1, 0], physicsClientId=cid)
    proj = p.computeProjectionMatrixFOV(40, 1, 0.1, 10, physicsClientId=cid)
    _, _, rgba, _, _ = p.getCameraImage(24, 24, view, proj, renderer=p.ER_TINY_RENDERER, physicsClientId=cid)
    return np.reshape(np.asarray(rgba, dtype=np.uint8), (24, 24, 4))[..., :3].reshape(-1, 3).mean(0)


def test_textures_render_and_hits_do_not_reload(client: int, tmp_path: Path) -> None:
    cache = PyBulletTextureCache(capacity=8, cache_dir=tmp_path)
    body = _box(client)
    keys = [TextureKey("solid", s, 16) for s in range(3)]
    rendered, colors = [], []
    for key in keys:
        tex = cache.texture_id(client, key, generate)
        p.changeVisualShape(body, -1, textureUniqueId=tex, physicsClientId=client)
        rendered.append(_render_mean(client))
        colors.append(generate(key)[0, 0].astype(float))
    # each rendered image follows its texture's color (shading scales it, channels keep their order)
    for r, c in zip(rendered, colors):
        assert np.corrcoef(r, c)[0, 1] > 0.95
    assert cache.loads == 3 and cache.loaded(client) == 3
    assert cache.texture_id(client, keys[1], generate) == cache.texture_id(client, keys[1], generate)
    assert cache.loads == 3
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_ids_are_per_client(tmp_path: Path) -> None:
    a, b = p.connect(p.DIRECT), p.connect(p.DIRECT)
    try:
        cache = PyBulletTextureCache(capacity=4, cache_dir=tmp_path)
        key = TextureKey("checker", 1, 16)
        cache.texture_id(a, TextureKey("solid", 9, 16), generate)
        cache.texture_id(a, key, generate)
        cache.texture_id(b, key, generate)
        assert cache.loaded(a) == 2 and cache.loaded(b) == 1 and cache.loads == 3
        assert len(list(tmp_path.glob("*.png"))) == 2  # the PNG is written once and shared
    finally:
        p.disconnect(a)
        p.disconnect(b)


def test_capacity_bounds_loaded_textures(client: int, tmp_path: Path) -> None:
    textures = TextureSet(n_unique=20, size=16)
    strict = PyBulletTextureCache(capacity=3, cache_dir=tmp_path)
    for i in range(3):
        strict.texture_id(client, textures.key(i), textures.image)
    with pytest.raises(TextureCacheFull, match=f"client {client}.*capacity 3"):
        strict.texture_id(client, textures.key(3), textures.image)

    resets: list[int] = []

    def flush(cid: int) -> None:
        p.resetSimulation(physicsClientId=cid)
        resets.append(cid)

    cache = PyBulletTextureCache(capacity=5, cache_dir=tmp_path, flush=flush)
    rng = np.random.default_rng(0)
    for _ in range(60):
        cache.texture_id(client, textures.sample(rng), textures.image)
        assert cache.loaded(client) <= 5
    assert cache.flushes == len(resets) >= 3 and set(resets) == {client}
    # after a flush textures load and render again
    body = _box(client)
    key = TextureKey("solid", 123, 16)
    tex = cache.texture_id(client, key, generate)
    p.changeVisualShape(body, -1, textureUniqueId=tex, physicsClientId=client)
    assert np.corrcoef(_render_mean(client), generate(key)[0, 0].astype(float))[0, 1] > 0.95


def test_ensure_room_flushes_before_a_batch(client: int, tmp_path: Path) -> None:
    flushed: list[int] = []
    cache = PyBulletTextureCache(capacity=4, cache_dir=tmp_path, flush=flushed.append)
    batch = [TextureKey("solid", s, 16) for s in range(3)]
    assert cache.ensure_room(client, batch) is False
    for k in batch:
        cache.texture_id(client, k, generate)
    assert cache.ensure_room(client, batch) is False  # all hits: nothing to load
    nxt = [TextureKey("solid", s, 16) for s in range(2, 5)]
    assert cache.ensure_room(client, nxt) is True and flushed == [client] and cache.loaded(client) == 0
    with pytest.raises(ValueError, match="exceed the cache capacity"):
        cache.ensure_room(client, [TextureKey("solid", s, 16) for s in range(5)])
