"""``QuadrotorEnv``: a quadrotor task on the simulated :class:`SimMultirotor`, as a gymnasium environment.

Observation (``obs_mode="state"``, float32, 25 values): position error p_ref - p (m, world ENU), velocity error
v_ref - v (m/s, world), rotation matrix body→world (9, row-major), body rates (rad/s, body FLU), previous action
(4), look-ahead target minus position (m, world). ``obs_mode="rgb"``: dict ``image`` (onboard camera, H×W×3 uint8)
and ``proprio`` (the state vector).

Actions in [-1, 1]^4 by ``action_mode`` (thrust maps are piecewise linear with 0 at hover):
``rpm`` per-rotor thrust → rotor speed; ``ctbr`` collective thrust + body rates (± max_body_rate);
``attitude`` thrust, roll, pitch (± max_tilt) and yaw rate; ``velocity`` world velocity (± max_speed) and yaw rate.

Episodes terminate on a crash (ground contact after take-off, or the body z axis pointing below the horizon) or
on leaving the arena (``info["termination"]`` says which); time limits are the registered ``max_episode_steps``
(truncation).
"""
from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
from gymnasium import spaces

from robots.quadrotor import QuadrotorSpec, get_quadrotor_spec
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MotorRpm, Setpoint, Velocity
from sim2real.quadrotor.physics import Kinematics, QuadPhysicsConfig
from sim2real.quadrotor.robot import SimMultirotor
from sim2real.quadrotor.tasks import TASKS, QuadTask

ACTION_MODES = ("rpm", "ctbr", "attitude", "velocity")
OBS_DIM = 25
SUCCESS_RADIUS = 0.05  # m (scaled by the vehicle size)
CRASH_PENALTY = 5.0


def thrust_map(action: float, hover: float, top: float) -> float:
    """Normalized [-1, 1] → thrust (N): -1 → 0, 0 → ``hover``, 1 → ``top``, linear in between."""
    a = min(max(float(action), -1.0), 1.0)
    return hover * (1.0 + a) if a < 0 else hover + a * (top - hover)


def action_to_setpoint(action: np.ndarray, mode: str, spec: QuadrotorSpec) -> Setpoint:
    """Map a normalized action to the HAL setpoint of ``mode`` (see the module docstring)."""
    a = np.asarray(action, dtype=float).clip(-1.0, 1.0)
    if mode == "rpm":
        hover, top, kf = spec.weight / 4.0, spec.max_thrust / 4.0, spec.kf
        return MotorRpm(np.array([math.sqrt(thrust_map(x, hover, top) / kf) for x in a]))
    thrust = thrust_map(a[0], spec.weight, spec.max_thrust)
    if mode == "ctbr":
        return Ctbr(thrust, a[1:] * spec.max_body_rate)
    if mode == "attitude":
        return AttitudeThrust(thrust, a[1] * spec.max_tilt, a[2] * spec.max_tilt, a[3] * spec.max_body_rate / 2)
    if mode == "velocity":
        return Velocity(a[:3] * spec.max_speed, a[3] * spec.max_body_rate / 2)
    raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {mode!r}")


def state_vector(state, reference, previous_action: np.ndarray) -> np.ndarray:
    """The 25-value state observation (module docstring), float32: position error (m), velocity error (m/s),
    rotation body→world (9, row-major), body rates (rad/s), previous action (4), look-ahead target − position (m).
    The one builder used in simulation and in deployment."""
    return np.concatenate((reference.position - state.position, reference.velocity - state.velocity,
                           np.asarray(state.rotation_rows, dtype=float), state.body_rates, previous_action,
                           reference.lookahead - state.position)).astype(np.float32)


def step_reward(distance: float, body_rates, size: float, reward_type: str, crashed: bool = False) -> float:
    """The reward of one control step, from the distance to the reference after it (m) and the body rates (rad/s):
    ``sparse`` −1 unless within the success radius; ``dense`` closeness terms minus a spin penalty; a crash costs
    ``CRASH_PENALTY`` more. The one definition used in simulation and fed to a deployed RL² policy."""
    if reward_type == "sparse":
        reward = -float(distance > SUCCESS_RADIUS * size)
    else:
        d = distance / size
        wx, wy, wz = body_rates
        spin = math.sqrt(wx * wx + wy * wy + wz * wz)
        reward = 0.5 * math.exp(-d / 0.15) + 0.5 * (1.0 - min(d, 2.0) / 2.0) - 0.02 * spin
    return reward - CRASH_PENALTY if crashed else reward


def vehicle_size(vehicle: str) -> float:
    """Scale of task distances and the arena (m per unit): 1 for the Crazyflie, 2 otherwise."""
    return 1.0 if vehicle == "crazyflie" else 2.0


