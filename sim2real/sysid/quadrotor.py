"""The quadcopter as a :class:`~sim2real.sysid.model.SystemModel`: logged CTBR / attitude setpoints replayed at their
logged times through the multirotor emulator's own vehicle (:class:`~sim2real.emulators.quad_reality.EmulatedQuad`:
PyBullet physics, onboard controller cascade, motor lag, drag, battery sag) built from a candidate reality profile.

Timing of one logged policy step (``deploy/multirotor.py``): the loop wakes ``late`` s after its deadline ``t``
(s from the loop's start), reads the state estimate that arrived ``state_age`` s before the policy started, and
sends the setpoint ``compute`` s after that. The replay samples the vehicle at ``t + late − state_age`` and applies
each setpoint at ``t + late + compute + latency_s``: the fitted ``latency_s`` is the delay from sending a setpoint
to the onboard controller acting on it (link plus the vehicle's own command latency).

A segment is replayed by multiple shooting: the vehicle starts ``warmup_s`` before it from the measured state, with
the rotors at the speed the nominal mixer gives the thrust then commanded, and every ``horizon_s`` its position,
velocity, attitude and body rates are set to the measured ones, while what no log shows — rotor speeds, the
onboard controller's integrators, the battery (drained by the flight before: the logged commanded thrust, and hover
for position-held stretches) — carries on. A CTBR replay left open-loop for seconds diverges with those hidden
states (tilt errors of a few mrad integrate into decimetres), whatever the parameters. Measured channels: position
(m), velocity (m/s), body z axis in the world x, y (tilt), yaw (rad), body rates (rad/s).

Fitted: ``mass_scale``, ``kf_scale`` (the profile scales the yaw-torque coefficient km with it),
``motor_time_constant_scale``, ``drag_scale``, ``battery_sag`` (1/s of hover) and ``latency_s``. Not fitted: wind
(a 0.1 m/s breeze moves a hovering Crazyflie's velocity by under 1 mm/s within a prediction horizon), gusts and
sensor noise (no trajectory information), ``physics_hz`` (the emulator's 240 Hz is assumed).

**Mass, kf and drag are one degenerate direction.** With only kinematic measurements every force the model knows
scales with kf (rotors, ground effect) or drag, gravity is an acceleration, and inertia scales with mass, so the
motion depends on kf/mass and drag/mass only: scaling mass, kf and drag together changes nothing a log can show.
The replay gate names the combination; weigh the vehicle and pin its mass (``sim2real sysid fit --fixed
mass_scale=M/M_NOMINAL``): kf, motor lag, battery sag and latency are then identifiable from the doublets of
:mod:`sim2real.sysid.excitation_quad`; drag stays weak at the speeds a hovering Crazyflie reaches.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from robots.quadrotor import QUADROTORS, get_quadrotor_spec
from sim2real.emulators.quad_reality import EmulatedQuad, QuadReality
from sim2real.errors import UserError
from sim2real.frames import matrix_to_quaternion
from sim2real.hal.multirotor import AttitudeThrust, Ctbr
from sim2real.sysid.excitation_quad import ROTATION
from sim2real.sysid.model import FitParameter, Segment

QUAD_PARAMETERS: tuple[FitParameter, ...] = (
    FitParameter("mass_scale", 1.0, 0.6, 1.6, log_scale=True),
    FitParameter("kf_scale", 1.0, 0.6, 1.6, log_scale=True),
    FitParameter("motor_time_constant_scale", 1.0, 0.4, 4.0, log_scale=True),
    FitParameter("drag_scale", 1.0, 0.2, 5.0, log_scale=True),
    FitParameter("battery_sag", 0.0, 0.0, 0.02),
    FitParameter("latency_s", 0.0, 0.0, 0.08),
)
PHYSICS_HZ = 240.0  # the emulator's default physics and onboard-controller rate (Hz)
SETPOINT_KINDS = {"Ctbr": 0.0, "AttitudeThrust": 1.0}
PRIOR_COMMANDS = 6  # setpoints before a segment replayed as still in flight (covers latency_s up to 6 periods)
_COMMAND_WIDTH = 6  # [send time s, kind, thrust N, three rates rad/s | roll rad, pitch rad, yaw rate rad/s]
CHANNELS = ("x (m)", "y (m)", "z (m)", "vx (m/s)", "vy (m/s)", "vz (m/s)", "body z, world x", "body z, world y",
            "yaw (rad)", "roll rate (rad/s)", "pitch rate (rad/s)", "yaw rate (rad/s)")
_CHANNEL_SCALES = np.array([0.05] * 3 + [0.1] * 3 + [0.05, 0.05, 0.05] + [0.5] * 3)  # typical errors per channel
_MIN_STEPS = 10
_GAP_PERIODS = 2.5  # a late or stale step (sample times this many periods apart, or out of order) starts a new
#                     piece: the log does not say when a preempted step read its state, so such stretches are left out
_CACHED_VEHICLES = 2


def _rows(steps: list[dict], key: str, width: int, path: str, part: slice = slice(None)) -> np.ndarray:
    """``steps[i][key]`` (its ``part``) as a finite (N, width) array; one-line UserError naming the first bad step."""
    out = np.empty((len(steps), width))
    for i, step in enumerate(steps):
        try:
            row = np.asarray(step.get(key), dtype=float).reshape(-1)[part]
        except (TypeError, ValueError):
            row = np.empty(0)
        if row.shape != (width,):
            raise UserError(f"{path}: policy step {i + 1} has no usable {key!r} ({width} numbers)")
        if not np.all(np.isfinite(row)):
            raise UserError(f"{path}: policy step {i + 1}: {key!r} is not finite")
        out[i] = row
    return out


def _command(step: dict, index: int, path: str) -> list[float]:
    """[kind, thrust, three values] of a step's applied setpoint (CTBR or attitude)."""
    applied = step.get("applied")
    kind = applied.get("type") if isinstance(applied, dict) else None
    if kind not in SETPOINT_KINDS:
        raise UserError(f"{path}: policy step {index + 1} applied a {kind or 'missing'} setpoint; the quadcopter fit "
                        f"replays {' or '.join(SETPOINT_KINDS)} setpoints (policies with ctbr or attitude actions)")
    try:
        if kind == "Ctbr":
            values = [float(applied["thrust"]), *(float(v) for v in applied["body_rates"])]
        else:
            values = [float(applied[k]) for k in ("thrust", "roll", "pitch", "yaw_rate")]
    except (KeyError, TypeError, ValueError):
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise UserError(f"{path}: policy step {index + 1}: the applied {kind} setpoint is incomplete or not finite")
    return [SETPOINT_KINDS[kind], *values]


