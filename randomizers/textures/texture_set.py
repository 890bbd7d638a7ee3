"""Texture sets: procedural train / held-out splits and user image directories, drawn lazily.

Procedural split rule (disjoint by construction): texture ``i`` of a set built with ``seed`` gets the procedural
seed ``(seed << 32) | (i << 1) | split_bit`` with ``split_bit = 0`` for train and ``1`` for held-out, so no key can
be in both splits. Whole families can be held out too: ``heldout_families=["cells", "dots"]`` removes them from the
training split (and from the parts that training mixes may combine).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from randomizers.textures.families import BASE_FAMILIES, FAMILIES, MIX, Image, TextureKey, generate

Split = Literal["train", "heldout"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MAX_SETS_SEED = 2**31


class TextureSetError(ValueError):
    """A texture set a user specified wrongly (unknown family, empty directory, unreadable image)."""


class TextureSource(Protocol):
    """What visual randomizers need from any texture set."""

    size: int

    def __len__(self) -> int: ...

    def key(self, index: int) -> TextureKey: ...

    def image(self, key: TextureKey) -> Image: ...

    def sample(self, rng: np.random.Generator) -> TextureKey: ...


def _check_size(size: int) -> int:
    if not isinstance(size, int) or size < 2 or size & (size - 1):
        raise TextureSetError(f"texture size must be a power of two >= 2, got {size!r}")
    return size


class _ImageLRU:
    """Small LRU of generated images (bounded so 10,000-texture sets do not sit in memory)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[TextureKey, Image] = OrderedDict()

    def get(self, key: TextureKey) -> Image | None:
        img = self._items.get(key)
        if img is not None:
            self._items.move_to_end(key)
        return img

    def put(self, key: TextureKey, img: Image) -> None:
        self._items[key] = img
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


class TextureSet:
    """``n_unique`` procedural textures of one split, generated on first use.

    Args:
        n_unique: number of distinct textures in this split (experiments compare 10 ... 10,000).
        families: families in play (default: all, including ``"mix"``).
        heldout_families: families only the held-out split uses; the training split never draws them.
        split: ``"train"`` or ``"heldout"``; the held-out split draws from ``heldout_families`` when given, else
            from the training families, always with seeds disjoint from the training split.
        size: side length in pixels (power of two).
        seed: base seed of the set (different seeds give different textures).
        cache_images: how many generated images to keep in memory.
    """

    def __init__(self, n_unique: int = 1000, families: Sequence[str] = FAMILIES,
                 heldout_families: Sequence[str] = (), split: Split = "train", size: int = 64, seed: int = 0,
                 cache_images: int = 256) -> None:
        if not isinstance(n_unique, int) or not 1 <= n_unique < 2**31:
            raise TextureSetError(f"n_unique must be an integer in [1, 2**31), got {n_unique!r}")
        if split not in ("train", "heldout"):
            raise TextureSetError(f"split must be 'train' or 'heldout', got {split!r}")
        if not 0 <= seed < _MAX_SETS_SEED:
            raise TextureSetError(f"seed must be in [0, 2**31), got {seed!r}")
        for fam in (*families, *heldout_families):
            if fam not in FAMILIES:
                raise TextureSetError(f"unknown texture family {fam!r}; known: {', '.join(FAMILIES)}")
        heldout = tuple(dict.fromkeys(heldout_families))
        train = tuple(f for f in dict.fromkeys(families) if f not in heldout)
        if not train:
            raise TextureSetError(f"every family is held out ({list(heldout)}); nothing left to train on")
        self.n_unique, self.split, self.size, self.seed = n_unique, split, _check_size(size), seed
        self.train_families, self.heldout_families = train, heldout
        self.families: tuple[str, ...] = train if split == "train" or not heldout else heldout
        # Mixes combine the split's own base families; failing that, any base family the split may see.
        own = tuple(f for f in self.families if f in BASE_FAMILIES)
        allowed = tuple(f for f in BASE_FAMILIES if split == "heldout" or f not in heldout)
        self.mix_parts: tuple[str, ...] = own or allowed
        if MIX in self.families and not self.mix_parts:
            raise TextureSetError("'mix' has no base family left to combine in the training split")
        self._images = _ImageLRU(cache_images)

    def other_split(self, n_unique: int | None = None) -> TextureSet:
        """The complementary split of the same set (same families and seed)."""
        return TextureSet(n_unique or self.n_unique, families=(*self.train_families, *self.heldout_families),
                          heldout_families=self.heldout_families,
                          split="heldout" if self.split == "train" else "train",
                          size=self.size, seed=self.seed, cache_images=self._images.capacity)

    def __len__(self) -> int:
        return self.n_unique

    def __iter__(self) -> Iterator[TextureKey]:
        return (self.key(i) for i in range(self.n_unique))

    def key(self, index: int) -> TextureKey:
        """Key of texture ``index`` (0 <= index < n_unique); pure function of (seed, split, index)."""
        if not 0 <= index < self.n_unique:
            raise IndexError(f"texture index {index} out of range [0, {self.n_unique})")
        bit = 0 if self.split == "train" else 1
        tex_seed = (self.seed << 32) | (index << 1) | bit
        pick = np.random.default_rng([self.seed, bit, index])
        family = self.families[int(pick.integers(len(self.families)))]
        parts = self.mix_parts if family == MIX else ()
        return TextureKey(family, tex_seed, self.size, parts)

    def image(self, key: TextureKey) -> Image:
        """The RGB uint8 image of ``key`` (generated, then kept in a small LRU)."""
        img = self._images.get(key)
        if img is None:
            img = generate(key)
            img.setflags(write=False)
            self._images.put(key, img)
        return img

    def sample(self, rng: np.random.Generator) -> TextureKey:
        """A uniformly drawn key of this split."""
        return self.key(int(rng.integers(self.n_unique)))


