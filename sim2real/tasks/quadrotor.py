"""Quadrotor tasks under the Task contract: goals (reference generators), observation, action → setpoint, reward,
success and termination, written once for the simulator (:class:`sim2real.envs.quadrotor_env.QuadrotorEnv`), a
batched numpy simulator and the deployment (:mod:`sim2real.deploy.multirotor`). No PyBullet in here.

Frames: world ENU (x east, y north, z up) for positions (m) and velocities (m/s); body FLU for body rates (rad/s);
time in s since the episode started. Task distances and the arena scale with :func:`vehicle_size` (m per unit: 1 for
the Crazyflie).

**One vehicle or N.** Every function and method below works on arrays with an optional leading batch dimension N:
a ``position`` of shape (3,) is one vehicle, (N, 3) is N vehicles, and the results follow (a scalar or (N,) per
vehicle, (25,) or (N, 25) observations). A :class:`Goal` always holds N rows (one vehicle: N = 1). A batched
vectorized env calls, per step::

    task = make_quadrotor_task("hover", get_quadrotor_spec("crazyflie"), "ctbr", "dense")
    goal = task.reset(rng, n)                               # N episodes' layouts; starts in goal.start (N, 3)
    thrust, rates = task.command_arrays(actions)            # (N, 4) in [-1, 1] → ctbr thrust (N,) N, rates (N, 3)
    ...                                                     # the batched physics steps
    ref = task.reference(goal, t, position)                 # t (N,) s or a scalar; Reference of (N, 3) arrays
    obs = observation(position, velocity, rotation_rows, body_rates, actions, ref)   # (N, 25) float32
    distance = position_error(position, ref)                # (N,) m
    codes = task.arena.termination_codes(position, rotation_rows, on_ground)         # (N,) 0 none, 1 crash, 2 out
    reward = task.reward(distance, body_rates, codes != NONE)                        # (N,)
    success = task.success(distance)                        # (N,) bool
    goal.assign(done, task.reset(rng, int(done.sum())))     # new layouts for the rows that finished

``rotation_rows`` is the rotation matrix body→world as 9 values row-major, (9,) or (N, 9); ``on_ground`` is whether
the vehicle touches the ground (the PyBullet env asks its contact query only below ``arena.contact_height``).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, fields
from typing import Type

import numpy as np
from gymnasium import spaces

from robots.quadrotor import QuadrotorSpec
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MotorRpm, MultirotorState, Setpoint, Velocity

ACTION_MODES = ("rpm", "ctbr", "attitude", "velocity")
OBS_DIM = 25
SUCCESS_RADIUS = 0.05  # m per unit of vehicle size
CRASH_PENALTY = 5.0
NONE, CRASH, OUT_OF_BOUNDS = 0, 1, 2  # termination codes
TERMINATIONS: tuple[str | None, ...] = (None, "crash", "out_of_bounds")  # code → ``info["termination"]``

# registered env id → (vehicle, task, max_episode_steps at 48 Hz): what the simulator registers and deploy flies
QUAD_ENVS: dict[str, tuple[str, str, int]] = {
    "sim2real/CrazyflieHover-v0": ("crazyflie", "hover", 240),
    "sim2real/CrazyflieWaypoints-v0": ("crazyflie", "waypoints", 720),
    "sim2real/CrazyflieTrajectory-v0": ("crazyflie", "trajectory", 480),
    "sim2real/RacerHover-v0": ("racer", "hover", 240),
    "sim2real/RacerWaypoints-v0": ("racer", "waypoints", 720),
    "sim2real/RacerTrajectory-v0": ("racer", "trajectory", 480),
}


def vehicle_size(vehicle: str) -> float:
    """Scale of task distances and the arena (m per unit): 1 for the Crazyflie, 2 otherwise."""
    return 1.0 if vehicle == "crazyflie" else 2.0


# --- goals and references ------------------------------------------------------------------------------------------
@dataclass
class Reference:
    """What to track now: ``position`` (m), ``velocity`` (m/s) and ``lookahead`` (m: the next waypoint, or the
    trajectory 0.5 s ahead), world ENU; each (3,) for one vehicle or (N, 3)."""

    position: np.ndarray
    velocity: np.ndarray
    lookahead: np.ndarray


@dataclass
class Goal:
    """N episodes' layouts (N = 1 for one vehicle): ``start`` (N, 3) m; ``targets`` (N, K, 3) m (hover: the point,
    K = 1; waypoints: K targets; trajectory: K = 0); ``index`` (N,) the active target (advanced by
    :meth:`QuadReferences.reference`); ``phase`` (N,) rad (trajectory)."""

    start: np.ndarray
    targets: np.ndarray
    index: np.ndarray
    phase: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, rows: slice | np.ndarray) -> Goal:
        """The layouts of ``rows`` (a slice, mask or indices), copied."""
        return Goal(*(np.array(getattr(self, f.name)[rows]) for f in fields(self)))

    def assign(self, rows: np.ndarray, other: Goal) -> None:
        """Replace ``rows`` (a boolean mask or indices) by ``other``'s layouts (a batched env's partial reset)."""
        for f in fields(self):
            getattr(self, f.name)[rows] = getattr(other, f.name)


class QuadReferences(abc.ABC):
    """A reference generator: :meth:`sample` draws N episode layouts from ``rng``; :meth:`reference` gives the
    targets at time ``t`` (s) for the measured ``position`` (m). ``size`` scales distances, ``altitude`` (m) is the
    height the task flies at."""

    name = "task"

    def __init__(self, size: float = 1.0, altitude: float = 1.0) -> None:
        self.size, self.altitude = size, altitude

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> Goal:
        """N new layouts (their starts in ``goal.start``)."""

    @abc.abstractmethod
    def _reference(self, goal: Goal, t: np.ndarray, position: np.ndarray) -> Reference:
        """The targets of all N rows: ``t`` (N,), ``position`` (N, 3)."""

    def reference(self, goal: Goal, t: float | np.ndarray, position: np.ndarray) -> Reference:
        """The targets at ``t`` (s, scalar or (N,)) given ``position`` ((3,) with a one-row goal, or (N, 3));
        the reference's arrays have ``position``'s shape."""
        position = np.asarray(position, dtype=float)
        rows = position.reshape(-1, 3)
        t = np.asarray(t, dtype=float)
        ref = self._reference(goal, t if t.ndim else np.full(len(rows), float(t)), rows)
        if position.ndim == 1:
            return Reference(ref.position[0], ref.velocity[0], ref.lookahead[0])
        return ref

    def progress(self, goal: Goal) -> dict[str, float]:
        """Task-specific numbers for ``info`` (one-row goal)."""
        return {}

    @staticmethod
    def _goal(start: np.ndarray, targets: np.ndarray, phase: np.ndarray | None = None) -> Goal:
        n = len(start)
        return Goal(start, targets, np.zeros(n, dtype=np.int64), np.zeros(n) if phase is None else phase)


class Hover(QuadReferences):
    """Hold a fixed point at ``altitude`` above the origin, starting up to ``spawn`` m (× size) away per axis."""

    name = "hover"

    def __init__(self, size: float = 1.0, altitude: float = 1.0, spawn: float = 0.3) -> None:
        super().__init__(size, altitude)
        self.spawn = spawn
        self.point = np.array([0.0, 0.0, altitude])

    def sample(self, rng: np.random.Generator, n: int) -> Goal:
        start = self.point + rng.uniform(-self.spawn, self.spawn, (n, 3)) * self.size
        return self._goal(start, np.broadcast_to(self.point, (n, 1, 3)).copy())

    def _reference(self, goal: Goal, t: np.ndarray, position: np.ndarray) -> Reference:
        point = goal.targets[:, 0]
        return Reference(point, np.zeros_like(point), point)


class Waypoints(QuadReferences):
    """Fly through ``count`` random targets in a box of half-width ``size`` m (half that high) around
    (0, 0, altitude); a target counts as reached within ``radius`` m, then the next one becomes active (the last one
    is held)."""

    name = "waypoints"

    def __init__(self, size: float = 1.0, altitude: float = 1.0, count: int = 5, radius: float = 0.1) -> None:
        super().__init__(size, altitude)
        self.count, self.radius = count, radius

    def sample(self, rng: np.random.Generator, n: int) -> Goal:
        centre = np.array([0.0, 0.0, self.altitude])
        half = self.size * np.array([1.0, 1.0, 0.5])
        targets = centre + rng.uniform(-1.0, 1.0, (n, self.count, 3)) * half
        return self._goal(centre + rng.uniform(-0.1, 0.1, (n, 3)) * self.size, targets)

    def _reference(self, goal: Goal, t: np.ndarray, position: np.ndarray) -> Reference:
        rows = np.arange(len(goal))
        reached = _norm(goal.targets[rows, goal.index] - position) < self.radius
        goal.index += (goal.index < self.count - 1) & reached
        following = np.minimum(goal.index + 1, self.count - 1)
        return Reference(goal.targets[rows, goal.index], np.zeros((len(rows), 3)), goal.targets[rows, following])

    def progress(self, goal: Goal) -> dict[str, float]:
        return {"waypoint": float(goal.index[0])}


class Trajectory(QuadReferences):
    """Track the figure-eight x = A·sin(s), y = (A/2)·sin(2s), z = altitude + 0.1·A·sin(s), s = ωt + φ, with a
    random phase φ, amplitude A = 0.6·size m and period 2π/ω = ``period`` s."""

    name = "trajectory"

    def __init__(self, size: float = 1.0, altitude: float = 1.0, period: float = 8.0) -> None:
        super().__init__(size, altitude)
        self.amplitude, self.omega = 0.6 * size, 2 * np.pi / period

    def _at(self, t: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (N, 3) m and velocity (N, 3) m/s at times ``t`` (N,) s."""
        a, w = self.amplitude, self.omega
        s = w * t + phase
        position = np.stack((a * np.sin(s), 0.5 * a * np.sin(2 * s), self.altitude + 0.1 * a * np.sin(s)), axis=-1)
        velocity = np.stack((a * w * np.cos(s), a * w * np.cos(2 * s), 0.1 * a * w * np.cos(s)), axis=-1)
        return position, velocity

    def sample(self, rng: np.random.Generator, n: int) -> Goal:
        phase = rng.uniform(0.0, 2 * np.pi, n)
        start = self._at(np.zeros(n), phase)[0] + rng.uniform(-0.05, 0.05, (n, 3)) * self.size
        return self._goal(start, np.zeros((n, 0, 3)), phase)

    def _reference(self, goal: Goal, t: np.ndarray, position: np.ndarray) -> Reference:
        here, velocity = self._at(t, goal.phase)
        return Reference(here, velocity, self._at(t + 0.5, goal.phase)[0])


