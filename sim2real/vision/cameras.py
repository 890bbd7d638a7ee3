"""Where world points appear in a camera image: the pinhole model PyBullet renders with (OpenGL look-at and a
perspective projection with a vertical field of view)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim2real.sim import Camera


def project(camera: Camera, points: np.ndarray) -> np.ndarray:
    """Continuous pixel coordinates (N, 2): ``u`` from the left edge, ``v`` from the top edge (pixels; a pixel's
    centre is at +0.5) of world points (N, 3; m) seen by ``camera``. Points behind the camera give garbage."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (camera.eye, camera.target, camera.up))
    forward = (target - eye) / np.linalg.norm(target - eye)
    side = np.cross(forward, up)
    side /= np.linalg.norm(side)
    true_up = np.cross(side, forward)
    rel = np.asarray(points, dtype=float).reshape(-1, 3) - eye
    depth = rel @ forward
    tan = np.tan(np.radians(camera.fov) / 2.0)
    ndc_x = (rel @ side) / depth / (tan * camera.width / camera.height)
    ndc_y = (rel @ true_up) / depth / tan
    return np.column_stack(((ndc_x + 1.0) / 2.0 * camera.width, (1.0 - ndc_y) / 2.0 * camera.height))


def keypoint_targets(cameras: Sequence[Camera], points: np.ndarray) -> np.ndarray:
    """(N, V, 2) positions of ``points`` in the image made of the V ``cameras``' views side by side, normalized
    like the spatial soft-argmax grid of :class:`~sim2real.vision.model.PerceptionNet`: x and y in [-1, 1] from the
    first to the last pixel centre of the joined image."""
    width, height = cameras[0].width * len(cameras), cameras[0].height
    out = []
    for k, camera in enumerate(cameras):
        uv = project(camera, points)
        u = uv[:, 0] + k * camera.width
        out.append(np.column_stack((-1.0 + 2.0 * (u - 0.5) / (width - 1), -1.0 + 2.0 * (uv[:, 1] - 0.5) / (height - 1))))
    return np.stack(out, axis=1).astype(np.float32)