def _square_resize(img: Image, size: int) -> Image:
    """Centre-crop to a square and resize to ``size`` x ``size`` (area filter when shrinking)."""
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[top:top + side, left:left + side]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def read_image(path: Path, size: int) -> tuple[Image, str]:
    """Decode one user image to a ``size``-square RGB uint8 array; returns it with a hash of the file bytes.

    Raises :class:`TextureSetError` naming the file when it cannot be read or decoded.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise TextureSetError(f"cannot read texture image {path}: {err.strerror or err}") from None
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None or img.size == 0:
        raise TextureSetError(f"texture image {path} is corrupt or not a PNG/JPEG image")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(_square_resize(rgb, size)), hashlib.sha1(data).hexdigest()


class ImageDirTextureSet:
    """Textures from a directory of user images (png/jpg, any size), e.g. photos of the real lab table.

    Every image is decoded and validated when the set is built, centre-cropped and resized to ``size`` x ``size``.
    ``heldout_fraction`` of the files (chosen by ``seed``) form the held-out split; ``split`` picks which one
    this set is.

    Raises:
        TextureSetError: the directory is missing or holds no png/jpg files, or an image is unreadable
            (the message names the file).
    """

    def __init__(self, directory: str | Path, size: int = 64, split: Split = "train",
                 heldout_fraction: float = 0.0, seed: int = 0, recursive: bool = False) -> None:
        root = Path(directory)
        if not root.is_dir():
            raise TextureSetError(f"texture directory {root} does not exist or is not a directory")
        if not 0.0 <= heldout_fraction < 1.0:
            raise TextureSetError(f"heldout_fraction must be in [0, 1), got {heldout_fraction!r}")
        if split not in ("train", "heldout"):
            raise TextureSetError(f"split must be 'train' or 'heldout', got {split!r}")
        self.size, self.split, self.directory = _check_size(size), split, root
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise TextureSetError(f"texture directory {root} holds no .png/.jpg/.jpeg images")
        order = np.random.default_rng(seed).permutation(len(files))
        n_held = int(round(heldout_fraction * len(files)))
        if heldout_fraction > 0 and n_held == 0:
            n_held = 1
        if n_held >= len(files):
            raise TextureSetError(f"heldout_fraction {heldout_fraction} leaves no training images in {root}")
        chosen = sorted(order[:n_held]) if split == "heldout" else sorted(order[n_held:])
        if not chosen:
            raise TextureSetError(f"texture directory {root} has no images in the {split} split")
        self._keys: list[TextureKey] = []
        self._images: dict[TextureKey, Image] = {}
        for i in chosen:
            img, digest = read_image(files[i], size)
            img.setflags(write=False)
            key = TextureKey("file", int(i), size, path=str(files[i]), digest=digest)
            self._keys.append(key)
            self._images[key] = img

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[TextureKey]:
        return iter(self._keys)

    def key(self, index: int) -> TextureKey:
        return self._keys[index]

    def image(self, key: TextureKey) -> Image:
        try:
            return self._images[key]
        except KeyError:
            raise KeyError(f"texture {key.path or key} is not in this set ({self.directory})") from None

    def sample(self, rng: np.random.Generator) -> TextureKey:
        return self._keys[int(rng.integers(len(self._keys)))]
