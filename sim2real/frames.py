"""Rotations and frame conversions in one tested place (quaternions are x, y, z, w)."""
from __future__ import annotations

import numpy as np


def quaternion_to_euler(q: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw (rad; intrinsic z-y-x, as PyBullet's ``getEulerFromQuaternion``) of a unit quaternion."""
    x, y, z, w = q
    roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return np.array([roll, pitch, yaw])
