"""``BatchedQuadrotorVecEnv``: N quadrotor episodes on the batched numpy model
(:mod:`sim2real.sim.batched_quadrotor`) as one stable-baselines3 ``VecEnv``.

Everything a policy sees or is scored on comes from the quadrotor task (:mod:`sim2real.tasks.quadrotor`), called
with a leading batch dimension: observation (the same 25 values as ``QuadrotorEnv``), action → setpoint, reward,
success and termination, on the same registered env ids and control modes. Episodes start as in ``QuadrotorEnv``
(task start, ±0.1 rad roll/pitch, any yaw, ±0.1·size m/s, hover rotor speeds); rewards and success use the true
state, observations the noisy estimate. The ``quadrotor`` randomization group of a launch file is drawn per
vehicle at each of its resets, through the same :class:`randomizers.quadrotor.QuadrotorRandomizer` mapping the
PyBullet env uses. With ``episodes_per_trial`` K > 1 a vehicle keeps its sampled parameters for K episodes, and
``done`` marks trial ends (``info["episode_done"]`` the inner ones), as :class:`policies.trial.TrialWrapper` does;
:class:`policies.vec.SB3TrialVecEnv` then feeds it to the RL² trainer.

``action_rate_penalty`` c adds −c·‖a_t − a_{t−1}‖² to the task's reward (a smoothness term, training only).
Auto-reset as in SB3: a finished vehicle's ``info`` holds ``terminal_observation``, ``TimeLimit.truncated``,
``episode`` (return, length, wall time), ``is_success`` and ``termination``.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from randomizers.params import ParamSpace
from randomizers.quadrotor import QuadrotorRandomizer
from robots.quadrotor import get_quadrotor_spec
from sim2real.sim.batched_quadrotor import BatchedQuadrotor
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig
from sim2real.tasks.quadrotor import (NONE, QUAD_ENVS, TERMINATIONS, make_quadrotor_task, observation,
                                      position_error)


class _VehicleView:
    """One vehicle of a :class:`BatchedQuadrotor` behind the attributes ``QuadrotorRandomizer.apply_values``
    sets on a ``SimMultirotor`` (``physics.kf``, ``physics.wind.mean``, ``latency``, noise stds, ...)."""

    class _Wind:
        def __init__(self, view: "_VehicleView") -> None:
            object.__setattr__(self, "_view", view)

        def __setattr__(self, name: str, value: Any) -> None:
            field = {"mean": "wind_mean", "gust_std": "gust_std", "gust_tau": "gust_tau"}[name]
            getattr(self._view.sim.params, field)[..., self._view.index] = value

    def __init__(self, sim: BatchedQuadrotor) -> None:
        self.sim, self.index, self.spec = sim, 0, sim.spec
        self.physics, self.wind = self, _VehicleView._Wind(self)

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("sim") and self.sim.params
        if params is not None and name in ("kf", "km", "asymmetry", "motor_time_constant", "drag", "battery_sag",
                                           "latency", "position_noise_std", "velocity_noise_std", "gyro_noise_std"):
            getattr(params, name)[..., self.index] = value
        else:
            object.__setattr__(self, name, value)

    @property
    def drag(self) -> np.ndarray:
        return self.sim.params.drag[:, self.index].copy()

    def restore_nominal(self) -> None:
        self.sim.params.restore_nominal(self.sim.nominal, self.index)

    def set_mass_properties(self, mass: float, inertia: np.ndarray) -> None:
        self.sim.params.mass[self.index], self.sim.params.inertia[:, self.index] = mass, inertia

    def update_model(self) -> None:
        """Nothing cached per vehicle: the batched model reads its parameter arrays every step."""


class BatchedQuadrotorVecEnv(VecEnv):
    """``num_envs`` vehicles of registered quadrotor env ``env_id`` stepped together (see the module docstring).

    ``randomizers``: a launch file's ``randomizers:`` list (only group ``quadrotor``) or a ParamSpace of that group.
    """

    def __init__(self, env_id: str, num_envs: int, control_mode: str | None = None, reward_type: str = "dense",
                 max_episode_steps: int | None = None, randomizers: Sequence[Mapping[str, Any]] | ParamSpace = (),
                 seed: int = 0, physics: QuadPhysicsConfig | None = None, episodes_per_trial: int = 1,
                 action_rate_penalty: float = 0.0, task_kwargs: Mapping[str, Any] | None = None) -> None:
        if env_id not in QUAD_ENVS:
            raise ValueError(f"env id {env_id!r} is not a quadrotor env (known: {', '.join(QUAD_ENVS)})")
        if num_envs < 1 or episodes_per_trial < 1 or action_rate_penalty < 0:
            raise ValueError("num_envs and episodes_per_trial must be >= 1, action_rate_penalty >= 0")
        vehicle, task_name, default_steps = QUAD_ENVS[env_id]
        self.spec_q = get_quadrotor_spec(vehicle)
        self.task = make_quadrotor_task(task_name, self.spec_q, control_mode or "ctbr", reward_type,
                                        **(task_kwargs or {}))
        self.max_episode_steps = int(max_episode_steps or default_steps)
        self.episodes_per_trial, self.action_rate_penalty = int(episodes_per_trial), float(action_rate_penalty)
        self.space, self.randomize = randomization_space(randomizers)
        self.sim = BatchedQuadrotor(self.spec_q, num_envs, physics or QuadPhysicsConfig())
        self._view = _VehicleView(self.sim)
        self.render_mode = None
        super().__init__(num_envs, self.task.observation_space, self.task.action_space)
        self._actions = np.zeros((num_envs, 4))
        self.pinned: list[dict] = [{} for _ in range(num_envs)]  # per vehicle: values fixed at its next draws
        self.seed(seed)

    # --- SB3 VecEnv ------------------------------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Reseed spawns and parameters (``seed``) and the model's gusts and noise (``seed`` + 1)."""
        self._seed = 0 if seed is None else int(seed)
        self.rng = np.random.default_rng(self._seed)
        self.sim.rng = np.random.default_rng(self._seed + 1)
        return [None] * self.num_envs

    def reset(self) -> np.ndarray:
        n = self.num_envs
        self.goal = self.task.reset(self.rng, n)
        self.values: list[dict] = [{} for _ in range(n)]
        self.previous = np.zeros((n, 4))
        self.episode_steps = np.zeros(n, dtype=np.int64)
        self.episode_return = np.zeros(n)
        self.episode_index = np.zeros(n, dtype=np.int64)
        self.episode_start = np.full(n, time.time())
        self._start(np.arange(n), new_trial=np.ones(n, bool), goal=self.goal)
        self._estimate()
        self._reference = self.task.reference(self.goal, self.sim.time, self.estimate[0])
        return self._observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=float).reshape(self.num_envs, 4)

    def step_wait(self):
        action = np.nan_to_num(self._actions, nan=0.0, posinf=0.0, neginf=0.0).clip(-1.0, 1.0)
        self.sim.send(self.task.action_mode, setpoint_values(self.task.command_arrays(action), self.task.action_mode))
        self.sim.advance()
        smoothness = np.einsum("ij,ij->i", action - self.previous, action - self.previous)
        self.previous = action
        sim = self.sim
        self._estimate()
        self._reference = ref = self.task.reference(self.goal, sim.time, self.estimate[0])
        rows = sim.rotation_rows
        codes = self.task.arena.termination_codes(sim.position, rows, sim.touches_ground())
        distance = position_error(sim.position, ref)
        reward = self.task.reward(distance, sim.body_rates, codes != NONE) - self.action_rate_penalty * smoothness
        success = self.task.success(distance)
        self.episode_steps += 1
        self.episode_return += reward
        terminated = codes != NONE
        truncated = (self.episode_steps >= self.max_episode_steps) & ~terminated
        ended = terminated | truncated
        obs = self._observe()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if not ended.any():
            return obs, reward.astype(np.float32), np.zeros(self.num_envs, bool), infos
        done = ended.copy()
        finished = np.flatnonzero(ended)
        self.episode_index[finished] += 1
        trial_over = self.episode_index >= self.episodes_per_trial
        now = time.time()
        for i in finished:
            info = infos[i]
            info.update(is_success=bool(success[i]), position_error=float(distance[i]), episode_done=True,
                        terminal_observation=obs[i].copy())
            if terminated[i]:
                info["termination"] = TERMINATIONS[codes[i]]
            info["episode"] = {"r": float(self.episode_return[i]), "l": int(self.episode_steps[i]),
                               "t": round(now - self.episode_start[i], 6)}
            if self.episodes_per_trial > 1:  # a trial ends as a termination (TrialWrapper), episodes never do
                done[i] = bool(trial_over[i])
            else:
                info["TimeLimit.truncated"] = bool(truncated[i])
        fresh = self.task.reset(self.rng, len(finished))
        self.goal.assign(finished, fresh)
        new_trial = trial_over[finished]
        self.episode_index[finished[new_trial]] = 0
        self._start(finished, new_trial, fresh)
        self._estimate()
        self._reference = self.task.reference(self.goal, sim.time, self.estimate[0])
        obs = self._observe()
        return obs, reward.astype(np.float32), done, infos

    def place(self, rows: np.ndarray, goal, position: np.ndarray, quaternion: np.ndarray,
              velocity: np.ndarray) -> np.ndarray:
        """Start new episodes of vehicles ``rows`` (after :meth:`reset`) from given layouts (a task ``Goal``) and
        states (position m, quaternion (x, y, z, w), velocity m/s, world; rotors at hover) with their current
        parameters; returns every vehicle's observation. For replaying another simulator's episode starts."""
        rows = np.atleast_1d(np.asarray(rows))
        self.goal.assign(rows, goal)
        self.sim.reset(rows, position, quaternion, velocity)
        self.previous[rows], self.episode_steps[rows], self.episode_return[rows] = 0.0, 0, 0.0
        self._estimate()
        self._reference = self.task.reference(self.goal, self.sim.time, self.estimate[0])
        return self._observe()

    def close(self) -> None:
        """Nothing to release (no processes, no PyBullet clients)."""

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        """The randomization setters curricula call per env (as on the PyBullet wrappers):
        ``get_randomization_space`` (launch-file data), ``set_randomization_values(values)`` (pin values for the
        vehicle's following trials; hard limits checked) and ``clear_randomization_values``."""
        rows = self._indices(indices)
        if method_name == "get_randomization_space":
            return [self.space.to_dict() for _ in rows]
        if method_name == "set_randomization_values":
            values = dict(*method_args, **method_kwargs)
            for name, value in values.items():
                if name not in self.space.names:
                    raise ValueError(f"{name!r} is not a quadrotor param (known: {', '.join(self.space.names)})")
                low, high = self.space[name].limits
                if not low <= float(value) <= high:
                    raise ValueError(f"{name}: value {value} is outside hard limits [{low}, {high}]")
            for i in rows:
                self.pinned[i].update(values)
            return [None for _ in rows]
        if method_name == "clear_randomization_values":
            for i in rows:
                self.pinned[i].clear()
            return [None for _ in rows]
        raise AttributeError(f"{type(self).__name__} has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    # --- internals ---------------------------------------------------------------------------------------------
    def _indices(self, indices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def _start(self, rows: np.ndarray, new_trial: np.ndarray, goal) -> None:
        """Draw parameters (at a trial start) and a start state for vehicles ``rows`` (layouts ``goal``)."""
        rng, size = self.rng, self.task.size
        for i, draw in zip(rows, new_trial):
            self._view.index = int(i)
            if draw:
                fixed = self.pinned[i]
                self.values[i] = (self.space.sample(rng, fixed=fixed) if self.randomize
                                  else {**self.space.nominal_values(), **fixed})
            self._randomize_vehicle(self.values[i])
        k = len(rows)
        tilt = rng.uniform(-0.1, 0.1, (k, 2))
        yaw = rng.uniform(-np.pi, np.pi, k)
        velocity = rng.uniform(-0.1, 0.1, (k, 3)) * size
        self.sim.reset(rows, goal.start, euler_quaternion(tilt[:, 0], tilt[:, 1], yaw), velocity)
        self.previous[rows] = 0.0
        self.episode_steps[rows] = 0
        self.episode_return[rows] = 0.0
        self.episode_start[rows] = time.time()

    def _randomize_vehicle(self, values: dict) -> None:
        """Apply ``values`` to the vehicle behind ``self._view`` with the PyBullet env's own mapping."""
        holder = _RandomizerState(self._view, self.space, values)
        QuadrotorRandomizer.apply_values(holder, values, True)  # type: ignore[arg-type]

    def _estimate(self) -> None:
        """The state estimate (position m, velocity m/s, body rates rad/s) with each vehicle's sensor noise."""
        sim, prm, n = self.sim, self.sim.params, self.num_envs
        position, velocity, rates = sim.position, sim.velocity, sim.body_rates
        if prm.position_noise_std.any():
            position = position + self.sim.rng.normal(0.0, 1.0, (n, 3)) * prm.position_noise_std[:, None]
        if prm.velocity_noise_std.any():
            velocity = velocity + self.sim.rng.normal(0.0, 1.0, (n, 3)) * prm.velocity_noise_std[:, None]
        if prm.gyro_noise_std.any():
            rates = rates + self.sim.rng.normal(0.0, 1.0, (n, 3)) * prm.gyro_noise_std[:, None]
        self.estimate = (position, velocity, rates)

    def _observe(self) -> np.ndarray:
        position, velocity, rates = self.estimate
        return observation(position, velocity, self.sim.rotation_rows, rates, self.previous,
                           self._reference)


class _RandomizerState:
    """The three attributes ``QuadrotorRandomizer.apply_values`` reads from its wrapper."""

    def __init__(self, robot: _VehicleView, space: ParamSpace, values: dict) -> None:
        self._robot, self.space, self.values = robot, space, values


def randomization_space(randomizers: Sequence[Mapping[str, Any]] | ParamSpace) -> tuple[ParamSpace, bool]:
    """The ``quadrotor`` group's ParamSpace of a launch file's ``randomizers:`` list and whether it is enabled
    (no entry: the group at nominal values). Other groups raise ``ValueError``: the batched model has no wrappers."""
    if isinstance(randomizers, ParamSpace):
        return randomizers, True
    from randomizers.launch import parse_randomizers
    from randomizers.wrappers.base import EnvTraits

    entries = parse_randomizers(list(randomizers), EnvTraits())
    others = [e.group for e in entries if e.group != QuadrotorRandomizer.GROUP]
    if others:
        raise ValueError(f"randomizers: env.backend batched takes only group quadrotor, got {', '.join(others)}")
    if not entries:
        return QuadrotorRandomizer.declare(), False
    return entries[0].space, entries[0].enabled


def setpoint_values(fields: tuple[np.ndarray, ...], mode: str) -> np.ndarray:
    """The task's setpoint fields (:func:`sim2real.tasks.quadrotor.command_arrays`) as the batched model's (N, 4)
    setpoint array of ``mode`` (:data:`sim2real.sim.batched_quadrotor.SETPOINT_FIELDS`)."""
    columns = [np.asarray(f, dtype=float) for f in fields]
    return np.concatenate([c if c.ndim == 2 else c[:, None] for c in columns], axis=1)


def euler_quaternion(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions (x, y, z, w) of ZYX Euler angles (rad), as ``pybullet.getQuaternionFromEuler``."""
    cr, sr, cp, sp = np.cos(roll / 2), np.sin(roll / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.stack([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy], axis=1)
