"""Image corruptions for camera observations (OpenCV), each seeded by a ``numpy.random.Generator``.

All functions take and return ``HxWx3`` (or ``HxW``) ``uint8`` images and never modify their input.
"""
from __future__ import annotations

import cv2
import numpy as np


def _check(img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC uint8 image, got {img.dtype} {img.shape}")


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Add i.i.d. N(0, std^2) noise per pixel and channel; ``std`` in intensity levels (0-255)."""
    _check(img)
    if std < 0:
        raise ValueError(f"gaussian noise std must be >= 0, got {std}")
    if std == 0:
        return img.copy()
    noisy = img.astype(np.float32) + rng.normal(0.0, std, img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def salt_and_pepper(img: np.ndarray, rng: np.random.Generator, amount: float, salt_ratio: float = 0.5) -> np.ndarray:
    """Set a fraction ``amount`` of pixels to white (share ``salt_ratio``) or black, all channels at once."""
    _check(img)
    if not 0.0 <= amount <= 1.0 or not 0.0 <= salt_ratio <= 1.0:
        raise ValueError(f"amount and salt_ratio must be in [0, 1], got {amount}, {salt_ratio}")
    out = img.copy()
    hit = rng.random(img.shape[:2]) < amount
    salt = rng.random(img.shape[:2]) < salt_ratio
    out[hit & salt] = 255
    out[hit & ~salt] = 0
    return out


def blur(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` in pixels (``rng`` unused; kept for a uniform signature)."""
    _check(img)
    del rng
    if sigma < 0:
        raise ValueError(f"blur sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return img.copy()
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma), borderType=cv2.BORDER_REFLECT)


def jpeg(img: np.ndarray, rng: np.random.Generator, quality: int) -> np.ndarray:
    """JPEG artefacts: encode at ``quality`` (1-100) and decode (``rng`` unused)."""
    _check(img)
    del rng
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    color = img.ndim == 3 and img.shape[2] == 3
    src = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if color else img
    ok, buf = cv2.imencode(".jpg", src, [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED
    out = cv2.imdecode(buf, flag)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if color else out.reshape(img.shape)


def corrupt(img: np.ndarray, rng: np.random.Generator, *, gaussian_std: float = 0.0, salt_pepper: float = 0.0,
            blur_sigma: float = 0.0, jpeg_quality: int = 100) -> np.ndarray:
    """Apply blur, JPEG, gaussian noise and salt-and-pepper in that order (each skipped at its no-op value)."""
    out = img
    if blur_sigma > 0:
        out = blur(out, rng, blur_sigma)
    if jpeg_quality < 100:
        out = jpeg(out, rng, jpeg_quality)
    if gaussian_std > 0:
        out = gaussian_noise(out, rng, gaussian_std)
    if salt_pepper > 0:
        out = salt_and_pepper(out, rng, salt_pepper)
    return out if out is not img else img.copy()
