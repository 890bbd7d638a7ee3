"""A small CNN regressing task positions (m, world frame: the goal, and the object of tasks that have one) from one
camera image."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class PerceptionMeta:
    """What a weights file needs to be used: image size (pixels), the names of the points it locates (``targets``,
    e.g. ``("goal",)`` or ``("object", "goal")``), their normalization (m; 3 values per target) and the width of
    the network (``channels`` of :class:`PerceptionNet`)."""

    height: int
    width: int
    center: tuple[float, ...]
    scale: tuple[float, ...]
    channels: int = 32
    targets: tuple[str, ...] = ("goal",)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PerceptionMeta:
        return cls(int(data["height"]), int(data["width"]), tuple(map(float, data["center"])),
                   tuple(map(float, data["scale"])), int(data.get("channels", 32)),
                   tuple(map(str, data.get("targets", ("goal",)))))


class PerceptionNet(nn.Module):
    """uint8 images (N, H, W, 3) → normalized target positions (N, 3 × ``n_targets``).

    Four conv layers (CoordConv input: pixel coordinates appended), then a spatial soft-argmax (Levine et al. 2016):
    each of the last layer's channels becomes the expected image position of its activation, which keeps where a
    small object is; those keypoints and the mean-pooled features feed an MLP head. Works at any image size; an
    image of several camera views side by side works too (training can tie channel k to a target in one view:
    :meth:`outputs`)."""

    def __init__(self, channels: int = 32, n_targets: int = 1) -> None:
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            nn.Conv2d(5, c, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=1, padding=1),
        )
        self.head = nn.Sequential(nn.Linear(2 * c * 3, 128), nn.ReLU(), nn.Linear(128, 3 * n_targets))

    @staticmethod
    def grid(n: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized x and y (N, 1, h, w), each in [-1, 1] from the first to the last pixel centre."""
        ys = torch.linspace(-1, 1, h, device=device).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=device).view(1, 1, 1, w).expand(n, 1, h, w)
        return xs, ys

    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(normalized targets (N, 3 × n_targets), the last layer's activations (N, C, fh, fw): logits of the spatial
        softmax, keypoints (N, C, 2): x, y in [-1, 1])."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        n, _, h, w = x.shape
        xs, ys = self.grid(n, h, w, x.device)
        f = self.features(torch.cat((x, xs, ys), dim=1))
        _, c, fh, fw = f.shape
        attention = torch.softmax(f.flatten(2), dim=2)
        gx, gy = self.grid(1, fh, fw, f.device)
        keypoints = torch.stack(((attention * gx.flatten(2)).sum(2), (attention * gy.flatten(2)).sum(2)), dim=2)
        goal = self.head(torch.cat((keypoints.transpose(1, 2).flatten(1), torch.relu(f).mean(dim=(2, 3))), dim=1))
        return goal, f, keypoints

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.outputs(images)[0]


class Perception:
    """A trained :class:`PerceptionNet` with its normalization: ``predict(images)`` → target positions (m),
    ``locate(images)`` → the same by target name."""

    def __init__(self, net: PerceptionNet, meta: PerceptionMeta) -> None:
        self.net, self.meta = net.eval(), meta
        self._center = np.asarray(meta.center, dtype=np.float32)
        self._scale = np.asarray(meta.scale, dtype=np.float32)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 → (N, 3 × targets) positions (m, world frame), targets in ``meta.targets`` order."""
        images = np.asarray(images)
        if images.shape[1:3] != (self.meta.height, self.meta.width):
            raise ValueError(f"perception expects {self.meta.height}x{self.meta.width} images, "
                             f"got {images.shape[1]}x{images.shape[2]}")
        out = self.net(torch.as_tensor(images)).numpy()
        return out * self._scale + self._center

    def locate(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(N, H, W, 3) uint8 → {target name: (N, 3) positions (m, world frame)}."""
        out = self.predict(images)
        return {name: out[:, 3 * k:3 * k + 3] for k, name in enumerate(self.meta.targets)}

    @classmethod
    def load(cls, weights: str, meta: PerceptionMeta) -> Perception:
        net = PerceptionNet(meta.channels, len(meta.targets))
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return cls(net, meta)
