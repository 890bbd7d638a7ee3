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


# --- ENU/FLU (this toolkit, PyBullet) <-> NED/FRD (MAVLink, PX4, ArduPilot) -----------------------------------------
# World: ENU is x east, y north, z up; NED is x north, y east, z down. Body: FLU is x forward, y left, z up; FRD is
# x forward, y right, z down. Both changes of basis are their own inverse.
_ENU_TO_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
_FLU_TO_FRD = np.diag([1.0, -1.0, -1.0])


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def enu_to_ned(v: np.ndarray) -> np.ndarray:
    """A world vector (position m, velocity m/s, ...) from ENU to NED: (e, n, u) → (n, e, -u)."""
    x, y, z = np.asarray(v, dtype=float)
    return np.array([y, x, -z])


def ned_to_enu(v: np.ndarray) -> np.ndarray:
    """A world vector from NED to ENU: (n, e, d) → (e, n, -d)."""
    return enu_to_ned(v)


def flu_to_frd(v: np.ndarray) -> np.ndarray:
    """A body vector (body rates rad/s, specific force m/s², ...) from FLU to FRD: (x, y, z) → (x, -y, -z)."""
    x, y, z = np.asarray(v, dtype=float)
    return np.array([x, -y, -z])


def frd_to_flu(v: np.ndarray) -> np.ndarray:
    """A body vector from FRD to FLU."""
    return flu_to_frd(v)


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w ≥ 0, of a (3, 3) rotation matrix (Shepperd's method)."""
    m = np.asarray(r, dtype=float).reshape(3, 3)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def euler_to_quaternion(euler: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of roll, pitch, yaw (rad; intrinsic z-y-x, inverse of ``quaternion_to_euler``)."""
    roll, pitch, yaw = (0.5 * float(a) for a in euler)
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy])


def attitude_enu_flu_to_ned_frd(q: np.ndarray) -> np.ndarray:
    """Attitude quaternion (x, y, z, w) body FLU → world ENU, re-expressed as body FRD → world NED."""
    return matrix_to_quaternion(_ENU_TO_NED @ quaternion_to_matrix(q) @ _FLU_TO_FRD)


def attitude_ned_frd_to_enu_flu(q: np.ndarray) -> np.ndarray:
    """Attitude quaternion (x, y, z, w) body FRD → world NED, re-expressed as body FLU → world ENU."""
    return matrix_to_quaternion(_ENU_TO_NED @ quaternion_to_matrix(q) @ _FLU_TO_FRD)


def wxyz(q: np.ndarray) -> list[float]:
    """A quaternion (x, y, z, w) in MAVLink's (w, x, y, z) order."""
    x, y, z, w = (float(c) for c in q)
    return [w, x, y, z]


def xyzw(q_wxyz) -> np.ndarray:
    """A MAVLink (w, x, y, z) quaternion in this toolkit's (x, y, z, w) order."""
    w, x, y, z = (float(c) for c in q_wxyz)
    return np.array([x, y, z, w])