REFERENCES: dict[str, Type[QuadReferences]] = {"hover": Hover, "waypoints": Waypoints, "trajectory": Trajectory}


# --- observation, reward, success: pure functions of state arrays ------------------------------------------------
def _norm(vectors: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (cheaper than ``np.linalg.norm`` on one small vector)."""
    return np.sqrt((vectors * vectors).sum(axis=-1))


def observation(position: np.ndarray, velocity: np.ndarray, rotation_rows: np.ndarray, body_rates: np.ndarray,
                previous_action: np.ndarray, reference: Reference) -> np.ndarray:
    """The 25-value state observation, float32, (25,) or (N, 25): position error p_ref − p (m, world), velocity
    error v_ref − v (m/s, world), rotation body→world (9, row-major), body rates (rad/s, body), previous action (4),
    look-ahead target − position (m, world)."""
    position = np.asarray(position, dtype=float)
    return np.concatenate((reference.position - position, reference.velocity - velocity,
                           np.asarray(rotation_rows, dtype=float), body_rates, previous_action,
                           reference.lookahead - position), axis=-1).astype(np.float32)


def position_error(position: np.ndarray, reference: Reference) -> np.ndarray | float:
    """Distance (m) from ``position`` to the reference position: a float for one vehicle, (N,) for N."""
    error = _norm(reference.position - np.asarray(position, dtype=float))
    return float(error) if error.ndim == 0 else error


def step_reward(distance: np.ndarray | float, body_rates: np.ndarray, size: float, reward_type: str,
                terminated: np.ndarray | bool = False) -> np.ndarray | float:
    """The reward of one control step from the distance to the reference after it (m; scalar or (N,)) and the body
    rates (rad/s; (3,) or (N, 3)): ``sparse`` −1 unless within the success radius; ``dense`` closeness terms minus
    a spin penalty; a step that ends the episode (crash or out of bounds) costs ``CRASH_PENALTY`` more. A float for
    one vehicle, (N,) for N."""
    distance = np.asarray(distance, dtype=float)
    if reward_type == "sparse":
        reward = -(distance > SUCCESS_RADIUS * size).astype(float)
    else:
        d = distance / size
        spin = _norm(np.asarray(body_rates, dtype=float))
        reward = 0.5 * np.exp(-d / 0.15) + 0.5 * (1.0 - np.minimum(d, 2.0) / 2.0) - 0.02 * spin
    reward = reward - CRASH_PENALTY * np.asarray(terminated, dtype=float)
    return float(reward) if reward.ndim == 0 else reward


def is_success(distance: np.ndarray | float, size: float) -> np.ndarray | bool:
    """Within the success radius (``SUCCESS_RADIUS`` × size m): a bool for one vehicle, (N,) for N."""
    inside = np.asarray(distance) < SUCCESS_RADIUS * size
    return bool(inside) if inside.ndim == 0 else inside


@dataclass(frozen=True)
class Arena:
    """The box a flight must stay in (m, world ENU) and the height below which ground contact is a crash."""

    low: np.ndarray
    high: np.ndarray
    contact_height: float  # m: below it a ground contact ends the episode

    @classmethod
    def for_vehicle(cls, spec: QuadrotorSpec, size: float) -> Arena:
        """±2 m × size wide, 0..2.5 m × size high; contact counts below twice the collision box's half diagonal."""
        return cls(np.array([-2.0, -2.0, 0.0]) * size, np.array([2.0, 2.0, 2.5]) * size,
                   2.0 * float(np.linalg.norm(spec.collision_half_extents)))

    def low_enough_to_touch(self, position: np.ndarray) -> np.ndarray | bool:
        """Whether a ground contact would count (below ``contact_height``): where to ask the contact query."""
        low = np.asarray(position)[..., 2] < self.contact_height
        return bool(low) if low.ndim == 0 else low

    def termination_codes(self, position: np.ndarray, rotation_rows: np.ndarray,
                          on_ground: np.ndarray | bool) -> np.ndarray | int:
        """``CRASH`` when the body z axis points below the horizon or the vehicle touches the ground below
        ``contact_height``; ``OUT_OF_BOUNDS`` outside the box; else ``NONE`` (an int for one vehicle, (N,) for N;
        :data:`TERMINATIONS` names them)."""
        position = np.asarray(position, dtype=float)
        upside_down = np.asarray(rotation_rows)[..., 8] < 0.0
        crash = upside_down | (np.asarray(on_ground) & (position[..., 2] < self.contact_height))
        outside = ((position < self.low) | (position > self.high)).any(axis=-1)
        codes = crash * CRASH + (~crash & outside) * OUT_OF_BOUNDS
        return int(codes) if codes.ndim == 0 else codes


# --- actions --------------------------------------------------------------------------------------------------------
def thrust_map(action: np.ndarray | float, hover: float, top: float) -> np.ndarray:
    """Normalized [-1, 1] → thrust (N): -1 → 0, 0 → ``hover``, 1 → ``top``, linear in between (elementwise)."""
    a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
    return np.where(a < 0.0, hover * (1.0 + a), hover + a * (top - hover))


def command_arrays(actions: np.ndarray, mode: str, spec: QuadrotorSpec) -> tuple[np.ndarray, ...]:
    """Normalized actions ((4,) or (N, 4), clipped to [-1, 1]) → the fields of ``mode``'s setpoint, in the order of
    its HAL dataclass: ``rpm`` (rotor speeds (…, 4) rpm), ``ctbr`` (thrust N, body rates (…, 3) rad/s ±
    max_body_rate), ``attitude`` (thrust N, roll, pitch rad ± max_tilt, yaw rate rad/s ± max_body_rate/2),
    ``velocity`` (world velocity (…, 3) m/s ± max_speed, yaw rate rad/s). Thrust maps are piecewise linear with 0 at
    hover (:func:`thrust_map`)."""
    a = np.clip(np.asarray(actions, dtype=float), -1.0, 1.0)
    if mode == "rpm":
        return (np.sqrt(thrust_map(a, spec.weight / 4.0, spec.max_thrust / 4.0) / spec.kf),)
    thrust = thrust_map(a[..., 0], spec.weight, spec.max_thrust)
    if mode == "ctbr":
        return thrust, a[..., 1:] * spec.max_body_rate
    if mode == "attitude":
        return thrust, a[..., 1] * spec.max_tilt, a[..., 2] * spec.max_tilt, a[..., 3] * spec.max_body_rate / 2
    if mode == "velocity":
        return a[..., :3] * spec.max_speed, a[..., 3] * spec.max_body_rate / 2
    raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {mode!r}")


SETPOINTS: dict[str, type] = {"rpm": MotorRpm, "ctbr": Ctbr, "attitude": AttitudeThrust, "velocity": Velocity}


def action_to_setpoint(action: np.ndarray, mode: str, spec: QuadrotorSpec) -> Setpoint:
    """One vehicle's normalized action (4,) → the HAL setpoint of ``mode`` (:func:`command_arrays`)."""
    values = command_arrays(np.asarray(action, dtype=float).reshape(4), mode, spec)
    return SETPOINTS[mode](*(float(v) if np.ndim(v) == 0 else v for v in values))


# --- the task -------------------------------------------------------------------------------------------------------
class QuadrotorTask:
    """A quadrotor task for one vehicle ``spec`` flying ``action_mode`` with ``reward_type`` rewards: the one place
    observation, action → setpoint, reward, success and termination are defined (see the module docstring for the
    batched use). ``references`` draws the goals; ``arena`` bounds the flight."""

    def __init__(self, references: QuadReferences, spec: QuadrotorSpec, action_mode: str = "ctbr",
                 reward_type: str = "dense") -> None:
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        self.references, self.spec = references, spec
        self.action_mode, self.reward_type = action_mode, reward_type
        self.size = vehicle_size(spec.name)
        self.arena = Arena.for_vehicle(spec, self.size)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)

    @property
    def name(self) -> str:
        return self.references.name

    def reset(self, rng: np.random.Generator, n: int = 1) -> Goal:
        """N new episode layouts (default one vehicle); the starts are ``goal.start`` (N, 3) m."""
        return self.references.sample(rng, n)

    def reference(self, goal: Goal, t: float | np.ndarray, position: np.ndarray) -> Reference:
        """The targets at ``t`` s after the episode started, given the measured ``position`` (m)."""
        return self.references.reference(goal, t, position)

    def observe(self, state: MultirotorState, reference: Reference, previous_action: np.ndarray) -> np.ndarray:
        """One vehicle's observation (25,) float32 from its state estimate (:func:`observation`)."""
        return observation(state.position, state.velocity, state.rotation_rows, state.body_rates, previous_action,
                           reference)

    def action_to_setpoint(self, action: np.ndarray) -> Setpoint:
        """One vehicle's normalized action → its HAL setpoint."""
        return action_to_setpoint(action, self.action_mode, self.spec)

    def command_arrays(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Batched actions → setpoint fields (:func:`command_arrays`)."""
        return command_arrays(actions, self.action_mode, self.spec)

    def reward(self, distance: np.ndarray | float, body_rates: np.ndarray,
               terminated: np.ndarray | bool = False) -> np.ndarray | float:
        """:func:`step_reward` with this task's vehicle size and reward type."""
        return step_reward(distance, body_rates, self.size, self.reward_type, terminated)

    def success(self, distance: np.ndarray | float) -> np.ndarray | bool:
        return is_success(distance, self.size)

    def termination(self, position: np.ndarray, rotation_rows: np.ndarray, on_ground: bool) -> str | None:
        """One vehicle's termination: ``"crash"``, ``"out_of_bounds"`` or None."""
        return TERMINATIONS[self.arena.termination_codes(position, rotation_rows, on_ground)]

    def progress(self, goal: Goal) -> dict[str, float]:
        """Task-specific numbers for ``info`` (one vehicle)."""
        return self.references.progress(goal)


def make_quadrotor_task(name: str, spec: QuadrotorSpec, action_mode: str = "ctbr", reward_type: str = "dense",
                        **options) -> QuadrotorTask:
    """Task ``name`` (``hover``, ``waypoints``, ``trajectory``) for vehicle ``spec``, flown at altitude = size m;
    ``options`` go to the reference generator (e.g. ``count``, ``radius`` for waypoints)."""
    if name not in REFERENCES:
        raise ValueError(f"task must be one of {tuple(REFERENCES)}, got {name!r}")
    size = vehicle_size(spec.name)
    return QuadrotorTask(REFERENCES[name](size=size, altitude=size, **options), spec, action_mode, reward_type)


def env_quadrotor_task(env_id: str, action_mode: str = "ctbr", reward_type: str = "dense") -> QuadrotorTask:
    """The task a registered quadrotor env id runs (:data:`QUAD_ENVS`), for code outside the env (deployment)."""
    from robots.quadrotor import get_quadrotor_spec

    vehicle, name, _ = QUAD_ENVS[env_id]
    return make_quadrotor_task(name, get_quadrotor_spec(vehicle), action_mode, reward_type)
