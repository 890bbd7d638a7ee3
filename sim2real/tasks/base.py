"""Goal-conditioned arm tasks: goals, observations, rewards and success, independent of the backend."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from robots.spec import RobotSpec
from sim2real.hal.robot import Robot
from sim2real.hal.scene import Scene
from sim2real.hal.types import RobotState


@dataclass(frozen=True)
class Layout:
    """Where a robot stands and where its goals and objects appear (m, world frame; table top at z = 0).

    Goals and objects are drawn uniformly in ``center ± xy_range / 2`` (x, y); goal heights in ``z_range``.
    """

    robot_base: tuple[float, float, float]
    center: tuple[float, float]
    xy_range: float
    z_range: tuple[float, float]
    object_size: float  # m, cube edge
    object_mass: float  # kg
    distance_threshold: float  # m, success radius


class ArmTask(abc.ABC):
    """One goal-conditioned task. Subclasses define the scene objects, goal sampling and achieved goal.

    Rewards follow the goal-conditioned convention (vectorized for HER): sparse ``-(d > threshold)`` or
    dense ``-d`` with ``d`` the distance (m) between achieved and desired goal.
    """

    name: str = ""
    uses_gripper: bool = False

    def __init__(self, spec: RobotSpec, layout: Layout, reward_type: str = "sparse",
                 distance_threshold: float | None = None) -> None:
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
        if self.uses_gripper and not spec.has_gripper:
            raise ValueError(f"task {self.name} needs a gripper; robot {spec.name} has none")
        self.spec = spec
        self.layout = layout
        self.reward_type = reward_type
        self.distance_threshold = layout.distance_threshold if distance_threshold is None else distance_threshold
        self._gripper_mask = np.array([n not in spec.arm_joint_names for n in spec.joint_names])
        gripper = spec.end_effector.gripper
        self._grip_closed = np.asarray(gripper.closed) if gripper else None
        self._grip_span = (np.asarray(gripper.opened) - self._grip_closed) if gripper else None

    # --- scene ---------------------------------------------------------------------------------------------
    def setup(self, scene: Scene) -> None:
        """Create the task's objects once; the default adds a green goal marker."""
        scene.add_marker("goal", 0.02, (0.1, 0.9, 0.1, 0.35))

    @abc.abstractmethod
    def reset(self, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        """Place objects, sample and show a goal; returns the desired goal (m, world frame)."""

    def sample_xy(self, rng: np.random.Generator) -> np.ndarray:
        half = self.layout.xy_range / 2.0
        return np.asarray(self.layout.center) + rng.uniform(-half, half, size=2)

    # --- observation ---------------------------------------------------------------------------------------
    def gripper_opening(self, state: RobotState) -> float:
        """Opening fraction in [0, 1] (mean over gripper joints); 0 without a gripper."""
        if self._grip_closed is None:
            return 0.0
        return float(np.mean((state.positions[self._gripper_mask] - self._grip_closed) / self._grip_span))

    @property
    def robot_observation_size(self) -> int:
        """Length of :meth:`robot_observation`: 3 + 3, plus 1 when the gripper is used."""
        return 7 if self.uses_gripper else 6

    def robot_observation(self, state: RobotState) -> np.ndarray:
        """EE position (m), EE velocity (m/s) and, when the gripper is used, finger opening (m)."""
        if self.uses_gripper:
            width = self.gripper_opening(state) * self.spec.end_effector.gripper.max_width
            return np.concatenate((state.ee_position, state.ee_velocity, (width,)))
        return np.concatenate((state.ee_position, state.ee_velocity))

    def object_observation(self, scene: Scene) -> np.ndarray:
        """Task-specific object state; empty for tasks without objects."""
        return np.zeros(0)

    @abc.abstractmethod
    def achieved_goal(self, state: RobotState, scene: Scene) -> np.ndarray:
        """What the goal is compared with (m, world frame)."""

    def goal_observation(self, state: RobotState, scene: Scene, goal: np.ndarray) -> dict[str, np.ndarray]:
        """The goal-conditioned observation (float32): ``observation`` (robot part + object part), ``achieved_goal``
        and ``desired_goal`` (m). The one builder used in simulation and on hardware."""
        return {
            "observation": np.concatenate((self.robot_observation(state), self.object_observation(scene))).astype(np.float32),
            "achieved_goal": self.achieved_goal(state, scene).astype(np.float32),
            "desired_goal": np.asarray(goal, dtype=np.float32),
        }

    # --- reward --------------------------------------------------------------------------------------------
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: object = None) -> np.ndarray:
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        if self.reward_type == "sparse":
            return -(distance > self.distance_threshold).astype(np.float32)
        return -distance.astype(np.float32)

    def reward_and_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> tuple[float, bool]:
        """Reward and success of one step, from one distance computation (the env's hot path)."""
        distance = float(np.linalg.norm(achieved_goal - desired_goal))
        success = distance < self.distance_threshold
        if self.reward_type == "sparse":
            return (0.0 if success else -1.0), success
        return -distance, success

    def is_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return distance < self.distance_threshold
