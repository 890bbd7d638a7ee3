"""Procedural texture families (numpy / OpenCV), each a pure function of a seeded Generator.

Every generator returns an ``(size, size, 3)`` ``uint8`` RGB image. :func:`generate` makes a texture from its
:class:`TextureKey` alone, so the same key always gives the same pixels.
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Image = np.ndarray
Generator = Callable[[np.random.Generator, int], Image]


@dataclass(frozen=True)
class TextureKey:
    """Identity of one texture.

    Attributes:
        family: procedural family name, or ``"file"`` for a user image.
        seed: integer seed of a procedural texture (unused for files).
        size: side length in pixels (a power of two).
        parts: for ``"mix"``: the base families it may combine.
        path: for ``"file"``: the image path; ``digest`` then holds a hash of the file's bytes.
    """

    family: str
    seed: int
    size: int
    parts: tuple[str, ...] = ()
    path: str = ""
    digest: str = ""

    def cache_name(self) -> str:
        """Stable file-name stem unique to this key (content-addressed for files)."""
        text = f"{self.family}|{self.seed}|{self.size}|{','.join(self.parts)}|{self.digest}"
        return f"{self.family}-{hashlib.sha1(text.encode()).hexdigest()[:20]}"


def _colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random RGB colors, float in [0, 255]."""
    return rng.uniform(0.0, 255.0, size=(n, 3))


def _to_uint8(img: np.ndarray) -> Image:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): (x, y) arrays of shape (size, size)."""
    t = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(t, t)


def _lerp_colors(t: np.ndarray, colors: np.ndarray) -> Image:
    """Map t in [0, 1] through a piecewise-linear palette of ``len(colors)`` stops."""
    stops = np.linspace(0.0, 1.0, len(colors))
    channels = [np.interp(t, stops, colors[:, c]) for c in range(3)]
    return _to_uint8(np.stack(channels, axis=-1))


def solid(rng: np.random.Generator, size: int) -> Image:
    """One uniform random color."""
    return _to_uint8(np.broadcast_to(_colors(rng, 1)[0], (size, size, 3)))


def gradient(rng: np.random.Generator, size: int) -> Image:
    """Linear (random direction) or radial gradient through 2-3 random colors."""
    x, y = _coords(size)
    colors = _colors(rng, int(rng.integers(2, 4)))
    if rng.random() < 0.7:
        angle = rng.uniform(0.0, 2.0 * np.pi)
        t = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)
    else:
        cx, cy = rng.uniform(0.0, 1.0, 2)
        t = np.hypot(x - cx, y - cy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-12)
    return _lerp_colors(t, colors)


def checker(rng: np.random.Generator, size: int) -> Image:
    """Axis-aligned checkerboard of two random colors, 2-16 squares per side."""
    n = int(rng.integers(2, 17))
    colors = _colors(rng, 2)
    x, y = _coords(size)
    parity = (np.floor(x * n) + np.floor(y * n)).astype(int) % 2
    return _to_uint8(colors[parity])


def stripes(rng: np.random.Generator, size: int) -> Image:
    """Parallel stripes of 2-3 colors at a random angle, 2-24 periods, random duty cycle."""
    colors = _colors(rng, int(rng.integers(2, 4)))
    periods = rng.uniform(2.0, 24.0)
    angle = rng.uniform(0.0, np.pi)
    x, y = _coords(size)
    phase = ((x * np.cos(angle) + y * np.sin(angle)) * periods + rng.random()) % 1.0
    edges = np.sort(rng.uniform(0.0, 1.0, len(colors) - 1))
    return _to_uint8(colors[np.searchsorted(edges, phase)])


def _perlin_octave(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Gradient (Perlin) noise with ``cells`` lattice cells per side, values roughly in [-0.7, 0.7]."""
    angles = rng.uniform(0.0, 2.0 * np.pi, (cells + 1, cells + 1))
    gx, gy = np.cos(angles), np.sin(angles)
    pos = (np.arange(size) + 0.5) * cells / size
    i0 = np.minimum(pos.astype(int), cells - 1)
    f = pos - i0
    fy, fx = np.meshgrid(f, f, indexing="ij")
    iy, ix = np.meshgrid(i0, i0, indexing="ij")

    def corner(dy: int, dx: int) -> np.ndarray:
        return gx[iy + dy, ix + dx] * (fx - dx) + gy[iy + dy, ix + dx] * (fy - dy)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)

    u, v = fade(fx), fade(fy)
    top = corner(0, 0) + u * (corner(0, 1) - corner(0, 0))
    bottom = corner(1, 0) + u * (corner(1, 1) - corner(1, 0))
    return top + v * (bottom - top)


