"""Supervised training of :class:`PerceptionNet` on rendered (image, target positions) pairs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from sim2real.io import atomic_write_json
from sim2real.user_files import read_json
from sim2real.vision.model import Perception, PerceptionMeta, PerceptionNet

WEIGHTS, META = "perception.pt", "perception.json"


@dataclass
class FitResult:
    """Mean Euclidean localization error (m; averaged over targets) on the training and the validation images;
    per-axis mean absolute validation error (m, world x, y, z; averaged over targets)."""

    train_error: float
    val_error: float
    epochs: int
    val_axis_error: tuple[float, float, float] = (0.0, 0.0, 0.0)


def predict_all(perception: Perception, images: np.ndarray) -> np.ndarray:
    """Predicted positions (N, 3 × targets; m) in batches of 256 images."""
    return np.concatenate([perception.predict(images[i:i + 256]) for i in range(0, len(images), 256)])


def _errors(perception: Perception, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, T, 3) prediction errors (m)."""
    return (predict_all(perception, images) - targets).reshape(len(images), -1, 3)


def target_errors(perception: Perception, images: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean Euclidean localization error (m) of each target, by name."""
    errors = np.linalg.norm(_errors(perception, images, targets), axis=2).mean(axis=0)
    return {name: float(e) for name, e in zip(perception.meta.targets, errors)}


def localization_error(perception: Perception, images: np.ndarray, targets: np.ndarray) -> float:
    """Mean Euclidean distance (m) between predicted and true positions (averaged over targets)."""
    return float(np.mean(np.linalg.norm(_errors(perception, images, targets), axis=2)))


def axis_errors(perception: Perception, images: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
    """Mean absolute error (m) along world x, y and z (averaged over targets)."""
    return tuple(float(e) for e in np.abs(_errors(perception, images, targets)).mean(axis=(0, 1)))  # type: ignore


def _keypoint_loss(logits: torch.Tensor, keypoints: torch.Tensor, target: torch.Tensor,
                   sigma_cells: float = 1.0) -> torch.Tensor:
    """Cross-entropy between channel k's spatial softmax and a Gaussian (``sigma_cells`` feature cells) at keypoint
    k (a target in one view), plus the squared error of its soft-argmax position (normalized coordinates)."""
    views, (fh, fw) = target.shape[1], logits.shape[2:]
    gx = torch.linspace(-1, 1, fw).repeat(fh)
    gy = torch.linspace(-1, 1, fh).repeat_interleave(fw)
    sx, sy = sigma_cells * 2.0 / max(fw - 1, 1), sigma_cells * 2.0 / max(fh - 1, 1)
    d2 = ((gx - target[..., 0:1]) / sx) ** 2 + ((gy - target[..., 1:2]) / sy) ** 2  # (N, V, fh*fw)
    heat = torch.softmax(-0.5 * d2, dim=2)
    cross_entropy = -(heat * torch.log_softmax(logits[:, :views].flatten(2), dim=2)).sum(2).mean()
    return cross_entropy + 100.0 * torch.nn.functional.mse_loss(keypoints[:, :views], target)


def fit(images: np.ndarray, goals: np.ndarray, epochs: int = 30, seed: int = 0, val_fraction: float = 0.1,
        batch_size: int = 32, lr: float = 1e-3, channels: int = 16, keypoints: np.ndarray | None = None,
        progress: Callable[[int, int, str], None] | None = None, init: Perception | None = None,
        targets: tuple[str, ...] = ("goal",)) -> tuple[Perception, FitResult]:
    """Train with Adam on MSE of normalized positions (cosine learning-rate decay); the last ``val_fraction`` of
    the images is held out. ``goals`` (N, 3 × T) holds the positions of the T named ``targets`` (m). With
    ``keypoints`` (N, K, 2: each target in each camera view, see :func:`sim2real.vision.cameras.keypoint_targets`)
    channel k of the last layer is also taught to peak at keypoint k (a keypoint loss: from random weights the
    position term alone rarely finds a 5-pixel marker). ``init``: continue training that perception (its width,
    targets and normalization) instead of random weights. ``progress`` gets (epochs done, epochs, loss and validation
    error) after every epoch."""
    if goals.shape[1] != 3 * len(targets):
        raise ValueError(f"{len(targets)} targets need {3 * len(targets)} columns, got {goals.shape[1]}")
    torch.manual_seed(seed)
    n_val = max(1, int(len(images) * val_fraction))
    tr_x, tr_y, va_x, va_y = images[:-n_val], goals[:-n_val], images[-n_val:], goals[-n_val:]
    center = tr_y.mean(axis=0)
    scale = np.maximum(tr_y.std(axis=0), 1e-3)
    if init is not None:
        if tuple(init.meta.targets) != tuple(targets):
            raise ValueError(f"the perception to continue locates {init.meta.targets}, not {tuple(targets)}")
        meta, net = init.meta, init.net
        center, scale = np.asarray(meta.center, dtype=np.float32), np.asarray(meta.scale, dtype=np.float32)
    else:
        meta = PerceptionMeta(images.shape[1], images.shape[2], tuple(map(float, center)),
                              tuple(map(float, scale)), channels, tuple(targets))
        net = PerceptionNet(channels, len(targets))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    x, y = torch.as_tensor(tr_x), torch.as_tensor((tr_y - center) / scale, dtype=torch.float32)
    kp = None if keypoints is None else torch.as_tensor(keypoints[:-n_val], dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            goal, logits, points = net.outputs(x[idx])
            loss = torch.nn.functional.mse_loss(goal, y[idx])
            if kp is not None:
                loss = loss + _keypoint_loss(logits, points, kp[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if progress is not None:
            val = localization_error(Perception(net, meta), va_x, va_y)
            progress(epoch + 1, epochs, f"loss {total / len(x):.4f}, validation error {val * 100:.2f} cm")
    perception = Perception(net, meta)
    return perception, FitResult(localization_error(perception, tr_x, tr_y),
                                 localization_error(perception, va_x, va_y), epochs,
                                 axis_errors(perception, va_x, va_y))


def save(perception: Perception, out_dir: str, extra: dict[str, Any]) -> None:
    """``perception.pt`` (state_dict, written atomically) and ``perception.json`` (meta + ``extra``)."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, WEIGHTS + ".tmp")
    torch.save(perception.net.state_dict(), tmp)
    os.replace(tmp, os.path.join(out_dir, WEIGHTS))
    atomic_write_json(os.path.join(out_dir, META), {**perception.meta.as_dict(), **extra})


def load(out_dir: str) -> Perception:
    """The perception saved by :func:`save` (tensors only: ``weights_only=True``)."""
    meta = PerceptionMeta.from_dict(read_json(os.path.join(out_dir, META), "perception file"))
    return Perception.load(os.path.join(out_dir, WEIGHTS), meta)
