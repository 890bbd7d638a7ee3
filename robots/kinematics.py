"""Differential inverse kinematics shared by every backend (numpy only; hot path of EE control)."""
from __future__ import annotations

import math

import numpy as np


def orientation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (rad, world frame) turning quaternion ``current`` into ``target`` (both x, y, z, w)."""
    x1, y1, z1, w1 = target.tolist()
    x2, y2, z2, w2 = current.tolist()
    x2, y2, z2 = -x2, -y2, -z2  # conjugate of current
    w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    vx = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
    vy = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
    vz = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    if w < 0.0:  # shortest rotation
        vx, vy, vz, w = -vx, -vy, -vz, -w
    norm = math.sqrt(vx * vx + vy * vy + vz * vz)
    if norm < 1e-12:
        return np.zeros(3)
    scale = 2.0 * math.atan2(norm, w) / norm
    return np.array((vx * scale, vy * scale, vz * scale))


class DampedLeastSquaresIK:
    """One damped-least-squares step ``dq = Jᵀ (J Jᵀ + λ² I)⁻¹ e`` (Wampler) toward a position and orientation.

    Orientation rows are scaled by ``orientation_weight`` so that, on arms with fewer than six joints, an
    unreachable orientation costs less than a missed position. Buffers are preallocated for ``n_joints``.
    """

    def __init__(self, n_joints: int, damping: float = 0.02, orientation_weight: float = 0.5) -> None:
        self.orientation_weight = orientation_weight
        self._jacobian = np.empty((6, n_joints))
        self._error = np.empty(6)
        self._damping6 = np.eye(6) * damping * damping
        self._damping3 = np.eye(3) * damping * damping

    def step(self, linear: np.ndarray, angular: np.ndarray, position_error: np.ndarray,
             rotation_error: np.ndarray | None) -> np.ndarray:
        """Joint step (rad or m) for a position error (m) and optional rotation-vector error (rad)."""
        if rotation_error is None:
            return linear.T @ np.linalg.solve(linear @ linear.T + self._damping3, position_error)
        jacobian, error = self._jacobian, self._error
        jacobian[:3] = linear
        np.multiply(angular, self.orientation_weight, out=jacobian[3:])
        error[:3] = position_error
        np.multiply(rotation_error, self.orientation_weight, out=error[3:])
        return jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + self._damping6, error)
