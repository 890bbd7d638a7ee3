"""The servo arm as a :class:`~sim2real.sysid.model.SystemModel`: logged joint targets replayed through the arm
emulator's own physics (:class:`~sim2real.emulators.arm.EmulatedArm` with a candidate :class:`RealityProfile`).

Timing of one logged control step (``deploy/loop.py``): at ``t + late`` (s from the loop's start) the loop asks
for the state; the servos report the encoder angles of that instant; the reply arrives ``latency_s`` later (the
profile's reply delay plus the bus transfer), and only then is the step's target written. So the replay samples
the encoders at ``t + late`` and applies each target ``latency_s`` after it: the fitted ``latency_s`` is the delay
from a read to the write that follows it, the quantity a policy feels. Logs whose steps record when the write left
(``sent``: ``sysid collect``'s excitation) are replayed at those times and nothing about timing is fitted
(:meth:`ArmModel.measured`): two delays are measured, and kept apart.

* the *command delay* (median read -> write, s): what a policy feels (the servos' reply delay + bus transfer +
  the computer's scheduling); the replay uses the write times themselves, and the training ranges' action latency
  is this delay in control steps;
* the *reply latency* (``latency_s``, the reality profile's own key: how long a servo takes to answer): the
  quickest state read of the log (``read_s``: request -> reply, a lower bound no scheduling shortens), so the
  fitted profile served by ``sim2real emulate`` adds the same bus and scheduling time on top, as the real bus did.

Servo load: excitation logs record each read's ``efforts`` (N·m, the servos' present current / load); the replay
predicts them (PyBullet's applied motor torque, clipped to the sensor's ±stall-torque range) and the error counts
them, both averaged over ``EFFORT_WINDOW_S``, with ``EFFORT_WEIGHT`` rad per N·m: the holding torque
at a pose shows the link masses directly, a torque pinned at its limit the servo's strength.

Fitted (shared by all joints): ``mass_scale``, ``position_gain``, ``velocity_gain``, ``strength``,
``joint_damping``, ``latency_s``, ``backlash_rad``, ``deadband_ticks``, ``max_velocity`` (the servo's speed cap:
binds once ``sysid collect --rate-limit`` lets targets move at the joints' full speed limit). Not fitted:
``lateral_friction`` (acts only in contacts; a free arm never touches anything), ``gear_friction`` (acts only with
the torque off), sensor noise and bus faults (no
trajectory information), ``timestep`` (the emulator's, not the robot's).
"""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Mapping

import numpy as np
import pybullet

from robots.registry import ROBOTS
from robots.spec import RobotSpec
from sim2real.emulators.arm import EmulatedArm
from sim2real.emulators.reality import Faults, RealityProfile
from sim2real.errors import UserError
from sim2real.sysid.model import FitParameter, Segment

ARM_PARAMETERS: tuple[FitParameter, ...] = (
    FitParameter("mass_scale", 1.0, 0.5, 2.0, log_scale=True),
    FitParameter("position_gain", 0.1, 0.03, 0.4, log_scale=True),
    FitParameter("velocity_gain", 1.0, 0.3, 3.0, log_scale=True),
    FitParameter("strength", 1.0, 0.4, 1.6, log_scale=True),
    FitParameter("joint_damping", 0.05, 0.005, 0.5, log_scale=True),
    FitParameter("latency_s", 0.0, 0.0, 0.06),
    FitParameter("backlash_rad", 0.0, 0.0, 0.02),
    FitParameter("deadband_ticks", 0.0, 0.0, 8.0),
    FitParameter("max_velocity", 4.71, 2.0, 8.0, log_scale=True),
)
_URDF_DAMPING = 0.05  # N·m·s/rad, the joints' <dynamics damping> in robots/urdf/so101.urdf (the training value)
_GAP_PERIODS = 2.5  # a pause longer than this many control periods between logged steps starts a new piece
MOVED_RAD = 0.05  # a joint whose logged targets span less than this (rad) is left out of the error
JITTER_RATIO = 3.0  # a moved joint jittering this many times more than the smoothest one is left out of the error
_MIN_STEPS = 10  # steps a segment needs to say anything
EFFORT_WEIGHT = 0.05  # rad of replay error per N·m of servo-load error (0.1 N·m counts as 5 mrad)
EFFORT_WINDOW_S = 1.0  # s: loads are compared as centred moving averages (a position servo's torque chatters
#                        step to step around what it holds, ±0.3 N·m in the emulator; the average is the load)
HELD_LOAD_NOISE = 0.05  # N·m: a load channel whose held loads stray from gravity by more (RMS) is weighted down
HELD_RAD = 1e-3  # rad: a joint whose targets stay this close over a load window holds still there
POLISH_STEPS = 3  # the gains' basin is narrow: CMA-ES's budget finds it, a few Gauss-Newton steps settle in it
RETRY_S = 0.01  # s: a read this much slower than the log's quickest was answered to a retried request (a lost or
#                 corrupted reply; the drivers wait tens of ms before asking again): its servos sampled then


