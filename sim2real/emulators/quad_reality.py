"""The "reality" behind an emulated multirotor (the Crazyflie emulator and the MAVLink vehicle both fly it).

A profile (``launch/realities/*quad*.yaml`` / ``crazyflie*.yaml``) says how the emulated vehicle differs from the
training simulator and which link faults to inject; :class:`EmulatedQuad` is the PyBullet quadrotor with its onboard
controller cascade (:class:`sim2real.sim.multirotor.SimMultirotor`) advanced in wall-clock time.

Frames: world ENU (m, m/s), body FLU (rad/s). Every key is optional; unknown keys and out-of-range values are user
errors naming the key.
"""
from __future__ import annotations

import heapq
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pybullet as p

from robots.quadrotor import QUADROTORS, get_quadrotor_spec
from sim2real.emulators.reality import build_section, check_number, fault_seed, read_profile
from sim2real.errors import UserError
from sim2real.hal.multirotor import MotorRpm, MultirotorState, Setpoint
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig
from sim2real.sim.multirotor import SimMultirotor

RIGHTED_AFTER_S = 1.0  # s a crashed vehicle lies still on the floor, motors off, before the operator rights it
TIPPED_RAD = math.radians(45.0)  # tilt (rad) past which a vehicle lying on the floor cannot take off

@dataclass(frozen=True)
class LinkFaults:
    """Injected link faults, active from ``after_s`` s of serving on: each datagram (both directions) is dropped
    with ``drop_probability``; each outgoing one is held back ``delay_s`` with ``delay_probability``; from
    ``silent_after_s`` the link is cut for ``silent_for_s`` s (``None``: for good) — nothing in, nothing out; from
    ``stream_pause_after_s`` the vehicle stops streaming state for ``stream_pause_s`` s but still obeys commands.
    ``seed`` fixes the fault sequence (reproducible tests); ``None`` (default) draws it from OS entropy, so no two
    emulator starts lose the same datagram."""

    drop_probability: float = 0.0
    delay_probability: float = 0.0
    delay_s: float = 0.0
    silent_after_s: float | None = None
    silent_for_s: float | None = None
    stream_pause_after_s: float | None = None
    stream_pause_s: float = 0.0
    after_s: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class QuadReality:
    """Physical differences from the training simulator (scales multiply the spec's nominal values).

    ``vehicle``: a :mod:`robots.quadrotor` name; ``physics_hz``: physics and onboard-controller rate (Hz);
    ``battery_sag`` (1/s) thrust loss over time; ``wind`` mean (m/s, world ENU) with gusts of std ``gust_std`` (m/s);
    ``latency_s``: command latency from datagram to motors (s); noise stds of the onboard state estimate in m, m/s
    and rad/s; ``start``: where the vehicle stands on the ground (x, y in m, world ENU; several vehicles of one
    emulator are placed 0.5 m apart along +x).
    """

    name: str = "nominal"
    seed: int = 0
    vehicle: str = "crazyflie"
    physics_hz: float = 240.0
    mass_scale: float = 1.0
    kf_scale: float = 1.0
    motor_time_constant_scale: float = 1.0
    drag_scale: float = 1.0
    battery_sag: float = 0.0
    wind: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gust_std: float = 0.0
    latency_s: float = 0.0
    position_noise_std: float = 0.0
    velocity_noise_std: float = 0.0
    gyro_noise_std: float = 0.0
    start: tuple[float, float] = (0.0, 0.0)
    faults: LinkFaults = field(default_factory=LinkFaults)


_RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**31 - 1), "physics_hz": (100.0, 1000.0), "mass_scale": (0.5, 2.0), "kf_scale": (0.5, 2.0),
    "motor_time_constant_scale": (0.2, 5.0), "drag_scale": (0.0, 5.0), "battery_sag": (0.0, 0.05),
    "gust_std": (0.0, 3.0), "latency_s": (0.0, 0.2), "position_noise_std": (0.0, 0.1),
    "velocity_noise_std": (0.0, 0.5), "gyro_noise_std": (0.0, 0.5), "drop_probability": (0.0, 1.0),
    "delay_probability": (0.0, 1.0), "delay_s": (0.0, 2.0), "silent_after_s": (0.0, 1e6), "silent_for_s": (0.0, 1e6),
    "stream_pause_after_s": (0.0, 1e6), "stream_pause_s": (0.0, 1e6), "after_s": (0.0, 1e6),
}
_VECTORS = {"wind": (3, -10.0, 10.0), "start": (2, -50.0, 50.0)}


def _value(where: str, key: str, value: object) -> object:
    if key == "name":
        return str(value)
    if key == "vehicle":
        if value not in QUADROTORS:
            raise UserError(f"{where}: vehicle must be one of {', '.join(sorted(QUADROTORS))}, got {value!r}")
        return value
    if key in _VECTORS:
        size, low, high = _VECTORS[key]
        if (not isinstance(value, list) or len(value) != size
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise UserError(f"{where}: {key} must be a list of {size} numbers, got {value!r}")
        if not all(low <= v <= high for v in value):
            raise UserError(f"{where}: {key}={value} outside {low}..{high}")
        return tuple(float(v) for v in value)
    return check_number(where, key, value, key == "seed", _RANGES)


def load_quad_reality(path: str | None) -> QuadReality:
    """Read and validate a multirotor reality profile (``None``: the nominal Crazyflie)."""
    if path is None:
        return QuadReality()
    return build_section(QuadReality, read_profile(path), path, _value, {"faults": LinkFaults})


class LinkFaultState:
    """Decides per datagram what the injected faults do on the link of vehicle ``vehicle`` (index in its emulator).

    Drawn with ``stats["seed"]``: ``faults.seed`` if the profile sets one (same seed ⇒ same fault sequence), else
    fresh OS entropy on every start (:func:`sim2real.emulators.reality.fault_seed`)."""

    def __init__(self, faults: LinkFaults, vehicle: int = 0) -> None:
        self.faults = faults
        seed = fault_seed(faults.seed)
        self.rng = np.random.default_rng((seed, vehicle))
        self.stats = {"received": 0, "sent": 0, "dropped": 0, "delayed": 0, "silenced": 0, "seed": seed}

    def _active(self, now: float) -> bool:
        return now >= self.faults.after_s

    def silent(self, now: float) -> bool:
        """Whether the link is cut at ``now`` (s since the emulator started)."""
        f = self.faults
        if f.silent_after_s is None or now < f.silent_after_s:
            return False
        return f.silent_for_s is None or now < f.silent_after_s + f.silent_for_s

    def streaming(self, now: float) -> bool:
        """Whether state streams are sent at ``now``."""
        f = self.faults
        return f.stream_pause_after_s is None or not (f.stream_pause_after_s <= now < f.stream_pause_after_s
                                                      + f.stream_pause_s)

    def accept(self, now: float) -> bool:
        """Whether an incoming datagram reaches the vehicle."""
        self.stats["received"] += 1
        if self.silent(now):
            self.stats["silenced"] += 1
            return False
        if self._active(now) and self.faults.drop_probability and self.rng.random() < self.faults.drop_probability:
            self.stats["dropped"] += 1
            return False
        return True

    def outgoing_delay(self, now: float) -> float | None:
        """Seconds to hold an outgoing datagram back, or ``None`` to drop it."""
        f = self.faults
        if self.silent(now):
            self.stats["silenced"] += 1
            return None
        if self._active(now):
            if f.drop_probability and self.rng.random() < f.drop_probability:
                self.stats["dropped"] += 1
                return None
            if f.delay_probability and self.rng.random() < f.delay_probability:
                self.stats["delayed"] += 1
                return f.delay_s
        self.stats["sent"] += 1
        return 0.0


class EmulatedQuad:
    """One vehicle: physics + onboard controller stepped at ``physics_hz`` up to the wall-clock time it is given.

    ``setpoint`` is what the firmware currently asks of the controller cascade (``None``: motors off).
    """

    def __init__(self, reality: QuadReality, index: int = 0) -> None:
        self.reality = reality
        self.spec = get_quadrotor_spec(reality.vehicle)
        config = QuadPhysicsConfig(physics_hz=reality.physics_hz, control_hz=reality.physics_hz)
        self.sim = SimMultirotor(self.spec, config)
        physics, spec = self.sim.physics, self.spec
        physics.kf = physics.kf * reality.kf_scale
        physics.km = physics.km * reality.kf_scale
        physics.motor_time_constant = spec.motor_time_constant * reality.motor_time_constant_scale
        physics.drag = physics.drag * reality.drag_scale
        physics.battery_sag = reality.battery_sag
        physics.wind.mean = np.asarray(reality.wind, dtype=float)
        physics.wind.gust_std = reality.gust_std
        physics.set_mass_properties(spec.mass * reality.mass_scale, np.asarray(spec.inertia) * reality.mass_scale)
        physics.update_model()
        self.sim.position_noise_std = reality.position_noise_std
        self.sim.velocity_noise_std = reality.velocity_noise_std
        self.sim.gyro_noise_std = reality.gyro_noise_std
        rest = spec.collision_half_extents[2] + 0.001
        self.home = np.array([reality.start[0] + 0.5 * index, reality.start[1], rest])
        self.sim.reset(self.home, rpm=0.0, rng=np.random.default_rng(reality.seed + 17 * index))
        self.setpoint: Setpoint | None = None
        self.sim.send_command(MotorRpm(np.zeros(4)))  # at once (latency still 0): motors off from the start
        self.sim.latency = reality.latency_s
        self.behind_s = 0.0  # wall-clock time skipped because physics could not keep up (s)
        self._tipped_since: float | None = None  # emulated s since when it has lain still, tipped (the operator)

    @property
    def time(self) -> float:
        """Simulated seconds since the emulator started."""
        return self.sim.physics.time

    def command(self, setpoint: Setpoint | None) -> None:
        """What the firmware asks for now (``None``: motors off); reaches the motors after ``latency_s``."""
        if setpoint is None:
            if self.setpoint is not None:
                self.sim.controller.reset()
            setpoint = MotorRpm(np.zeros(4))
            self.setpoint = None
        else:
            self.setpoint = setpoint
        self.sim.send_command(setpoint)

    def advance_to(self, now: float, each_step=None) -> None:
        """Step physics until simulated time reaches ``now`` (s); ``each_step(quad)`` runs before every step (the
        firmware's per-step commander). More than 0.25 s behind, the rest is skipped and counted in ``behind_s``."""
        dt = self.sim.config.dt
        steps = int(math.floor((now - self.behind_s - self.time) / dt))
        if steps * dt > 0.25:
            skipped = steps - int(0.25 / dt)
            self.behind_s += skipped * dt
            steps -= skipped
        for _ in range(max(steps, 0)):
            if each_step is not None:
                each_step(self)
            self.sim.advance(1)

    def state(self) -> MultirotorState:
        """Onboard state estimate (true state plus the profile's noise), world ENU / body FLU."""
        return self.sim.read_state()

    @property
    def battery_voltage(self) -> float:
        """1S LiPo voltage (V) from the battery-sag thrust factor: 4.2 V full, 3.0 V at the model's floor (0.5); it
        falls only while the motors draw power (:class:`sim2real.sim.quadrotor_physics.QuadrotorPhysics`)."""
        return 4.2 - 2.4 * (1.0 - self.sim.physics.battery_factor)

    @property
    def tilt(self) -> float:
        """Angle (rad) between body z and world z."""
        r8 = float(self.sim.true_kinematics().rotation[8])
        return math.acos(max(-1.0, min(1.0, r8)))

    def clearance(self) -> float:
        """Height (m) of the body's lowest point (its collision box, in any attitude) above the floor (z = 0)."""
        kin = self.sim.true_kinematics()
        r, h = kin.rotation, self.spec.collision_half_extents
        return float(kin.position[2]) - sum(abs(r[6 + j]) * h[j] for j in range(3))

    def on_ground(self) -> bool:
        """Land-detector view: touching the floor (lowest point under 3 cm) and not moving vertically, upright or
        lying on its side or back."""
        return self.clearance() < 0.03 and abs(self.sim.true_kinematics().velocity[2]) < 0.1

    def operator(self) -> float | None:
        """The lab's operator, once per physics step: a vehicle that has lain still on the floor with its motors
        off, tipped past 45°, for :data:`RIGHTED_AFTER_S` s (emulated time) is picked up and set back on its feet on
        its start mark (``home``), heading kept, as a person does after a crash. Returns the tilt (rad) it lay at
        when it was righted, else None."""
        kin = self.sim.true_kinematics() if self.setpoint is None else None
        resting = (kin is not None and self.clearance() < 0.01 and self.tilt > TIPPED_RAD
                   and math.hypot(*kin.velocity) < 0.05 and math.hypot(*kin.body_rates) < 0.5)
        if not resting:
            self._tipped_since = None
            return None
        if self._tipped_since is None:
            self._tipped_since = self.time
        if self.time - self._tipped_since < RIGHTED_AFTER_S:
            return None
        tilt, r = self.tilt, kin.rotation
        heading = math.atan2(r[3], r[0]) if math.hypot(r[0], r[3]) > 0.1 else math.atan2(-r[1], r[4])
        physics = self.sim.physics
        p.resetBasePositionAndOrientation(physics.body, [float(v) for v in self.home],
                                          [0.0, 0.0, math.sin(heading / 2), math.cos(heading / 2)],
                                          physicsClientId=physics.client)
        p.resetBaseVelocity(physics.body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=physics.client)
        self.sim.controller.reset()
        self._tipped_since = None
        return tilt

    def close(self) -> None:
        self.sim.close()


class UdpEmulatorBase:
    """What the UDP emulators share: a monotonic clock from start, a JSON-lines journal, datagrams held back by
    injected delays, a stop flag and a serving thread. Subclasses implement ``serve()``."""

    thread_name = "udp-emulator"

    def _init_base(self, journal: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: the emulator's time source (s, monotonic); physics, firmware timers and the battery run on
        it (tests pass a fake clock to run minutes of emulated time in seconds)."""
        self._journal = open(journal, "a", encoding="utf-8") if journal else None
        self._delayed: list[tuple[float, int, object]] = []
        self._serial = 0
        self._clock = clock
        self._start = clock()
        self._stop = threading.Event()

    def now(self) -> float:
        """Seconds since the emulator started, on its clock."""
        return self._clock() - self._start

    def _write(self, record: dict) -> None:
        if self._journal is not None:
            self._journal.write(json.dumps(record) + "\n")

    def _flush_journal(self) -> None:
        if self._journal is not None:
            self._journal.flush()

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _hold_back(self, due: float, item: object) -> None:
        """Keep ``item`` (what to send) until ``due`` (s, emulator clock)."""
        self._serial += 1
        heapq.heappush(self._delayed, (due, self._serial, item))

    def _released(self, now: float) -> list:
        """Held-back items whose time has come, oldest first."""
        out = []
        while self._delayed and self._delayed[0][0] <= now:
            out.append(heapq.heappop(self._delayed)[2])
        return out

    def _next_release(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def start_thread(self) -> threading.Thread:
        """Serve in a daemon thread (tests of the protocol itself; real use runs ``sim2real emulate``)."""
        thread = threading.Thread(target=self.serve, name=self.thread_name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
