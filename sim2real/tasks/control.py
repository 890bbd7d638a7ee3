"""Action → joint command: end-effector delta (through IK) or joint-position delta.

Actions live in [-1, 1]. End-effector mode moves the tool by up to ``ee_step`` m per control step inside the
robot's workspace box; joint mode moves each arm joint by up to ``joint_step`` rad. When the task uses the gripper,
the last action component sets the opening fraction: -1 closed, +1 open. Otherwise the gripper is held closed.
"""
from __future__ import annotations

import abc

import numpy as np

from robots.spec import RobotSpec
from sim2real.hal.robot import Robot
from sim2real.hal.types import JointCommand, RobotState


class Controller(abc.ABC):
    """Turns a normalized action into a :class:`JointCommand` given the measured state."""

    def __init__(self, spec: RobotSpec, use_gripper: bool, base_position) -> None:
        self.spec = spec
        self.use_gripper = use_gripper
        self._gripper_mask = np.array([n not in spec.arm_joint_names for n in spec.joint_names])
        gripper = spec.end_effector.gripper
        self._grip_closed = gripper.targets(0.0) if gripper else None
        self._gripper = gripper

    @property
    @abc.abstractmethod
    def action_dim(self) -> int:
        """Number of action components."""

    @abc.abstractmethod
    def arm_targets(self, action: np.ndarray, state: RobotState, robot: Robot) -> np.ndarray:
        """Joint targets (spec order) for the arm part of ``action``."""

    def to_command(self, action: np.ndarray, state: RobotState, robot: Robot) -> JointCommand:
        targets = self.arm_targets(action, state, robot)
        if self._gripper is not None:
            opening = (action[-1] + 1.0) / 2.0 if self.use_gripper else 0.0
            targets[self._gripper_mask] = self._gripper.targets(opening) if self.use_gripper else self._grip_closed
        return JointCommand(targets)


class EndEffectorDelta(Controller):
    """Cartesian tool displacement of up to ``ee_step`` m per step, orientation fixed by the spec (if any)."""

    def __init__(self, spec: RobotSpec, use_gripper: bool, base_position, ee_step: float = 0.05) -> None:
        super().__init__(spec, use_gripper, base_position)
        self.ee_step = ee_step
        base = np.asarray(base_position)
        self.workspace_low = base + np.asarray(spec.workspace_low)
        self.workspace_high = base + np.asarray(spec.workspace_high)
        orientation = spec.end_effector.orientation
        self._orientation = None if orientation is None else np.asarray(orientation)

    @property
    def action_dim(self) -> int:
        return 3 + int(self.use_gripper)

    def arm_targets(self, action, state, robot) -> np.ndarray:
        target = np.clip(state.ee_position + self.ee_step * action[:3], self.workspace_low, self.workspace_high)
        return robot.inverse_kinematics(target, self._orientation, state)


class JointDelta(Controller):
    """Joint-position displacement of up to ``joint_step`` rad per step for every arm joint."""

    def __init__(self, spec: RobotSpec, use_gripper: bool, base_position, joint_step: float = 0.05) -> None:
        super().__init__(spec, use_gripper, base_position)
        self.joint_step = joint_step
        self._n_arm = len(spec.arm_joint_names)

    @property
    def action_dim(self) -> int:
        return self._n_arm + int(self.use_gripper)

    def arm_targets(self, action, state, robot) -> np.ndarray:
        targets = state.positions.copy()
        targets[~self._gripper_mask] += self.joint_step * action[: self._n_arm]
        return targets


CONTROLLERS = {"ee": EndEffectorDelta, "joints": JointDelta}


def make_controller(mode: str, spec: RobotSpec, use_gripper: bool, base_position) -> Controller:
    if mode not in CONTROLLERS or mode not in spec.control_modes:
        raise ValueError(f"control_mode must be one of {sorted(set(CONTROLLERS) & set(spec.control_modes))}, got {mode!r}")
    return CONTROLLERS[mode](spec, use_gripper, base_position)
