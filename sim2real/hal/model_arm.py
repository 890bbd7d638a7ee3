"""Shared part of hardware arms: a private :class:`KinematicModel` for the end-effector pose, velocity and IK."""
from __future__ import annotations

import abc

import numpy as np

from robots.kinematic_model import KinematicModel
from sim2real.hal.robot import Robot
from sim2real.hal.types import JointCommand, RobotState


class ModelArm(Robot, abc.ABC):
    """A hardware arm measuring joints only; ``model`` is built from the spec's URDF at ``base_position``."""

    model: KinematicModel | None = None
    _last: RobotState | None = None

    def _make_state(self, q: np.ndarray, qd: np.ndarray, efforts: np.ndarray, timestamp: float) -> RobotState:
        """A full :class:`RobotState` (EE pose and velocity by forward kinematics); remembered as the last one."""
        assert self.model is not None, "connect() first"
        position, orientation = self.model.forward(q)
        self._last = RobotState(q, qd, efforts, position, orientation, self.model.ee_velocity(q, qd), timestamp)
        return self._last

    def safe_stop(self) -> None:
        """Command the last measured pose (hold)."""
        if self._last is not None:
            self.send_command(JointCommand(self._last.positions))

    def inverse_kinematics(self, ee_position, ee_orientation, state: RobotState) -> np.ndarray:
        """One damped-least-squares step from the measured ``state`` (as :class:`PyBulletRobot` does)."""
        assert self.model is not None, "connect() first"
        return self.model.ik_step(ee_position, ee_orientation, state.positions, state.ee_position,
                                  state.ee_orientation)
