"""``ArmEnv``: a task + a simulated robot in a PyBullet world, as a gymnasium goal-conditioned environment."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robots.registry import get_robot_spec
from sim2real.sim import Camera, PhysicsConfig, PyBulletRobot, PyBulletWorld
from sim2real.tasks import make_controller, make_task

OBS_MODES = ("state", "rgb")
RENDER_CAMERA = Camera(width=240, height=240, eye=(0.7, 0.0, 0.6), target=(-0.1, 0.0, 0.05))
# Two 64x64 views framing the SO-101 Reach workspace (goals: x -0.13..0.01, |y| <= 0.07, z 0.02..0.18 m), one from
# the front (+x) and one from the side (+y): each gives two coordinates, so no depth has to come from marker size.
SO101_FRONT_CAMERA = Camera(width=64, height=64, eye=(0.28, 0.0, 0.32), target=(-0.06, 0.0, 0.09), fov=42.0)
SO101_SIDE_CAMERA = Camera(width=64, height=64, eye=(-0.06, 0.40, 0.28), target=(-0.06, 0.0, 0.09), fov=42.0)


def _camera(value: Camera | dict | None, default: Camera) -> Camera:
    if value is None:
        return default
    return value if isinstance(value, Camera) else replace(default, **value)


ROBOT_RELOADS_PER_FLUSH = 64  # robot reloads (link centre-of-mass changes) between two scene rebuilds: ~30 MB


class ArmEnv(gym.Env):
    """Goal-conditioned arm environment.

    Observation (``obs_mode="state"``): dict ``observation`` (EE position m, EE velocity m/s, finger opening m
    when the gripper is used, object state), ``achieved_goal`` and ``desired_goal`` (m, world frame), so HER works.
    ``obs_mode="rgb"``: dict ``image`` (H, W, 3 uint8 from ``camera``; with ``extra_cameras`` their images follow
    side by side, (H, W * (1 + n), 3), each camera of the same size) and ``proprio`` (the robot part of
    ``observation``); visual randomizers move ``camera`` only. Actions are in [-1, 1] (see
    :mod:`sim2real.tasks.control`). Episodes end only by the time limit of the registered id;
    ``info["is_success"]`` reports success at every step. ``task_options`` go to the task's constructor.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, robot: str = "panda", task: str = "reach", obs_mode: str = "state", control_mode: str = "ee",
                 reward_type: str = "sparse", render_mode: str | None = None, camera: Camera | dict | None = None,
                 physics: PhysicsConfig | dict | None = None, distance_threshold: float | None = None,
                 extra_cameras: Sequence[Camera | dict] = (), object_state: str | None = None,
                 task_options: dict[str, Any] | None = None) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        spec = get_robot_spec(robot)
        self.spec = spec
        self.obs_mode, self.control_mode, self.render_mode = obs_mode, control_mode, render_mode
        self.camera = _camera(camera, Camera())
        self.extra_cameras = tuple(_camera(c, Camera()) for c in extra_cameras)
        if any((c.width, c.height) != (self.camera.width, self.camera.height) for c in self.extra_cameras):
            raise ValueError("extra_cameras must have the size of camera (their images are joined side by side)")
        self.task = make_task(task, spec, reward_type, distance_threshold, object_state, **(task_options or {}))
        physics = physics if isinstance(physics, PhysicsConfig) else PhysicsConfig(**(physics or {}))
        self.world = PyBulletWorld(physics)
        self._home_command = np.asarray(spec.home, dtype=float)
        self.scene_listeners: list[Callable[[], None]] = []  # called after rebuild_scene
        self.robot_listeners: list[Callable[[], None]] = []  # called after rebuild_robot reloaded the robot
        self._initial: int | None = None
        self._com_offset, self._reloads = (0.0, 0.0, 0.0), 0  # link centre-of-mass offset (m); robot reloads
        self._build_scene()
        self.controller = make_controller(control_mode, spec, self.task.uses_gripper, self.task.layout.robot_base)
        self.goal = np.zeros(3)
        self._state = self.robot.read_state()
        self.action_space = spaces.Box(-1.0, 1.0, (self.controller.action_dim,), np.float32)
        self.observation_space = self._make_observation_space()

    # --- scene ---------------------------------------------------------------------------------------------
    def _build_scene(self) -> None:
        self.robot = PyBulletRobot(self.world, self.task.spec, self.task.layout.robot_base, self._com_offset)
        self.robot.connect()
        self.task.setup(self.world)
        self._snapshot()

    def _snapshot(self) -> None:
        """Snapshot the world with the robot at home; reset restores it (retaken when the layout changed)."""
        if self._initial is not None:
            self.world.discard(self._initial)
        self.robot.reset_joints(self._home_command)
        self._initial = self.world.save()
        self._layout = self.world.layout_version

    def rebuild_scene(self) -> None:
        """Reset the simulation (frees every PyBullet body, shape and texture) and rebuild world, robot and task
        objects, then call every ``scene_listeners`` callback (randomizers re-apply their values there).

        Used to flush the texture cache: PyBullet frees textures only by ``resetSimulation``. Takes ~0.1 s.
        """
        self.world.reset_scene()
        self._initial = None  # resetSimulation dropped every snapshot
        self._build_scene()
        for listener in list(self.scene_listeners):
            listener()

    def rebuild_robot(self, com_offset, may_flush: bool = False) -> bool:
        """Reload the robot with every link's centre of mass moved by ``com_offset`` (m, link frames); see
        :meth:`PyBulletRobot.reloaded` (~50 ms on the Panda: the URDF's meshes are read again). The next reset
        retakes the world snapshot, ``robot_listeners`` re-apply textures and dynamics. Returns False (and does
        nothing) when the offset is unchanged.

        Every load leaks ~0.5 MB inside PyBullet until ``resetSimulation``, so with ``may_flush`` (only between
        episodes: it puts every body back at its start) each :data:`ROBOT_RELOADS_PER_FLUSH`-th reload rebuilds the
        whole scene instead (:meth:`rebuild_scene`; its listeners re-apply randomized values)."""
        offset = tuple(float(x) for x in com_offset)
        if offset == self.robot.com_offset:
            return False
        self._com_offset = offset
        self._reloads += 1
        if may_flush and self._reloads >= ROBOT_RELOADS_PER_FLUSH:
            self._reloads = 0
            self.rebuild_scene()
            return True
        self.robot = self.robot.reloaded(offset)
        self.robot.connect()
        self.world.body_replaced()
        for listener in list(self.robot_listeners):
            listener()
        return True

    # --- spaces and observations ---------------------------------------------------------------------------
    def _make_observation_space(self) -> spaces.Dict:
        robot_dim = self.task.robot_observation(self._state).shape[0]
        if self.obs_mode == "rgb":
            width = self.camera.width * (1 + len(self.extra_cameras))
            image = spaces.Box(0, 255, (self.camera.height, width, 3), np.uint8)
            return spaces.Dict({"image": image, "proprio": spaces.Box(-np.inf, np.inf, (robot_dim,), np.float32)})
        obs_dim = robot_dim + self.task.object_observation(self.world).shape[0]
        vector = lambda n: spaces.Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
        return spaces.Dict({"observation": vector(obs_dim), "achieved_goal": vector(3), "desired_goal": vector(3)})

    def _observe(self) -> dict[str, np.ndarray]:
        if self.obs_mode == "rgb":
            proprio = self.task.robot_observation(self._state).astype(np.float32)
            views = [self.world.render(c) for c in (self.camera, *self.extra_cameras)]
            return {"image": views[0] if len(views) == 1 else np.concatenate(views, axis=1), "proprio": proprio}
        return self.task.goal_observation(self._state, self.world, self.goal)

    # --- gymnasium API ---------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._layout != self.world.layout_version:  # bodies were added, removed or got new ids
            self._snapshot()
        self.world.restore(self._initial)
        self.robot.reset_joints(self._home_command)
        self.goal = self.task.reset(self.robot, self.world, self.np_random)
        self._state = self.robot.read_state()
        return self._observe(), {"is_success": self._success()}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if not np.isfinite(action).all():  # a policy bug: hold still rather than feed NaN to the physics engine
            action = np.nan_to_num(action, nan=0.0)
        command = self.controller.to_command(action, self._state, self.robot)
        self.robot.send_command(command)
        self.world.step()
        self._state = self.robot.read_state()
        obs = self._observe()
        # Reward from the float32 goals in the observation: identical to what HER recomputes when relabelling.
        achieved = obs["achieved_goal"] if "achieved_goal" in obs else self.task.achieved_goal(self._state, self.world)
        reward, success = self.task.reward_and_success(achieved, self.goal.astype(np.float32))
        return obs, reward, False, False, {"is_success": success}

    def set_arm_joints(self, positions: np.ndarray) -> None:
        """Teleport the robot's joints to ``positions`` (rad or m, spec order) at rest, held there; the next
        ``step`` starts from this state (used to render training images with the arm away from home)."""
        self.robot.reset_joints(np.asarray(positions, dtype=float))
        self._state = self.robot.read_state()

    def _success(self) -> bool:
        return bool(self.task.is_success(self.task.achieved_goal(self._state, self.world), self.goal))

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self.world.render(RENDER_CAMERA)
        return None

    def close(self) -> None:
        self.world.close()

    def describe(self) -> dict[str, Any]:
        """Handles and settings other components (randomizers, deployment) need, as plain data."""
        return {
            "robot": self.spec.name, "task": self.task.name, "obs_mode": self.obs_mode,
            "control_mode": self.control_mode, "camera": asdict(self.camera),
            "extra_cameras": [asdict(c) for c in self.extra_cameras],
            "object_state": getattr(self.task, "object_state", None),
            "physics": asdict(self.world.physics),
        }


class GoalArmEnv(ArmEnv):
    """State-observation variant exposing ``compute_reward`` so HER can relabel goals."""

    def compute_reward(self, achieved_goal, desired_goal, info) -> np.ndarray:
        """Vectorized reward (see :meth:`ArmTask.compute_reward`)."""
        return self.task.compute_reward(achieved_goal, desired_goal, info)


def make_arm_env(**kwargs: Any) -> ArmEnv:
    """Gymnasium entry point: goal-conditioned env for state observations, plain env for pixels."""
    return GoalArmEnv(**kwargs) if kwargs.get("obs_mode", "state") == "state" else ArmEnv(**kwargs)
