"""Reach, Push and PickAndPlace (goal and object conventions as in panda-gym, for any arm)."""
from __future__ import annotations

import numpy as np

from sim2real.frames import quaternion_to_euler
from sim2real.hal.robot import Robot
from sim2real.hal.scene import Scene
from sim2real.hal.types import RobotState
from sim2real.tasks.base import ArmTask


class Reach(ArmTask):
    """Move the end effector to a goal point in the air; gripper held closed."""

    name = "reach"

    def reset(self, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        low, high = self.layout.z_range
        goal = np.append(self.sample_xy(rng), rng.uniform(low, high))
        scene.set_pose("goal", goal)
        return goal

    def achieved_goal(self, state: RobotState, scene: Scene) -> np.ndarray:
        return state.ee_position


OBJECT_STATES = ("full", "position")


class _ObjectTask(ArmTask):
    """A task around one cube: the achieved goal is the cube's position.

    ``object_state`` is what the observation says about the cube: ``full`` (position, orientation, velocities: a
    simulator's view) or ``position`` (what a camera or a tracker gives: the policy a vision pipeline drives)."""

    def __init__(self, *args, object_state: str = "full", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if object_state not in OBJECT_STATES:
            raise ValueError(f"object_state must be one of {OBJECT_STATES}, got {object_state!r}")
        self.object_state = object_state

    def setup(self, scene: Scene) -> None:
        super().setup(scene)
        half = self.layout.object_size / 2.0
        scene.add_box("object", (half, half, half), self.layout.object_mass, (0.1, 0.3, 0.9, 1.0))

    def _place_object(self, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        position = np.append(self.sample_xy(rng), self.layout.object_size / 2.0)
        scene.set_pose("object", position)
        return position

    def object_observation(self, scene: Scene) -> np.ndarray:
        """Cube position (m), orientation (roll, pitch, yaw rad), linear (m/s) and angular (rad/s) velocity;
        the position alone with ``object_state="position"``."""
        position, orientation = scene.pose("object")
        if self.object_state == "position":
            return np.asarray(position, dtype=float)
        linear, angular = scene.velocity("object")
        return np.concatenate((position, quaternion_to_euler(orientation), linear, angular))

    def achieved_goal(self, state: RobotState, scene: Scene) -> np.ndarray:
        return scene.pose("object")[0]


class Push(_ObjectTask):
    """Push a cube across the table to a goal on the table; gripper held closed."""

    name = "push"

    def reset(self, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        start = self._place_object(scene, rng)
        goal = np.append(self.sample_xy(rng), self.layout.object_size / 2.0)
        while np.linalg.norm(goal[:2] - start[:2]) < self.distance_threshold:  # never start solved
            goal[:2] = self.sample_xy(rng)
        scene.set_pose("goal", goal)
        return goal


class PickAndPlace(_ObjectTask):
    """Grasp a cube and bring it to a goal on the table or in the air."""

    name = "pick_and_place"
    uses_gripper = True

    def reset(self, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        start = self._place_object(scene, rng)
        low, high = self.layout.z_range
        height = self.layout.object_size / 2.0 + (rng.uniform(low, high) if rng.random() < 0.7 else 0.0)
        goal = np.append(self.sample_xy(rng), height)
        while np.linalg.norm(goal - start) < self.distance_threshold:
            goal[:2] = self.sample_xy(rng)
        scene.set_pose("goal", goal)
        return goal
