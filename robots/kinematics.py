"""Differential inverse kinematics shared by every backend (numpy only)."""
from __future__ import annotations

import numpy as np


def orientation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (rad, world frame) turning quaternion ``current`` into ``target`` (both x, y, z, w)."""
    x1, y1, z1, w1 = target
    x2, y2, z2, w2 = -current[0], -current[1], -current[2], current[3]  # conjugate of current
    w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    vector = np.array((w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                       w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                       w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2))
    if w < 0.0:  # shortest rotation
        vector, w = -vector, -w
    norm = float(np.sqrt(vector @ vector))
    if norm < 1e-12:
        return np.zeros(3)
    return vector * (2.0 * np.arctan2(norm, w) / norm)


def damped_least_squares(jacobian: np.ndarray, error: np.ndarray, damping: float) -> np.ndarray:
    """Joint step ``dq = Jᵀ (J Jᵀ + λ² I)⁻¹ e`` (Wampler's damped least squares; λ = ``damping``)."""
    jjt = jacobian @ jacobian.T
    jjt[np.diag_indices_from(jjt)] += damping * damping
    return jacobian.T @ np.linalg.solve(jjt, error)


def pose_step(linear_jacobian: np.ndarray, angular_jacobian: np.ndarray, position_error: np.ndarray,
              rotation_error: np.ndarray | None, orientation_weight: float = 0.5, damping: float = 0.02) -> np.ndarray:
    """One damped-least-squares step toward a position (m) and, if given, an orientation (rotation vector, rad).

    The orientation rows are scaled by ``orientation_weight`` so that, for arms with fewer than six joints, an
    unreachable orientation costs less than a missed position.
    """
    if rotation_error is None:
        return damped_least_squares(linear_jacobian, position_error, damping)
    jacobian = np.vstack((linear_jacobian, orientation_weight * angular_jacobian))
    error = np.concatenate((position_error, orientation_weight * rotation_error))
    return damped_least_squares(jacobian, error, damping)
