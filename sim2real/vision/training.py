"""Supervised training of :class:`PerceptionNet` on rendered (image, goal) pairs."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sim2real.io import atomic_write_json
from sim2real.vision.model import Perception, PerceptionMeta, PerceptionNet

WEIGHTS, META = "perception.pt", "perception.json"


@dataclass
class FitResult:
    """Mean Euclidean localization error (m) on the training and the validation images."""

    train_error: float
    val_error: float
    epochs: int


def localization_error(perception: Perception, images: np.ndarray, goals: np.ndarray) -> float:
    """Mean Euclidean distance (m) between predicted and true goals."""
    preds = np.concatenate([perception.predict(images[i:i + 256]) for i in range(0, len(images), 256)])
    return float(np.mean(np.linalg.norm(preds - goals, axis=1)))


def fit(images: np.ndarray, goals: np.ndarray, epochs: int = 30, seed: int = 0, val_fraction: float = 0.1,
        batch_size: int = 32, lr: float = 1e-3) -> tuple[Perception, FitResult]:
    """Train with Adam on MSE of normalized goals; the last ``val_fraction`` of the images is held out."""
    torch.manual_seed(seed)
    n_val = max(1, int(len(images) * val_fraction))
    tr_x, tr_y, va_x, va_y = images[:-n_val], goals[:-n_val], images[-n_val:], goals[-n_val:]
    center = tr_y.mean(axis=0)
    scale = np.maximum(tr_y.std(axis=0), 1e-3)
    meta = PerceptionMeta(images.shape[1], images.shape[2], tuple(map(float, center)), tuple(map(float, scale)))
    net = PerceptionNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    x, y = torch.as_tensor(tr_x), torch.as_tensor((tr_y - center) / scale, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    perception = Perception(net, meta)
    return perception, FitResult(localization_error(perception, tr_x, tr_y),
                                 localization_error(perception, va_x, va_y), epochs)


def save(perception: Perception, out_dir: str, extra: dict[str, Any]) -> None:
    """``perception.pt`` (state_dict, written atomically) and ``perception.json`` (meta + ``extra``)."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, WEIGHTS + ".tmp")
    torch.save(perception.net.state_dict(), tmp)
    os.replace(tmp, os.path.join(out_dir, WEIGHTS))
    atomic_write_json(os.path.join(out_dir, META), {**perception.meta.as_dict(), **extra})


def load(out_dir: str) -> Perception:
    """The perception saved by :func:`save` (tensors only: ``weights_only=True``)."""
    with open(os.path.join(out_dir, META), encoding="utf-8") as handle:
        meta = PerceptionMeta.from_dict(json.load(handle))
    return Perception.load(os.path.join(out_dir, WEIGHTS), meta)
