"""Quadcopter excitation for ``sim2real sysid collect``: thrust and body-rate doublets around hover, flown through the
ordinary multirotor deployment loop (:class:`sim2real.deploy.multirotor.MultirotorDeploymentLoop`: safety layer,
watchdog, e-stop, JSON-lines log, landing on any trip).

The excitation is a scripted :class:`sim2real.agents.Policy` on the hover task with CTBR actions (collective thrust
+ body rates): a host-side stabilizer (PD + integral on the position error, tilt towards the wanted acceleration)
holds the hover point, and doublets are added on top of its commands — collective thrust ± a fraction of the
nominal weight (vertical accelerations of known commanded thrust), then roll, pitch and yaw rate ± a rate, each
followed by a settling stretch. Before every episode the loop's approach phase flies to a random start with
position setpoints (the position holds); the stabilizer then brings the vehicle back to the hover point
(horizontal flight for the drag). Frames: world ENU, body FLU; units SI.

For the CLI, one call collects a log on a connected vehicle::

    collect_quadrotor(robot, spec, log_path, *, rate_hz=50.0, excitation=QuadExcitationConfig(), seed=0,
                      stop_file=None, geofence=None, limits=None) -> (DeployResult, problems)

``robot`` is a connected :class:`sim2real.hal.flight.FlightVehicle` in CTBR mode (``CrazyflieDriver(spec, uri,
"ctbr")`` or ``MavlinkDriver(spec, url)``; :func:`connect_vehicle` builds and connects one); the log is the
ordinary deployment log (meta ``kind: multirotor``, ``action_mode: ctbr``) that ``sim2real sysid fit`` reads.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from robots.quadrotor import GRAVITY, QuadrotorSpec


@dataclass(frozen=True)
class QuadExcitationConfig:
    """One episode per repetition: ``settle_s`` s of stabilized hover, then each doublet of the schedule
    (:data:`DOUBLETS`: thrust, roll, pitch and yaw rate, then thrust, roll and pitch again with the other sign
    first), each followed by ``settle_s`` s.

    ``thrust_step``: doublet amplitude as a fraction of the nominal weight; ``rate_step``: body-rate doublet
    amplitude (rad/s), 0 for none (both 0: a hover-only flight, which identifies little); ``doublet_s``: length
    of each half of a doublet (s); amplitudes vary ±``spread`` per episode (seeded), so no two doublets are the
    same."""

    episodes: int = 4
    settle_s: float = 1.0
    thrust_step: float = 0.3
    rate_step: float = 2.0
    doublet_s: float = 0.15
    spread: float = 0.3

    def __post_init__(self) -> None:
        if self.episodes < 1 or not (0 <= self.thrust_step <= 0.6 and 0 <= self.rate_step <= 6.0
                                     and 0.02 <= self.doublet_s <= 1.0 and self.settle_s >= 0.2
                                     and 0 <= self.spread < 1):
            raise ValueError(f"excitation out of range: {self}")

    @property
    def episode_s(self) -> float:
        """Length of one episode (s)."""
        return self.settle_s + len(DOUBLETS) * (2 * self.doublet_s + self.settle_s)


# where the state observation (sim2real.tasks.quadrotor.observation) holds the position error (m, world), the velocity
# error (m/s, world) and the rotation body→world (9, row-major)
POSITION_ERROR, VELOCITY_ERROR, ROTATION = slice(0, 3), slice(3, 6), slice(6, 15)
# (channel, sign of the first half): channel 0 thrust, 1 roll rate, 2 pitch rate, 3 yaw rate
DOUBLETS: tuple[tuple[int, float], ...] = ((0, 1.0), (1, 1.0), (2, -1.0), (3, 1.0), (0, -1.0), (1, -1.0), (2, 1.0))


def thrust_to_action(thrust: float, spec: QuadrotorSpec) -> float:
    """Collective thrust (N) → the normalized CTBR thrust action, the inverse of
    :func:`sim2real.tasks.quadrotor.thrust_map` (−1 → 0 N, 0 → hover, 1 → ``max_thrust``)."""
    hover, top = spec.weight, spec.max_thrust
    a = thrust / hover - 1.0 if thrust < hover else (thrust - hover) / (top - hover)
    return float(min(max(a, -1.0), 1.0))


class QuadExcitation:
    """The excitation as a policy (CTBR actions) for the hover task's state observation
    (:func:`sim2real.tasks.quadrotor.observation`: position error, velocity error, rotation, rates, ...).

    Stabilizer gains: position P ``kp`` (1/s²), D ``kd`` (1/s), I ``ki`` (1/s³; with the integral clipped at
    ±2 m·s a thrust-to-weight error up to ±50 % is absorbed); attitude P ``katt`` (1/s) on the tilt error, yaw rate
    −``kyaw``·yaw."""

    def __init__(self, spec: QuadrotorSpec, rate_hz: float, config: QuadExcitationConfig = QuadExcitationConfig(),
                 seed: int = 0, kp: float = 4.0, kd: float = 3.5, ki: float = 2.5, katt: float = 4.0,
                 kyaw: float = 2.0) -> None:
        self.spec, self.period, self.config = spec, 1.0 / rate_hz, config
        self.gains = (kp, kd, ki, katt, kyaw)
        self.rng = np.random.default_rng(seed)
        self.reset_trial()

    # --- Policy protocol ------------------------------------------------------------------------------------
    def reset_trial(self) -> None:
        self._integral = np.zeros(3)
        self._start_episode()

    def observe(self, reward: float, terminated: bool, truncated: bool) -> None:
        if terminated or truncated:
            self._start_episode()

    def goal_estimate(self) -> np.ndarray | None:
        return None

    def act(self, obs: Sequence[float]) -> np.ndarray:
        o = np.asarray(obs, dtype=float)
        action = self._stabilize(o[POSITION_ERROR], o[VELOCITY_ERROR], o[ROTATION].reshape(3, 3))
        channel, value = self._doublet(self._step * self.period)
        if channel == 0:
            action[0] = thrust_to_action(self._thrust + value * self.spec.weight, self.spec)
        elif channel > 0:
            action[channel] = float(np.clip(action[channel] + value / self.spec.max_body_rate, -1.0, 1.0))
        self._step += 1
        return action

    # --- parts ----------------------------------------------------------------------------------------------
    def _start_episode(self) -> None:
        self._step, self._thrust = 0, self.spec.weight  # the integral (the vehicle's thrust bias) carries over
        c = self.config
        self._amplitudes = 1.0 + c.spread * self.rng.uniform(-1.0, 1.0, len(DOUBLETS))

    def _doublet(self, t: float) -> tuple[int, float]:
        """(channel, added value) at ``t`` s into the episode: channel −1 outside a doublet; thrust in fractions of
        the weight, rates in rad/s."""
        c = self.config
        t -= c.settle_s
        if t < 0:
            return -1, 0.0
        slot = 2 * c.doublet_s + c.settle_s
        index, within = int(t // slot), t % slot
        if index >= len(DOUBLETS) or within >= 2 * c.doublet_s:
            return -1, 0.0
        channel, sign = DOUBLETS[index]
        sign = sign if within < c.doublet_s else -sign
        size = c.thrust_step if channel == 0 else c.rate_step
        return channel, sign * size * float(self._amplitudes[index])

    def _stabilize(self, position_error: np.ndarray, velocity_error: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """CTBR action holding the reference: wanted acceleration → thrust along body z and a tilt-error rate."""
        kp, kd, ki, katt, kyaw = self.gains
        spec = self.spec
        self._integral = np.clip(self._integral + position_error * self.period, -2.0, 2.0)
        accel = kp * position_error + kd * velocity_error + ki * self._integral + np.array([0.0, 0.0, GRAVITY])
        accel[2] = max(accel[2], 0.3 * GRAVITY)
        horizontal = math.hypot(accel[0], accel[1])
        limit = accel[2] * math.tan(0.5 * spec.max_tilt)
        if horizontal > limit:
            accel[:2] *= limit / horizontal
        body_z = rotation[:, 2]
        self._thrust = float(min(max(spec.mass * float(accel @ body_z), 0.0), spec.max_thrust))
        wanted = accel / np.linalg.norm(accel)
        tilt_error = rotation.T @ np.cross(body_z, wanted)  # body frame, small-angle rotation body z → wanted
        yaw = math.atan2(rotation[1, 0], rotation[0, 0])
        rates = np.array([katt * tilt_error[0], katt * tilt_error[1], -kyaw * yaw])
        return np.concatenate(([thrust_to_action(self._thrust, spec)],
                               np.clip(rates / spec.max_body_rate, -1.0, 1.0)))


def connect_vehicle(driver: str, address: str, spec: QuadrotorSpec):
    """A connected CTBR-mode vehicle: ``crazyflie`` (cflib URI) or ``mavlink`` (pymavlink URL); a link that does not
    answer is one :class:`sim2real.errors.UserError` line."""
    from sim2real.errors import UserError
    from sim2real.hal.flight import LinkError

    if driver == "crazyflie":
        from sim2real.hal.crazyflie import CrazyflieDriver
        robot = CrazyflieDriver(spec, address, "ctbr")
    elif driver == "mavlink":
        from sim2real.hal.mavlink import MavlinkDriver
        robot = MavlinkDriver(spec, address)
    else:
        raise UserError(f"--driver {driver}: quadcopters fly through crazyflie or mavlink")
    try:
        robot.connect()
    except LinkError as err:
        robot.disconnect()
        raise UserError(str(err)) from None
    return robot


def collect_quadrotor(robot, spec: QuadrotorSpec, log_path: str, *, rate_hz: float = 50.0,
                      excitation: QuadExcitationConfig = QuadExcitationConfig(), seed: int = 0,
                      stop_file: str | None = None, geofence: tuple[np.ndarray, np.ndarray] | None = None,
                      limits: Mapping[str, float | None] | None = None,
                      clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
    """Fly the excitation on the connected ``robot`` (a :class:`FlightVehicle` in CTBR mode) and write the
    deployment log at ``log_path``; the hover point is 1 m × the vehicle size up, the geofence (low, high corners,
    m, world ENU) defaults to the deploy command's; ``limits`` are the loop's watchdog limits
    (``stale_after_s``, ``overrun_after_s``: :class:`sim2real.deploy.loop.LoopConfig`). Returns
    ``(DeployResult, problems)`` as :func:`sim2real.deploy.loop.run_connected` does (the vehicle is disconnected
    afterwards)."""
    from sim2real.deploy.loop import LoopConfig, run_connected
    from sim2real.deploy.multirotor import MultirotorDeploymentLoop
    from sim2real.hal.safety import MultirotorSafetyConfig, MultirotorSafetyLayer
    from sim2real.tasks.quadrotor import make_quadrotor_task, vehicle_size

    size = vehicle_size(spec.name)
    low, high = geofence if geofence is not None else (np.array([-1.5, -1.5, -0.1]) * size,
                                                       np.array([1.5, 1.5, 2.0]) * size)
    task = make_quadrotor_task("hover", spec, "ctbr")
    safety = MultirotorSafetyLayer(MultirotorSafetyConfig.from_spec(spec, low, high), spec.max_rpm)
    steps = int(round(excitation.episode_s * rate_hz))
    config = LoopConfig(rate_hz, excitation.episodes, steps, seed=seed, **dict(limits or {}))
    policy = QuadExcitation(spec, rate_hz, excitation, seed)
    return run_connected(robot, log_path, stop_file, lambda log, estop: MultirotorDeploymentLoop(
        robot, task, policy, safety, log, config, estop, clock=clock, sleep=sleep))
