"""Labelled renders: camera images of an arm env (with the launch file's randomizers) and the goal position."""
from __future__ import annotations

from typing import Any

import numpy as np


def render_dataset(config: dict[str, Any], n_images: int, seed: int, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """``n_images`` images (N, H, W, 3 uint8) of the env's camera after ``reset(seed=seed + i)`` and the goal
    positions (N, 3; m, world frame). ``config`` must have ``obs_mode: rgb``; its randomizers are applied."""
    from sim2real.train import make_env_fn

    env = make_env_fn({**config, "curriculum": None}, rank=0)()
    try:
        images, goals = [], []
        for i in range(n_images):
            obs, _ = env.reset(seed=seed + i)
            images.append(obs["image"])
            goals.append(np.asarray(env.unwrapped.goal, dtype=np.float32))
            if progress is not None and (i + 1) % 500 == 0:
                progress(f"rendered {i + 1}/{n_images} images")
    finally:
        env.close()
    return np.stack(images), np.stack(goals)
