"""The ``Robot`` contract shared by the simulator and every hardware driver."""
from __future__ import annotations

import abc

import numpy as np

from robots.spec import RobotSpec
from sim2real.hal.device import Device
from sim2real.hal.types import JointCommand, RobotState


class Robot(Device):
    """A robot arm seen through the HAL.

    Implementations: :class:`sim2real.sim.PyBulletRobot` and the hardware drivers. Tasks only talk to this
    interface, so the same task code builds observations and commands in simulation and on hardware.
    """

    spec: RobotSpec

    @abc.abstractmethod
    def read_state(self) -> RobotState:
        """Latest measured state with a monotonic timestamp (s)."""

    @abc.abstractmethod
    def send_command(self, command: JointCommand) -> JointCommand:
        """Send joint targets; returns the command actually applied (after the backend's own limits)."""

    @abc.abstractmethod
    def inverse_kinematics(self, ee_position: np.ndarray, ee_orientation: np.ndarray | None,
                           state: RobotState) -> np.ndarray:
        """Joint positions (spec order) moving the end effector from ``state`` toward ``ee_position``.

        ``ee_position`` is m in the world frame, ``ee_orientation`` an optional quaternion (x, y, z, w).
        Gripper joints are returned unchanged from ``state``.
        """

    def take_control(self) -> None:
        """Called once before a control loop starts commanding, after its untimed preparation (policy warm-up):
        a driver whose actuators stopped on their own while the host was idle (a servo bus watchdog) makes them
        hold their present pose and re-arms them. Default: nothing to do."""

    def clamp_to_limits(self, positions: np.ndarray) -> np.ndarray:
        """Joint positions clipped to the spec's position limits."""
        return np.clip(positions, self.spec.lower, self.spec.upper)