class QuadrotorEnv(gym.Env):
    """See the module docstring. ``size`` scales task distances and the arena (1 m for the Crazyflie)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 48}

    def __init__(self, vehicle: str = "crazyflie", task: str = "hover", action_mode: str = "ctbr",
                 obs_mode: str = "state", control_mode: str | None = None, reward_type: str = "dense",
                 render_mode: str | None = None, physics: QuadPhysicsConfig | dict | None = None,
                 image_size: int = 64, task_kwargs: dict | None = None) -> None:
        action_mode = action_mode if control_mode is None else control_mode  # launch files say control_mode
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if obs_mode not in ("state", "rgb"):
            raise ValueError(f"obs_mode must be 'state' or 'rgb', got {obs_mode!r}")
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if task not in TASKS:
            raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
        self.spec_q = get_quadrotor_spec(vehicle)
        self.action_mode, self.obs_mode = action_mode, obs_mode
        self.reward_type, self.render_mode = reward_type, render_mode
        config = physics if isinstance(physics, QuadPhysicsConfig) else QuadPhysicsConfig(**(physics or {}))
        self.robot = SimMultirotor(self.spec_q, config)
        self.robot.connect()
        self.world = self.robot.physics  # the PyBullet scene handle (``client``, ``bodies``), as ``ArmEnv.world``
        self.size = vehicle_size(vehicle)
        self.task: QuadTask = TASKS[task](size=self.size, altitude=self.size, **(task_kwargs or {}))
        self.arena_low = np.array([-2.0, -2.0, 0.0]) * self.size
        self.arena_high = np.array([2.0, 2.0, 2.5]) * self.size
        self._arena = (tuple(self.arena_low), tuple(self.arena_high))
        self._contact_height = 2.0 * float(np.linalg.norm(self.spec_q.collision_half_extents))  # m: lower → check
        self.image_size = image_size
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        vector = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
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
        start = self.task.reset(rng)
        tilt = rng.uniform(-0.1, 0.1, 2)
        quaternion = p.getQuaternionFromEuler((float(tilt[0]), float(tilt[1]), float(rng.uniform(-math.pi, math.pi))))
        velocity = rng.uniform(-0.1, 0.1, 3) * self.size
        self.robot.reset(start, quaternion, velocity, rng=np.random.default_rng(int(rng.integers(2**63))))
        self._previous = np.zeros(4)
        kin = self.robot.true_kinematics()
        self._state = self.robot.read_state(kin)
        self._reference = self.task.reference(0.0, self._state.position)
        return self._observe(), self._info(None, kin)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if not np.isfinite(action).all():  # a policy bug: treat non-finite entries as 0 (hover) instead of crashing
            action = np.nan_to_num(action, nan=0.0, posinf=0.0, neginf=0.0)
        action = action.clip(-1.0, 1.0)
        self.robot.send_command(action_to_setpoint(action, self.action_mode, self.spec_q))
        self.robot.advance()
        self._previous = action
        kin = self.robot.true_kinematics()
        self._state = state = self.robot.read_state(kin)
        self._reference = ref = self.task.reference(state.timestamp, state.position)
        termination = self._termination(kin)
        x, y, z = kin.position
        gx, gy, gz = ref.position
        distance = math.sqrt((gx - x) ** 2 + (gy - y) ** 2 + (gz - z) ** 2)  # true (noise-free) error, m
        reward = step_reward(distance, kin.body_rates, self.size, self.reward_type, termination is not None)
        info = {"is_success": distance < SUCCESS_RADIUS * self.size, "position_error": distance, **self.task.progress()}
        if termination is not None:
            info["termination"] = termination
        return self._observe(), reward, termination is not None, False, info

    def _termination(self, kin: Kinematics) -> str | None:
        x, y, z = kin.position
        if kin.rotation[8] < 0.0 or (z < self._contact_height and self.robot.physics.in_contact()):
            return "crash"
        (lx, ly, lz), (hx, hy, hz) = self._arena
        if not (lx <= x <= hx and ly <= y <= hy and lz <= z <= hz):
            return "out_of_bounds"
        return None

    def _vector(self) -> np.ndarray:
        return state_vector(self._state, self._reference, self._previous)

    def _observe(self):
        vector = self._vector()
        if self.obs_mode == "rgb":
            return {"image": self.onboard_image(), "proprio": vector}
        return vector

    def _info(self, termination: str | None, kin: Kinematics) -> dict[str, Any]:
        error = float(np.linalg.norm(self._reference.position - np.asarray(kin.position)))
        info = {"is_success": error < SUCCESS_RADIUS * self.size, "position_error": error, **self.task.progress()}
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


QUAD_ENVS: dict[str, tuple[str, str, int]] = {  # id: (vehicle, task, max_episode_steps at 48 Hz)
    "sim2real/CrazyflieHover-v0": ("crazyflie", "hover", 240),
    "sim2real/CrazyflieWaypoints-v0": ("crazyflie", "waypoints", 720),
    "sim2real/CrazyflieTrajectory-v0": ("crazyflie", "trajectory", 480),
    "sim2real/RacerHover-v0": ("racer", "hover", 240),
    "sim2real/RacerWaypoints-v0": ("racer", "waypoints", 720),
    "sim2real/RacerTrajectory-v0": ("racer", "trajectory", 480),
}


def register_quadrotor_envs() -> None:
    """Register the quadrotor ids (idempotent) and the ``quadrotor`` randomization group."""
    import randomizers.quadrotor  # noqa: F401  (registers the group)

    for env_id, (vehicle, task, steps) in QUAD_ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim2real.envs.quadrotor_env:QuadrotorEnv", max_episode_steps=steps,
                         kwargs={"vehicle": vehicle, "task": task})
