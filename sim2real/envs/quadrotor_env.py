"""``QuadrotorEnv``: a quadrotor task (:mod:`sim2real.tasks.quadrotor`) on the simulated :class:`SimMultirotor`
(:mod:`sim2real.sim.multirotor`), as a gymnasium environment.

The task defines the observation (``obs_mode="state"``: its 25-value vector; ``obs_mode="rgb"``: dict ``image``,
the onboard camera H×W×3 uint8, and ``proprio``, that vector), the action → setpoint map of ``action_mode``
(``rpm``, ``ctbr``, ``attitude``, ``velocity``; actions in [-1, 1]^4), the reward, success and termination: a crash
(ground contact after take-off, or the body z axis pointing below the horizon) or leaving the arena
(``info["termination"]`` says which). Rewards and success are scored on the true (noise-free) state, observations
on the state estimate. Time limits are the registered ``max_episode_steps`` (truncation).
"""
from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
from gymnasium import spaces

from robots.quadrotor import get_quadrotor_spec
from sim2real.sim.multirotor import SimMultirotor
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig
from sim2real.tasks.quadrotor import (QUAD_ENVS, REFERENCES, QuadrotorTask, make_quadrotor_task,
                                      position_error)


class QuadrotorEnv(gym.Env):
    """See the module docstring. The task (:class:`~sim2real.tasks.quadrotor.QuadrotorTask`, ``self.task``) owns
    observation, action → setpoint, reward, success and termination; this env adds the simulated vehicle, the
    episode's start pose and images. ``self.goal`` is the episode's layout (one row)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 48}

    def __init__(self, vehicle: str = "crazyflie", task: str = "hover", action_mode: str = "ctbr",
                 obs_mode: str = "state", control_mode: str | None = None, reward_type: str = "dense",
                 render_mode: str | None = None, physics: QuadPhysicsConfig | dict | None = None,
                 image_size: int = 64, task_kwargs: dict | None = None) -> None:
        action_mode = action_mode if control_mode is None else control_mode  # launch files say control_mode
        if obs_mode not in ("state", "rgb"):
            raise ValueError(f"obs_mode must be 'state' or 'rgb', got {obs_mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if task not in REFERENCES:
            raise ValueError(f"task must be one of {tuple(REFERENCES)}, got {task!r}")
        self.spec_q = get_quadrotor_spec(vehicle)
        self.task: QuadrotorTask = make_quadrotor_task(task, self.spec_q, action_mode, reward_type,
                                                       **(task_kwargs or {}))
        self.action_mode, self.obs_mode = action_mode, obs_mode
        self.reward_type, self.render_mode = reward_type, render_mode
        config = physics if isinstance(physics, QuadPhysicsConfig) else QuadPhysicsConfig(**(physics or {}))
        self.robot = SimMultirotor(self.spec_q, config)
        self.robot.connect()
        self.world = self.robot.physics  # the PyBullet scene handle (``client``, ``bodies``), as ``ArmEnv.world``
        self.size = self.task.size
        self.image_size = image_size
        self.action_space = self.task.action_space
        vector = self.task.observation_space
        if obs_mode == "rgb":
            image = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
            self.observation_space = spaces.Dict({"image": image, "proprio": vector})
        else:
            self.observation_space = vector
        self._marker = -1
        if obs_mode == "rgb" or render_mode == "rgb_array":
            c = self.robot.physics.client
            shape = p.createVisualShape(p.GEOM_SPHERE, radius=0.03 * self.size, rgbaColor=(0.1, 0.8, 0.2, 1.0),
                                        physicsClientId=c)
            self._marker = p.createMultiBody(0.0, -1, shape, (0.0, 0.0, 1.0), physicsClientId=c)
        self._previous = np.zeros(4)

    # --- gymnasium ---------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self.goal = self.task.reset(rng)
        tilt = rng.uniform(-0.1, 0.1, 2)
        quaternion = p.getQuaternionFromEuler((float(tilt[0]), float(tilt[1]), float(rng.uniform(-math.pi, math.pi))))
        velocity = rng.uniform(-0.1, 0.1, 3) * self.size
        self.robot.reset(self.goal.start[0], quaternion, velocity, rng=np.random.default_rng(int(rng.integers(2**63))))
        self._previous = np.zeros(4)
        kin = self.robot.true_kinematics()
        self._state = self.robot.read_state(kin)
        self._reference = self.task.reference(self.goal, 0.0, self._state.position)
        return self._observe(), self._info(position_error(np.asarray(kin.position), self._reference), None)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if not np.isfinite(action).all():  # a policy bug: treat non-finite entries as 0 (hover) instead of crashing
            action = np.nan_to_num(action, nan=0.0, posinf=0.0, neginf=0.0)
        action = action.clip(-1.0, 1.0)
        self.robot.send_command(self.task.action_to_setpoint(action))
        self.robot.advance()
        self._previous = action
        kin = self.robot.true_kinematics()
        self._state = state = self.robot.read_state(kin)
        self._reference = ref = self.task.reference(self.goal, state.timestamp, state.position)
        position = np.asarray(kin.position)  # the true (noise-free) position scores the step
        on_ground = bool(self.task.arena.low_enough_to_touch(position)) and self.robot.physics.in_contact()
        termination = self.task.termination(position, kin.rotation, on_ground)
        distance = position_error(position, ref)
        reward = self.task.reward(distance, kin.body_rates, termination is not None)
        return self._observe(), reward, termination is not None, False, self._info(distance, termination)

    def _observe(self):
        vector = self.task.observe(self._state, self._reference, self._previous)
        if self.obs_mode == "rgb":
            return {"image": self.onboard_image(), "proprio": vector}
        return vector

    def _info(self, distance: float, termination: str | None) -> dict[str, Any]:
        info = {"is_success": self.task.success(distance), "position_error": distance,
                **self.task.progress(self.goal)}
        if termination is not None:
            info["termination"] = termination
        return info

    # --- images ---------------------------------------------------------------------------------------------------
    def _camera_image(self, eye, target, up, size: int) -> np.ndarray:
        c = self.robot.physics.client
        if self._marker >= 0:
            p.resetBasePositionAndOrientation(self._marker, self._reference.position.tolist(), (0, 0, 0, 1),
                                              physicsClientId=c)
        view = p.computeViewMatrix(list(eye), list(target), list(up), physicsClientId=c)
        projection = p.computeProjectionMatrixFOV(90.0, 1.0, 0.01, 20.0, physicsClientId=c)
        _, _, rgba, _, _ = p.getCameraImage(size, size, view, projection, renderer=p.ER_TINY_RENDERER,
                                            physicsClientId=c)
        return np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3]

    def onboard_image(self) -> np.ndarray:
        """Forward-looking onboard camera (body +x, pitched 20° down), ``image_size`` pixels square."""
        kin = self.robot.true_kinematics()
        r = np.asarray(kin.rotation).reshape(3, 3)
        eye = np.asarray(kin.position) + r @ np.array([self.spec_q.arm_length, 0.0, 0.0])
        forward = r @ np.array([math.cos(0.35), 0.0, -math.sin(0.35)])
        return self._camera_image(eye, eye + forward, r[:, 2], self.image_size)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        position = np.asarray(self.robot.true_kinematics().position)
        eye = position + np.array([-1.2, -1.2, 0.8]) * self.size
        return self._camera_image(eye, position, (0.0, 0.0, 1.0), 240)

    def close(self) -> None:
        self.robot.close()


def register_quadrotor_envs() -> None:
    """Register the quadrotor ids (idempotent) and the ``quadrotor`` randomization group."""
    import randomizers.quadrotor  # noqa: F401  (registers the group)

    for env_id, (vehicle, task, steps) in QUAD_ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim2real.envs.quadrotor_env:QuadrotorEnv", max_episode_steps=steps,
                         kwargs={"vehicle": vehicle, "task": task})