def _timing(steps: list[dict], path: str) -> tuple[np.ndarray, np.ndarray]:
    """(sample times, send times) s of ``steps``: ``t + late − state_age`` and ``t + late + compute``."""
    def number(step: dict, key: str, default: float | None) -> float:
        value = step.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise UserError(f"{path}: a step record has no finite {key!r}")
        return float(value)

    base = np.array([number(s, "t", None) + number(s, "late", 0.0) for s in steps])
    return (base - np.array([number(s, "state_age", 0.0) for s in steps]),
            base + np.array([number(s, "compute", 0.0) for s in steps]))


class QuadrotorModel:
    """Replays a quadcopter's logged setpoints (``vehicle``: a :mod:`robots.quadrotor` name; ``period``: the log's
    control period, s); ``horizon_s`` and ``warmup_s``: the multiple-shooting horizon and warm-up (module docstring).
    """

    kind = "quadrotor"
    parameters = QUAD_PARAMETERS
    channels = CHANNELS  # the measured channels, in the order of a segment's columns

    def __init__(self, vehicle: str, period: float, path: str = "log", horizon_s: float = 0.2,
                 warmup_s: float = 0.4) -> None:
        self.spec = get_quadrotor_spec(vehicle)
        self.vehicle, self.period, self.path = vehicle, period, path
        self.horizon_rows = max(1, int(round(horizon_s / period)))
        self.warmup_rows = self.horizon_rows * max(1, int(round(warmup_s / period / self.horizon_rows)))
        self._vehicles: dict[tuple, EmulatedQuad] = {}

    # --- log -> segments ---------------------------------------------------------------------------------------
    def segments(self, records: list[dict], segment_s: float) -> list[Segment]:
        """Pieces of about ``segment_s`` s of the policy phase of each episode. The ``warmup_s`` before a piece
        (and ``PRIOR_COMMANDS`` setpoints before that) travel in its ``initial``: replayed, not compared."""
        steps = [r for r in records if r.get("type") == "step"]
        policy = [i for i, r in enumerate(steps) if r.get("phase") == "policy"]
        lead = PRIOR_COMMANDS + self.warmup_rows
        if len(policy) < _MIN_STEPS + lead:
            raise UserError(f"{self.path}: {len(policy)} policy steps logged; the quadcopter fit needs at least "
                            f"{_MIN_STEPS + lead}")
        chosen = [steps[i] for i in policy]
        sample, send = _timing(chosen, self.path)
        commands = np.array([[send[k], *_command(s, k, self.path)] for k, s in enumerate(chosen)])
        measured = self._measured(chosen)
        drain_ctbr, drain_hold = self._battery_drain(steps, policy, commands)
        episodes = np.array([s.get("episode", 0) for s in chosen])
        gaps = np.diff(sample)
        breaks = np.flatnonzero((gaps > _GAP_PERIODS * self.period) | (gaps <= 0) | (episodes[1:] != episodes[:-1])) + 1
        per_segment = max(_MIN_STEPS, int(round(segment_s / self.period)))
        pieces: list[Segment] = []
        for run in np.split(np.arange(len(chosen)), breaks):
            for start in range(lead, len(run), per_segment):
                rows = run[start:start + per_segment]
                if len(rows) < max(_MIN_STEPS, per_segment // 2):
                    continue
                first = rows[0]
                warm = np.arange(first - self.warmup_rows, first)
                initial = np.concatenate([[self.warmup_rows, drain_ctbr[warm[0]], drain_hold[warm[0]]],
                                          sample[warm], measured[warm].ravel(),
                                          commands[warm[0] - PRIOR_COMMANDS:first].ravel()])
                pieces.append(Segment(times=sample[rows], commands=commands[rows], measured=measured[rows],
                                      initial=initial, weights=1.0 / _CHANNEL_SCALES,
                                      source=f"{self.path} episode {int(episodes[first])} policy steps "
                                             f"{int(chosen[first].get('step', first))}-"
                                             f"{int(chosen[rows[-1]].get('step', rows[-1]))}"))
        if not pieces:
            raise UserError(f"{self.path}: no episode has {lead + max(_MIN_STEPS, per_segment // 2)} contiguous "
                            f"policy steps ({segment_s:g} s segments at {1 / self.period:g} Hz)")
        return pieces

    def _measured(self, steps: list[dict]) -> np.ndarray:
        """(N, 12): position, velocity, body z axis x/y in the world, yaw, body rates."""
        rotation = _rows(steps, "observation", 9, self.path, ROTATION)
        yaw = np.arctan2(rotation[:, 3], rotation[:, 0])
        return np.column_stack([_rows(steps, "position", 3, self.path), _rows(steps, "velocity", 3, self.path),
                                rotation[:, 2], rotation[:, 5], yaw, _rows(steps, "body_rates", 3, self.path)])

    def _battery_drain(self, steps: list[dict], policy: list[int], commands: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per policy step, the battery drawn before it (s of hovering, :class:`QuadrotorPhysics`' unit): from the
        logged thrust of earlier policy steps, and the seconds of earlier position-held (approach) steps, whose
        draw the model scales by the candidate's hover power."""
        times = np.array([float(s.get("t", 0.0) or 0.0) for s in steps])
        durations = np.clip(np.diff(times, append=times[-1] + self.period), 0.0, 2 * self.period)
        is_policy = np.zeros(len(steps), bool)
        is_policy[policy] = True
        load = np.zeros(len(steps))
        load[policy] = (np.clip(commands[:, 2], 0.0, None) / self.spec.weight) ** 1.5
        ctbr = np.concatenate([[0.0], np.cumsum(load * durations)[:-1]])
        hold = np.concatenate([[0.0], np.cumsum(np.where(is_policy, 0.0, durations))[:-1]])
        return ctbr[policy], hold[policy]

    # --- replay ------------------------------------------------------------------------------------------------
    def values(self, values: Mapping[str, float]) -> dict[str, float]:
        """Every parameter's value: from ``values``, nominal where missing."""
        return {p.name: float(values.get(p.name, p.nominal)) for p in QUAD_PARAMETERS}

    def reality(self, values: Mapping[str, float], name: str = "sysid") -> QuadReality:
        """The noise-free, fault-free, gust-free reality of ``values`` (latency applied by the replay itself)."""
        v = self.values(values)
        return QuadReality(name=name, vehicle=self.vehicle, physics_hz=PHYSICS_HZ, mass_scale=v["mass_scale"],
                           kf_scale=v["kf_scale"], motor_time_constant_scale=v["motor_time_constant_scale"],
                           drag_scale=v["drag_scale"], battery_sag=v["battery_sag"])

    def _vehicle(self, values: Mapping[str, float]) -> EmulatedQuad:
        key = tuple(sorted(self.values(values).items()))
        quad = self._vehicles.get(key)
        if quad is None:
            if len(self._vehicles) >= _CACHED_VEHICLES:
                oldest = next(iter(self._vehicles))
                self._vehicles.pop(oldest).close()
            quad = self._vehicles[key] = EmulatedQuad(self.reality(values))
        return quad

    def simulate(self, segment: Segment, values: Mapping[str, float]) -> np.ndarray:
        """The measured channels (T, 12) at the segment's sample times under ``values``, each predicted at most
        ``horizon_rows`` samples ahead: every ``horizon_rows`` samples the vehicle's position, velocity, attitude
        and rates are set to the measured ones, while rotor speeds, controller integrators and battery carry on
        (multiple shooting; the warm-up before the segment brings those hidden states in line)."""
        v = self.values(values)
        sim = self._vehicle(values).sim
        dt = sim.config.dt
        warm = int(segment.initial[0])
        drain_ctbr, drain_hold = segment.initial[1:3]
        rest = segment.initial[3:]
        times = np.concatenate([rest[:warm], segment.times])
        states = np.vstack([rest[warm:warm * 13].reshape(warm, 12), segment.measured])
        commands = np.vstack([rest[warm * 13:].reshape(-1, _COMMAND_WIDTH), segment.commands])
        due = commands[:, 0] + v["latency_s"]
        first = int(np.searchsorted(due, times[0], side="right")) - 1  # the setpoint acting at the start
        thrust = commands[max(first, 0), 2]
        sim.latency = 0.0
        sim.reset(*_kinematic_state(states[0]), rpm=math.sqrt(max(thrust, 0.0) / (4.0 * self.spec.kf)))
        battery = float(drain_ctbr + drain_hold * (v["mass_scale"] / v["kf_scale"]) ** 1.5)
        sim.physics.battery_used = battery
        c = max(first, 0)
        sim.send_command(_setpoint(commands[c]))
        c += 1
        predicted = np.empty_like(states)
        predicted[0] = states[0]
        now = times[0]
        for k in range(1, len(times)):
            while True:
                while c < len(commands) and due[c] <= now + 0.5 * dt:
                    sim.send_command(_setpoint(commands[c]))
                    c += 1
                event = min(times[k], due[c]) if c < len(commands) else times[k]
                steps = int(round((event - now) / dt))
                if steps <= 0 and event == times[k]:
                    break
                sim.advance(max(steps, 1))
                now += max(steps, 1) * dt
            predicted[k] = _channels(sim.true_kinematics())
            if k % self.horizon_rows == 0:
                _place(sim.physics, states[k])
        out = predicted[warm:]
        out[:, 8] = segment.measured[:, 8] + np.angle(np.exp(1j * (out[:, 8] - segment.measured[:, 8])))  # yaw
        return out

    # --- outputs -----------------------------------------------------------------------------------------------
    def reality_profile(self, values: Mapping[str, float], name: str) -> dict:
        """A ``launch/realities`` multirotor profile with the fitted values (noise-free, no link faults)."""
        v = self.values(values)
        profile: dict = {"name": name, "vehicle": self.vehicle, "physics_hz": PHYSICS_HZ}
        for key in ("mass_scale", "kf_scale", "motor_time_constant_scale", "drag_scale", "battery_sag", "latency_s"):
            profile[key] = round(v[key], 6)
        return profile

    def randomizer_block(self, intervals: Mapping[str, tuple[float, float]]) -> dict:
        """The ``quadrotor`` Params whose ranges cover ``intervals``: the profile's mass scale sets mass and inertia,
        its kf scale kf and km (as the emulator applies them); the rest map one to one."""
        targets = {"mass_scale": ("quadrotor.mass", "quadrotor.inertia"), "kf_scale": ("quadrotor.kf", "quadrotor.km"),
                   "motor_time_constant_scale": ("quadrotor.motor.time_constant",), "drag_scale": ("quadrotor.drag",),
                   "battery_sag": ("quadrotor.battery.sag",), "latency_s": ("quadrotor.latency",)}
        params = [{"name": param, "range": [round(float(low), 6), round(float(high), 6)]}
                  for key, (low, high) in intervals.items() if key in targets for param in targets[key]]
        return {"randomizers": [{"group": "quadrotor", "params": params}]}

    def close(self) -> None:
        for quad in self._vehicles.values():
            quad.close()
        self._vehicles.clear()


def _setpoint(row: np.ndarray):
    """The HAL setpoint of one command row (``_COMMAND_WIDTH`` layout)."""
    if row[1] == SETPOINT_KINDS["Ctbr"]:
        return Ctbr(float(row[2]), np.array(row[3:6], dtype=float))
    return AttitudeThrust(float(row[2]), float(row[3]), float(row[4]), float(row[5]))


def _kinematic_state(row: np.ndarray) -> tuple:
    """(position, quaternion x y z w, velocity, body rates) of one measured row; the attitude is rebuilt from the
    body z axis (world x, y components, upright) and the ZYX yaw, whose body x axis lies in the yaw's vertical
    plane."""
    bx, by, yaw = float(row[6]), float(row[7]), float(row[8])
    bz = math.sqrt(max(1.0 - bx * bx - by * by, 1e-6))
    norm = math.sqrt(bx * bx + by * by + bz * bz)
    bx, by, bz = bx / norm, by / norm, bz / norm
    ny_x, ny_y = -math.sin(yaw), math.cos(yaw)  # normal of the yaw's vertical plane
    xx, xy, xz = ny_y * bz, -ny_x * bz, ny_x * by - ny_y * bx  # (normal × body z): body x
    n = math.sqrt(xx * xx + xy * xy + xz * xz)
    xx, xy, xz = xx / n, xy / n, xz / n
    yx, yy, yz = by * xz - bz * xy, bz * xx - bx * xz, bx * xy - by * xx  # body z × body x
    rotation = np.array([[xx, yx, bx], [xy, yy, by], [xz, yz, bz]])
    return row[0:3], matrix_to_quaternion(rotation), row[3:6], row[9:12]


def _place(physics, row: np.ndarray) -> None:
    """Set the body's kinematic state to a measured row; rotor speeds, step count and battery carry on."""
    steps, battery = physics.steps, physics.battery_used
    position, quaternion, velocity, rates = _kinematic_state(row)
    physics.reset(position, quaternion, velocity, rates, rpm=physics.rpm, rng=physics.wind.rng)
    physics.steps, physics.battery_used = steps, battery


def _channels(kin) -> np.ndarray:
    """The measured channels of one noise-free state (see :meth:`QuadrotorModel._measured`)."""
    r = kin.rotation
    return np.array([*kin.position, *kin.velocity, r[2], r[5], math.atan2(r[3], r[0]), *kin.body_rates])


def quadrotor_model(meta: dict, path: str = "log") -> QuadrotorModel:
    """The quadcopter model of a log whose meta record is ``meta`` (``vehicle`` and ``rate_hz``)."""
    vehicle, rate = meta.get("vehicle"), meta.get("rate_hz")
    if vehicle not in QUADROTORS:
        raise UserError(f"{path}: the meta record names no known vehicle (got {vehicle!r}; known: "
                        f"{', '.join(sorted(QUADROTORS))})")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not rate > 0:
        raise UserError(f"{path}: the meta record has no control rate (rate_hz)")
    return QuadrotorModel(vehicle, 1.0 / float(rate), path)
