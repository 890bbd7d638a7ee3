"""Data passed across the HAL: joint-space state and commands, in :class:`RobotSpec` joint order (SI units)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RobotState:
    """One measurement of an arm.

    ``positions`` rad/m, ``velocities`` rad/s or m/s, ``efforts`` N·m/N — all in spec joint order.
    ``ee_position`` (m), ``ee_orientation`` (quaternion x, y, z, w) and ``ee_velocity`` (m/s) are in the world
    frame. ``timestamp`` is seconds on a monotonic clock (simulated time in simulation).
    """

    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    ee_position: np.ndarray
    ee_orientation: np.ndarray
    ee_velocity: np.ndarray
    timestamp: float


@dataclass
class JointCommand:
    """Target joint positions (rad/m) in spec joint order, for position-controlled joints."""

    positions: np.ndarray
