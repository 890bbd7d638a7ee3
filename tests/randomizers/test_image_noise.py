"""Image corruptions: each changes the image in its own measurable way, seeded, input untouched."""
from __future__ import annotations

import numpy as np
import pytest

from randomizers.image_noise import blur, corrupt, gaussian_noise, jpeg, salt_and_pepper
from randomizers.textures import TextureKey, generate


@pytest.fixture
def img() -> np.ndarray:
    return generate(TextureKey("checker", 3, 64))


def _high_freq(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x.astype(float), axis=1)).mean())


def test_gaussian_noise_std_and_seed(img: np.ndarray) -> None:
    mid = np.full((64, 64, 3), 128, np.uint8)
    out = gaussian_noise(mid, np.random.default_rng(0), 10.0)
    assert abs((out.astype(float) - 128).std() - 10.0) < 0.5
    assert np.array_equal(out, gaussian_noise(mid, np.random.default_rng(0), 10.0))
    assert not np.array_equal(out, gaussian_noise(mid, np.random.default_rng(1), 10.0))
    assert np.array_equal(gaussian_noise(img, np.random.default_rng(0), 0.0), img)


def test_salt_and_pepper_fraction(img: np.ndarray) -> None:
    mid = np.full((100, 100, 3), 128, np.uint8)
    out = salt_and_pepper(mid, np.random.default_rng(0), 0.2, salt_ratio=0.25)
    white = (out == 255).all(-1).mean()
    black = (out == 0).all(-1).mean()
    assert abs(white - 0.05) < 0.01 and abs(black - 0.15) < 0.015
    assert ((out == 128).all(-1) | (out == 255).all(-1) | (out == 0).all(-1)).all()


def test_blur_removes_high_frequencies(img: np.ndarray) -> None:
    soft = blur(img, np.random.default_rng(0), 2.0)
    assert _high_freq(soft) < 0.6 * _high_freq(img)
    assert abs(soft.astype(float).mean() - img.astype(float).mean()) < 2.0


def test_jpeg_quality_orders_error() -> None:
    img = generate(TextureKey("cells", 5, 64))
    rng = np.random.default_rng(0)
    err = [np.abs(jpeg(img, rng, q).astype(float) - img).mean() for q in (5, 30, 95)]
    assert err[0] > err[1] > err[2] > 0
    gray = img[..., 0].copy()
    assert jpeg(gray, rng, 50).shape == gray.shape
    color = np.zeros((16, 16, 3), np.uint8)
    color[..., 0] = 200  # red stays red: channel order preserved
    assert jpeg(color, rng, 90)[..., 0].mean() > 150 > jpeg(color, rng, 90)[..., 2].mean()


def test_input_never_modified_and_bad_args(img: np.ndarray) -> None:
    before = img.copy()
    rng = np.random.default_rng(0)
    out = corrupt(img, rng, gaussian_std=5, salt_pepper=0.05, blur_sigma=1.0, jpeg_quality=40)
    assert np.array_equal(img, before) and out.shape == img.shape and not np.array_equal(out, img)
    assert np.array_equal(corrupt(img, rng), img)
    for call in (lambda: gaussian_noise(img, rng, -1), lambda: salt_and_pepper(img, rng, 1.5),
                 lambda: blur(img, rng, -1), lambda: jpeg(img, rng, 0),
                 lambda: blur(img.astype(np.float32), rng, 1)):
        with pytest.raises(ValueError):
            call()