def perlin(rng: np.random.Generator, size: int) -> Image:
    """Fractal Perlin noise (3-6 octaves, persistence 0.4-0.7) through a 2-4 color palette."""
    octaves = int(rng.integers(3, 7))
    persistence = rng.uniform(0.4, 0.7)
    base = int(rng.integers(2, 6))
    noise = np.zeros((size, size))
    for o in range(octaves):
        cells = min(base * 2**o, size)
        noise += persistence**o * _perlin_octave(rng, size, cells)
    t = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-12)
    return _lerp_colors(t, _colors(rng, int(rng.integers(2, 5))))


def cells(rng: np.random.Generator, size: int) -> Image:
    """Voronoi cells around 6-64 random sites, each a random color, with optional dark borders."""
    n = int(rng.integers(6, 65))
    sites = rng.uniform(0.0, 1.0, (n, 2))
    colors = _colors(rng, n)
    x, y = _coords(size)
    d2 = (x[..., None] - sites[:, 0]) ** 2 + (y[..., None] - sites[:, 1]) ** 2
    two = np.argpartition(d2, 1, axis=-1)[..., :2]  # the two nearest sites, nearest first
    img = colors[two[..., 0]]
    if rng.random() < 0.5:
        nearest = np.take_along_axis(d2, two, axis=-1)
        gap = np.sqrt(nearest[..., 1]) - np.sqrt(nearest[..., 0])
        width = rng.uniform(0.5, 2.0) / size
        img = np.where((gap < width)[..., None], img * 0.25, img)
    return _to_uint8(img)


def dots(rng: np.random.Generator, size: int) -> Image:
    """Filled circles on a background: a jittered grid or random positions, 1-2 dot colors."""
    background = _colors(rng, 1)[0]
    dot_colors = _colors(rng, int(rng.integers(1, 3)))
    img = np.empty((size, size, 3), np.uint8)
    img[:] = _to_uint8(background)
    if rng.random() < 0.5:
        n = int(rng.integers(3, 13))
        g = (np.arange(n) + 0.5) / n
        centres = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) + rng.normal(0.0, 0.1 / n, (n * n, 2))
        radius = rng.uniform(0.15, 0.45) / n
        radii = np.full(len(centres), radius)
    else:
        count = int(rng.integers(5, 80))
        centres = rng.uniform(0.0, 1.0, (count, 2))
        radii = rng.uniform(0.01, 0.08, count)
    which = rng.integers(len(dot_colors), size=len(centres))
    for (cx, cy), r, k in zip(centres, radii, which):
        color = tuple(int(c) for c in _to_uint8(dot_colors[k]))
        cv2.circle(img, (int(cx * size), int(cy * size)), max(1, int(r * size)), color, -1, cv2.LINE_AA)
    return img


BASE_FAMILIES: dict[str, Generator] = {
    "solid": solid,
    "gradient": gradient,
    "checker": checker,
    "stripes": stripes,
    "perlin": perlin,
    "cells": cells,
    "dots": dots,
}
MIX = "mix"
FAMILIES: tuple[str, ...] = (*BASE_FAMILIES, MIX)


def mix(rng: np.random.Generator, size: int, parts: tuple[str, ...]) -> Image:
    """Two textures from ``parts`` (base families) blended through a hard, soft or noise mask."""
    if not parts or any(p not in BASE_FAMILIES for p in parts):
        raise ValueError(f"mix needs base families from {sorted(BASE_FAMILIES)}, got {list(parts)}")
    a, b = (BASE_FAMILIES[parts[int(rng.integers(len(parts)))]](rng, size).astype(np.float64) for _ in range(2))
    kind = int(rng.integers(3))
    x, y = _coords(size)
    if kind == 0:  # hard split along a random line
        angle = rng.uniform(0.0, 2.0 * np.pi)
        mask = ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle) > rng.uniform(-0.3, 0.3)).astype(float)
    elif kind == 1:  # constant alpha blend
        mask = np.full((size, size), rng.uniform(0.3, 0.7))
    else:  # noise threshold
        noise = _perlin_octave(rng, size, int(rng.integers(2, 8)))
        mask = (noise > 0).astype(float)
    return _to_uint8(a * mask[..., None] + b * (1.0 - mask[..., None]))


def family_seed(family: str, seed: int) -> list[int]:
    """Generator seed for (family, seed): stable across processes (crc32, not ``hash``)."""
    return [zlib.crc32(family.encode()), int(seed) & 0xFFFFFFFFFFFFFFFF]


def generate(key: TextureKey) -> Image:
    """The (size, size, 3) uint8 RGB image of a procedural key; same key, same pixels."""
    size = key.size
    if size < 2 or size & (size - 1):
        raise ValueError(f"texture size must be a power of two >= 2, got {size}")
    rng = np.random.default_rng(family_seed(key.family, key.seed))
    if key.family == MIX:
        return mix(rng, size, key.parts)
    try:
        fn = BASE_FAMILIES[key.family]
    except KeyError:
        raise ValueError(f"unknown texture family {key.family!r}; known: {', '.join(FAMILIES)}") from None
    return np.ascontiguousarray(fn(rng, size))
