"""A kinematic-only model of a robot on a private PyBullet DIRECT client (no physics is ever stepped).

Hardware backends use it for forward kinematics (EE pose from measured joint positions), the EE velocity and
the same damped-least-squares IK step as the simulator. Positions m, angles rad, world frame with the robot base
at ``base_position``.
"""
from __future__ import annotations

import numpy as np
import pybullet as p

from robots.kinematics import DampedLeastSquaresIK, orientation_error
from robots.pybullet_builder import load_robot
from robots.spec import RobotSpec

_ORIGIN = [0.0, 0.0, 0.0]


class KinematicModel:
    """Forward kinematics, Jacobians and IK steps of ``spec`` placed at ``base_position`` (m, world frame)."""

    def __init__(self, spec: RobotSpec, base_position=(0.0, 0.0, 0.0)) -> None:
        self.spec = spec
        self.client = p.connect(p.DIRECT)
        self.handle = load_robot(self.client, spec, base_position)
        self._indices = list(self.handle.joint_indices)
        self._arm_mask = np.array([n in spec.arm_joint_names for n in spec.joint_names])
        self._spec_of_movable = np.argsort(self.handle.ik_columns)
        self._zeros = [0.0] * len(self._indices)
        self._ik = DampedLeastSquaresIK(int(self._arm_mask.sum()))

    def _set(self, positions: np.ndarray) -> None:
        for index, q in zip(self._indices, positions):
            p.resetJointState(self.handle.body, index, float(q), 0.0, physicsClientId=self.client)

    def forward(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(EE position m, EE quaternion x, y, z, w) for joint ``positions`` (spec order)."""
        self._set(positions)
        link = p.getLinkState(self.handle.body, self.handle.ee_link, computeForwardKinematics=1,
                              physicsClientId=self.client)
        return np.array(link[4]), np.array(link[5])

    def jacobian(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(linear 3×n, angular 3×n) Jacobians of the EE at ``positions``, columns in spec order (all joints)."""
        in_body_order = np.asarray(positions, dtype=float)[self._spec_of_movable].tolist()
        linear, angular = p.calculateJacobian(self.handle.body, self.handle.ee_link, _ORIGIN, in_body_order,
                                              self._zeros, self._zeros, physicsClientId=self.client)
        columns = self.handle.ik_columns
        return np.asarray(linear)[:, columns], np.asarray(angular)[:, columns]

    def ee_velocity(self, positions: np.ndarray, velocities: np.ndarray) -> np.ndarray:
        """EE linear velocity (m/s, world frame) = J(q) q̇."""
        return self.jacobian(positions)[0] @ np.asarray(velocities, dtype=float)

    def ik_step(self, ee_position: np.ndarray, ee_orientation: np.ndarray | None, positions: np.ndarray,
                current_position: np.ndarray, current_orientation: np.ndarray) -> np.ndarray:
        """One damped-least-squares step from ``positions`` toward the target pose; gripper joints unchanged."""
        linear, angular = self.jacobian(positions)
        rotation = None if ee_orientation is None else orientation_error(ee_orientation, current_orientation)
        step = self._ik.step(linear[:, self._arm_mask], angular[:, self._arm_mask],
                             np.asarray(ee_position) - current_position, rotation)
        solution = np.array(positions, dtype=float)
        solution[self._arm_mask] += step
        return solution

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
