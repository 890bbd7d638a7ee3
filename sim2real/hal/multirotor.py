"""The ``Multirotor`` HAL contract: state and typed setpoints shared by the simulator and flight-controller links.

Frames: world ENU (x east, y north, z up, m); body FLU (x forward, y left, z up). Quaternions are (x, y, z, w)
and rotate body vectors into the world frame. A MAVLink (NED/FRD) driver converts at its own boundary.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Union

import numpy as np

from robots.quadrotor import QuadrotorSpec
from sim2real.frames import quaternion_to_matrix
from sim2real.hal.device import Device


@dataclass
class MultirotorState:
    """One state estimate.

    ``position`` m and ``velocity`` m/s in the world (ENU) frame; ``quaternion`` (x, y, z, w) body→world;
    ``body_rates`` rad/s in the body (FLU) frame; ``motor_rpm`` the rotor speeds (rpm) when known, else NaN;
    ``timestamp`` s on a monotonic clock (simulated time in simulation); ``rotation_rows`` optionally caches the
    rotation matrix body→world as 9 row-major values (backends that have it; else computed from the quaternion).
    """

    position: np.ndarray
    velocity: np.ndarray
    quaternion: np.ndarray
    body_rates: np.ndarray
    motor_rpm: np.ndarray
    timestamp: float
    rotation_rows: tuple[float, ...] | np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rotation_rows is None:
            self.rotation_rows = quaternion_to_matrix(self.quaternion).ravel()

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation matrix body→world."""
        return np.asarray(self.rotation_rows, dtype=float).reshape(3, 3)


@dataclass(frozen=True)
class MotorRpm:
    """Per-rotor speed setpoints (rpm), rotor order of :mod:`robots.quadrotor`."""

    rpm: np.ndarray


@dataclass(frozen=True)
class Ctbr:
    """Collective thrust (N) and body rates (rad/s, body FLU) — what PX4/Crazyflie rate controllers accept."""

    thrust: float
    body_rates: np.ndarray


@dataclass(frozen=True)
class AttitudeThrust:
    """Collective thrust (N), roll and pitch (rad, ZYX Euler in ENU/FLU) and yaw rate (rad/s)."""

    thrust: float
    roll: float
    pitch: float
    yaw_rate: float


@dataclass(frozen=True)
class Velocity:
    """World-frame (ENU) velocity (m/s) and yaw rate (rad/s)."""

    velocity: np.ndarray
    yaw_rate: float


@dataclass(frozen=True)
class Position:
    """World-frame (ENU) position (m) to hold, and yaw rate (rad/s)."""

    position: np.ndarray
    yaw_rate: float = 0.0


Setpoint = Union[MotorRpm, Ctbr, AttitudeThrust, Velocity, Position]


class Multirotor(Device):
    """A multirotor seen through the HAL. Tasks only use this interface; ``safe_stop`` hovers in place in the air
    and stops the motors on the ground."""

    spec: QuadrotorSpec

    @abc.abstractmethod
    def read_state(self) -> MultirotorState:
        """Latest state estimate."""

    @abc.abstractmethod
    def send_command(self, setpoint: Setpoint) -> Setpoint:
        """Send a setpoint; returns the setpoint actually applied (after the backend's limits)."""