def _number_rows(records: list[dict], key: str, width: int, path: str) -> np.ndarray:
    """``records[i][key]`` as a finite (N, width) array; one-line UserError naming the first bad record."""
    rows = []
    for i, record in enumerate(records):
        value = record.get(key)
        try:
            row = np.asarray(value, dtype=float).reshape(width)
        except (TypeError, ValueError):
            raise UserError(f"{path}: step record {i + 1} has no usable {key!r} ({width} numbers)") from None
        if not np.all(np.isfinite(row)):
            raise UserError(f"{path}: step record {i + 1}: {key!r} is not finite")
        rows.append(row)
    return np.array(rows).reshape(len(rows), width)


class ArmModel:
    """Replays an arm's logged joint targets; ``spec`` names the joints (order of every array, rad)."""

    kind = "arm"
    parameters = ARM_PARAMETERS
    polish_steps = POLISH_STEPS  # Levenberg-Marquardt steps after CMA-ES (sim2real.sysid.fit.polish)

    def __init__(self, spec: RobotSpec, period: float, path: str = "log") -> None:
        self.spec, self.period, self.path = spec, period, path
        # the replayed channels: joint angles (rad), then the servos' load (N·m, weighted EFFORT_WEIGHT rad/N·m)
        self.channels = tuple(spec.joint_names) + tuple(f"{name} load" for name in spec.joint_names)
        self.error_units = " rad"
        self._base = RealityProfile(name="sysid", faults=Faults(seed=0))
        self._sensor_range = np.array([j.max_effort for j in spec.joints])  # N·m: present load/current saturates
        self.command_delay: tuple[float, float, float] | None = None  # s: 10th, 50th, 90th percentile (measured)
        self._window = max(1, int(round(EFFORT_WINDOW_S / period)))  # control steps of the load average
        self._arm: tuple[RealityProfile, EmulatedArm] | None = None  # the last replay's arm, reused for its reality

    # --- log -> segments ---------------------------------------------------------------------------------------
    def segments(self, records: list[dict], segment_s: float) -> list[Segment]:
        """Contiguous runs of step records (home and policy phases alike), cut into pieces of ``segment_s`` s."""
        steps = [r for r in records if r.get("type") == "step"]
        if len(steps) < _MIN_STEPS:
            raise UserError(f"{self.path}: {len(steps)} control steps logged; a fit needs at least {_MIN_STEPS}")
        n = len(self.spec.joint_names)
        times = np.array([float(s.get("t", np.nan)) + float(s.get("late", 0.0) or 0.0) for s in steps])
        if not np.all(np.isfinite(times)):
            raise UserError(f"{self.path}: a step record has no time 't'")
        times = times + retried_read_delay(steps)
        sent = np.array([float(s["sent"]) if isinstance(s.get("sent"), (int, float)) else np.nan for s in steps])
        positions = _number_rows(steps, "positions", n, self.path)
        commands = _number_rows([{**s, "applied": s.get("applied", s.get("command"))} for s in steps], "applied", n,
                                self.path)
        velocities = np.array([np.asarray(s["velocities"], dtype=float) if len(s.get("velocities") or []) == n
                               else np.full(n, np.nan) for s in steps])
        # servo loads: excitation steps log them; home and policy steps do not (their segments compare angles only)
        loaded = np.array([s.get("efforts") is not None for s in steps])
        efforts = np.zeros((len(steps), n))
        if loaded.any():
            efforts[loaded] = _number_rows([s for s, has in zip(steps, loaded) if has], "efforts", n, self.path)
        moved = self._weights(commands, positions)
        load_weights = np.zeros(n)
        if loaded.any():
            load_weights = EFFORT_WEIGHT * moved * self.load_trust(commands[loaded], positions[loaded], efforts[loaded])
        breaks = np.flatnonzero(np.diff(times) > _GAP_PERIODS * self.period) + 1
        if np.any(np.diff(times) <= 0):
            breaks = np.union1d(breaks, np.flatnonzero(np.diff(times) <= 0) + 1)  # a new deployment in one file
        pieces: list[Segment] = []
        rows_per_segment = max(_MIN_STEPS, int(round(segment_s / self.period)))
        for run in np.split(np.arange(len(steps)), breaks):
            for start in range(0, len(run), rows_per_segment):
                rows = run[start:start + rows_per_segment]
                if len(rows) < max(_MIN_STEPS, rows_per_segment // 2):
                    continue
                first = rows[0]
                previous = commands[first - 1] if first > run[0] else positions[first]
                qd = velocities[first] if np.all(np.isfinite(velocities[first])) else np.zeros(n)
                writes = sent[rows] - times[first] if np.all(np.isfinite(sent[rows])) else None
                weights = np.concatenate([moved, load_weights * bool(loaded[rows].all())])
                pieces.append(Segment(times=times[rows] - times[first], commands=commands[rows], write_times=writes,
                                      measured=np.hstack([positions[rows],
                                                          moving_average(efforts[rows], self._window)]),
                                      initial=np.concatenate([positions[first], qd, previous]),
                                      weights=weights, source=f"{self.path} steps {first + 1}-{rows[-1] + 1}"))
        if not pieces:
            raise UserError(f"{self.path}: no contiguous run of {max(_MIN_STEPS, rows_per_segment // 2)} control "
                            f"steps ({segment_s:g} s segments at {1 / self.period:g} Hz)")
        return pieces

    def measured(self, records: list[dict]) -> dict[str, float]:
        """Parameters the log measures directly, when its steps record their write time (``sent``, excitation
        logs): ``latency_s``, the servos' reply latency = the quickest read (``read_s``); logs without read
        durations (older excitation logs) give the median read -> write delay instead. Also sets
        :attr:`command_delay` (the read -> write delay's 10th, 50th, 90th percentile, s)."""
        steps = [s for s in records if s.get("type") == "step" and isinstance(s.get("sent"), (int, float))]
        if len(steps) < _MIN_STEPS:
            return {}
        delays = np.array([s["sent"] - s["t"] - (s.get("late") or 0.0) for s in steps], dtype=float)
        self.command_delay = tuple(float(v) for v in np.percentile(delays, [10, 50, 90]))
        reads = np.array([s["read_s"] for s in steps if isinstance(s.get("read_s"), (int, float))], dtype=float)
        reads = reads[np.isfinite(reads) & (reads >= 0)]
        reply = float(reads.min()) if len(reads) >= _MIN_STEPS else self.command_delay[1]
        box = next(p for p in self.parameters if p.name == "latency_s")
        return {"latency_s": float(np.clip(reply, box.low, box.high))}

    def load_trust(self, commands: np.ndarray, positions: np.ndarray, efforts: np.ndarray) -> np.ndarray:
        """Per joint, how far its load channel can be replayed (0..1), from the log alone: while a servo holds
        still (targets within ``HELD_RAD`` over a load window) its averaged load should be the gravity torque at
        the measured pose times one mass scale shared by all joints (least squares, inside the fit's box).
        The RMS of what strays from that is the channel's noise: load that chatters through the average, or a soft
        servo resting anywhere in its deadband, whose holding torque depends on how it got there. The channel is
        weighted by (``HELD_LOAD_NOISE`` / that RMS)² (inverse variance), at most 1; 1 where nothing held."""
        n = len(self.spec.joint_names)
        trust = np.ones(n)
        if len(commands) <= self._window:
            return trust
        half = self._window // 2
        spans = np.ptp(np.lib.stride_tricks.sliding_window_view(commands, 2 * half + 1, axis=0), axis=-1)
        held = np.zeros(commands.shape, dtype=bool)
        held[half:half + len(spans)] = spans < HELD_RAD
        if held.sum() < _MIN_STEPS:
            return trust
        averaged = moving_average(efforts, self._window)
        gravity = gravity_torques(self.spec, positions)
        box = next(p for p in self.parameters if p.name == "mass_scale")
        scale = float(np.clip(averaged[held] @ gravity[held] / max(float(gravity[held] @ gravity[held]), 1e-12),
                              box.low, box.high))
        for j in range(n):
            if held[:, j].sum() >= _MIN_STEPS:
                stray = float(np.sqrt(np.mean((averaged[held[:, j], j] - scale * gravity[held[:, j], j]) ** 2)))
                trust[j] = min(1.0, (HELD_LOAD_NOISE / max(stray, 1e-9)) ** 2)
        return trust

    def close(self) -> None:
        """Free the replay's physics client."""
        if self._arm is not None:
            self._arm[1].close()
            self._arm = None

    def _weights(self, commands: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """1 for each joint the log moved by more than ``MOVED_RAD`` (its targets' range) and that follows its
        targets smoothly, 0 for the rest and the gripper. A joint that only held still tells nothing; a joint that
        jitters (its typical step-to-step acceleration, the median |second difference| of its readings, more than
        ``JITTER_RATIO`` times the smoothest moved joint's: the limit cycle of the light wrist and gripper links
        shaking the wrist) follows no replay in phase."""
        moved = np.ptp(commands, axis=0) > MOVED_RAD
        gripper = self.spec.end_effector.gripper
        if gripper is not None:
            moved &= np.array([n not in gripper.joints for n in self.spec.joint_names])
        if moved.any() and len(positions) > 2:
            jitter = np.median(np.abs(np.diff(positions, 2, axis=0)), axis=0)
            floor = max(float(jitter[moved].min()), 1e-4)
            moved &= jitter <= JITTER_RATIO * floor
        return moved.astype(float)

    # --- replay ------------------------------------------------------------------------------------------------
    def profile(self, values: Mapping[str, float], name: str = "sysid") -> RealityProfile:
        """The reality profile of ``values`` (noise-free, fault-free; unfitted keys at their defaults)."""
        settings = {p.name: float(values.get(p.name, p.nominal)) for p in self.parameters}
        settings["deadband_ticks"] = int(round(settings["deadband_ticks"]))
        known = {f.name for f in fields(RealityProfile)}
        return RealityProfile(**{**{k: getattr(self._base, k) for k in known}, **settings, "name": name})

    def simulate(self, segment: Segment, values: Mapping[str, float]) -> np.ndarray:
        """Encoder angles (T, joints) rad at the segment's read times, then the servos' loads (N·m, averaged as the
        segment's), targets applied at the logged write times or ``latency_s`` after each read; the arm starts at
        the measured pose and velocity, holding the target written before the segment."""
        reality = self.profile(values)
        if self._arm is None or self._arm[0] != reality:  # a fit replays every segment with one candidate in turn
            self.close()
            self._arm = (reality, EmulatedArm(self.spec, reality))
        out = _replay(self._arm[1], segment, reality.latency_s, self._sensor_range)
        n = len(self.spec.joint_names)
        out[:, n:] = moving_average(out[:, n:], self._window)
        return out

    # --- outputs -----------------------------------------------------------------------------------------------
    def reality_profile(self, values: Mapping[str, float], name: str) -> dict:
        """A ``launch/realities`` arm profile with the fitted values (loadable by ``sim2real emulate``)."""
        settings: dict = {"name": name}
        for p in self.parameters:
            value = float(values.get(p.name, p.nominal))
            settings[p.name] = int(round(value)) if p.name == "deadband_ticks" else round(value, 6)
        return settings

    def randomizer_block(self, intervals: Mapping[str, tuple[float, float]]) -> dict:
        """The ``dynamics`` (and ``actuation`` latency) Params of the simulator whose ranges cover ``intervals``.

        Scales map one to one (link mass, strength) or relative to the spec's nominal gains; damping is added to
        the URDF's 0.05 N·m·s/rad; latency becomes whole control steps (the simulator delays actions by steps).
        Backlash and deadband have no training Param and are left out."""
        actuator = self.spec.actuator(self.spec.joint_names[0])
        scale = {"mass_scale": ("dynamics.link.mass", 1.0), "strength": ("dynamics.actuator.strength", 1.0),
                 "position_gain": ("dynamics.actuator.position_gain", actuator.position_gain),
                 "velocity_gain": ("dynamics.actuator.velocity_gain", actuator.velocity_gain)}
        params = []
        for key, (param, nominal) in scale.items():
            if key in intervals:
                low, high = intervals[key]
                params.append({"name": param, "range": [round(low / nominal, 4), round(high / nominal, 4)]})
        if "joint_damping" in intervals:
            low, high = intervals["joint_damping"]
            added = [round(max(value - _URDF_DAMPING, 0.0), 4) for value in (low, high)]
            params.append({"name": "dynamics.joint.damping", "range": added})
        block = [{"group": "dynamics", "params": params}]
        if "latency_s" in intervals:  # the delay a policy feels: the measured command delay where the log has one
            low, high = intervals["latency_s"] if self.command_delay is None else self.command_delay[::2]
            block.append({"group": "actuation", "params": [
                {"name": "actuation.latency",
                 "range": [int(math.floor(low / self.period)), int(math.ceil(high / self.period))]}]})
        return {"randomizers": block}


def _replay(arm: EmulatedArm, segment: Segment, latency: float, sensor_range: np.ndarray) -> np.ndarray:
    """Step ``arm`` through ``segment``: reads at ``segment.times``, each target written ``latency`` s later (or at
    the segment's write times). Rows: encoder angles (rad), then the servos' load (N·m, within ``sensor_range``)."""
    n = segment.commands.shape[1]
    arm.place(segment.initial[:n], segment.initial[n:2 * n])
    arm.torque_on[:] = True
    arm.mode = ["position"] * n
    arm.goal = segment.initial[2 * n:3 * n].astype(float).copy()
    arm.time = 0.0
    writes = segment.times + latency if segment.write_times is None else segment.write_times
    out = np.empty_like(segment.measured)
    w = 0
    for k, t_read in enumerate(segment.times):
        while w < len(writes) and writes[w] <= t_read:  # targets due before this read (latency > a period)
            arm.advance_to(writes[w])
            arm.goal = segment.commands[w].astype(float).copy()
            w += 1
        arm.advance_to(t_read)
        out[k, :n] = arm.encoder_positions()
        out[k, n:] = np.clip(arm.measure()[2], -sensor_range, sensor_range)
    return out


def gravity_torques(spec: RobotSpec, positions: np.ndarray) -> np.ndarray:
    """Joint torques (T, joints) N·m holding the nominal arm still against gravity at each row of ``positions``."""
    arm = EmulatedArm(spec, RealityProfile(name="gravity"))
    try:
        zero = [0.0] * positions.shape[1]
        return np.array([pybullet.calculateInverseDynamics(arm.handle.body, [float(v) for v in q], zero, zero,
                                                           physicsClientId=arm.client) for q in positions])
    finally:
        arm.close()


def retried_read_delay(steps: list[dict]) -> np.ndarray:
    """s from each step's read request to the instant its servos sampled: 0, except for reads that outlast the
    log's quickest by more than ``RETRY_S`` (``read_s``: request -> reply), answered to a retried request: the
    servos sampled a reply latency (the quickest read) before the reply came. Zeros for logs without ``read_s``."""
    reads = np.array([float(s["read_s"]) if isinstance(s.get("read_s"), (int, float)) else np.nan for s in steps])
    usable = np.isfinite(reads) & (reads >= 0)
    if usable.sum() < _MIN_STEPS:
        return np.zeros(len(steps))
    extra = np.where(usable, reads - reads[usable].min(), 0.0)
    return np.where(extra > RETRY_S, extra, 0.0)


def moving_average(rows: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``rows`` (T, channels) over ``window`` rows, shorter at the ends."""
    kernel = np.ones(window)
    counts = np.convolve(np.ones(len(rows)), kernel, "same")
    return np.stack([np.convolve(column, kernel, "same") for column in rows.T], axis=1) / counts[:, None]


def arm_model(meta: dict, path: str = "log") -> ArmModel:
    """The arm model of a log whose meta record is ``meta`` (its joint names pick the robot spec)."""
    joints = meta.get("joints")
    rate = meta.get("rate_hz")
    if not isinstance(joints, list) or not isinstance(rate, (int, float)) or not rate > 0:
        raise UserError(f"{path}: the meta record names no joints or control rate (not an arm deployment log)")
    for factory in ROBOTS.values():
        spec = factory()
        if list(spec.joint_names) == joints:
            return ArmModel(spec, 1.0 / float(rate), path)
    raise UserError(f"{path}: no servo-arm spec has the joints {joints}")
