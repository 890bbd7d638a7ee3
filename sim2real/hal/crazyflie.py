"""Crazyflie 2.x through Bitcraze's ``cflib``: a :class:`FlightVehicle` on any cflib URI (``radio://0/80/2M/E7E7E7E7E7``
on hardware, ``udp://127.0.0.1:19850`` for ``sim2real emulate crazyflie``).

State comes from three log blocks at ``log_period_ms`` (default 10 ms = 100 Hz): ``stateEstimate`` position and
velocity (m, m/s, world ENU); attitude quaternion and battery voltage (V); gyro body rates (deg/s on the wire, rad/s
here, body FLU). The state's timestamp is the receipt time (monotonic s) of the *oldest* of the three latest blocks, so
one silent block makes the whole state stale.

Setpoints: :class:`Ctbr` and :class:`AttitudeThrust` through the commander (roll, pitch, yaw rate, uint16 thrust; the
``flightmode.stabModeRoll/Pitch`` params are set to rate (0) for CTBR and angle (1) for attitude at connect time),
:class:`Velocity` and :class:`Position` through the generic-setpoint port. Thrust (N) ↔ PWM: the
driver's ``thrust_map`` (:mod:`sim2real.hal.thrust_map`; a calibration, default the Crazyflie 2.x's published quadratic
fit for a Crazyflie spec), pwm clipped to 0..60000. Sign conventions on the wire (the firmware's): cflib
negates pitch; the firmware negates the commander's yaw rate — so right-handed pitch (nose down) is sent as pitch and
right-handed yaw rate as its negative.

Firmware watchdog: a low-level setpoint older than 0.5 s makes the firmware level the vehicle, older than 2 s stops
the motors. This driver's guard thread lands the vehicle (high-level commander) if no setpoint was sent for
``setpoint_timeout_s`` (default 0.3 s) while low-level setpoints are in control, before the firmware would level it.
``safe_stop`` / ``land``: position-hold setpoints for 0.4 s (they replace a held rate setpoint at once, and a lost one
is followed by the next 20 ms later), notify-setpoint-stop, high-level ``land`` to 0 m at ``land_speed`` m/s
(resent while the vehicle does not descend), wait until down, ``stop`` (motors off), disarm.
"""
from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from typing import Callable

import numpy as np

from robots.quadrotor import QuadrotorSpec
from sim2real.extras import require
from sim2real.hal.flight import FlightVehicle, LinkError, landed, wait_until
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MultirotorState, Position, Setpoint, Velocity
from sim2real.hal.thrust_map import ThrustMap, thrust_map_for

PWM_LIMIT = 60000  # cflib's documented maximum commander thrust
LAND_CUTOFF_Z = 0.12  # m: below this (and still) a landing ends with motors off
SILENT_LINK_S = 1.0  # s without state while landing: the link is given up
CONNECT_ATTEMPTS = 3  # whole connect handshakes tried before giving up
CONNECT_STALL_S = 1.0  # s without any packet from the vehicle: this connect attempt is stuck
HOLD_BEFORE_LAND_S = 0.4  # s of position hold that end a CTBR/attitude setpoint before landing
DISARM_WITHIN_S = 2.0  # s of disarm requests resent until the supervisor reports the vehicle disarmed
_BLOCKS = {
    "pose": ("stateEstimate.x", "stateEstimate.y", "stateEstimate.z", "stateEstimate.vx", "stateEstimate.vy",
             "stateEstimate.vz"),
    "attitude": ("stateEstimate.qx", "stateEstimate.qy", "stateEstimate.qz", "stateEstimate.qw", "pm.vbat"),
    "rates": ("gyro.x", "gyro.y", "gyro.z"),
}


def n_to_pwm(thrust: float, thrust_map: ThrustMap) -> int:
    """Collective thrust (N) → commander thrust (uint16 PWM) through ``thrust_map``, clipped to 0..60000."""
    return int(round(min(thrust_map.pwm(thrust), float(PWM_LIMIT))))


def init_cflib_drivers() -> None:
    """Register cflib's link drivers once per process: ``cflib.crtp.init_drivers`` appends them again on every call,
    so each connect would scan a longer list and a scan would report every vehicle once per call."""
    import cflib.crtp

    if not cflib.crtp.CLASSES:
        cflib.crtp.init_drivers()


class CrazyflieDriver(FlightVehicle):
    """See the module docstring. ``action_mode`` (``ctbr`` or ``attitude``) picks the commander's flight mode;
    ``thrust_map`` is the motors' PWM calibration (``None``: :func:`thrust_map_for` the spec)."""

    ACTION_MODES = ("ctbr", "attitude", "velocity")  # policy action modes it can fly (not rpm: no motor commands)

    def __init__(self, spec: QuadrotorSpec, uri: str, action_mode: str = "ctbr", log_period_ms: int = 10,
                 connect_timeout_s: float = 10.0, setpoint_timeout_s: float = 0.3, land_speed: float = 0.4,
                 thrust_map: ThrustMap | None = None) -> None:
        if action_mode not in self.ACTION_MODES:
            raise ValueError(f"the Crazyflie driver flies {', '.join(self.ACTION_MODES)} actions, not {action_mode!r}")
        self.spec, self.uri, self.action_mode = spec, uri, action_mode
        self.thrust_map = thrust_map if thrust_map is not None else thrust_map_for(spec)
        self.log_period_ms, self.connect_timeout_s = log_period_ms, connect_timeout_s
        self.setpoint_timeout_s, self.land_speed = setpoint_timeout_s, land_speed
        self.cf = None
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, dict]] = {}
        self._lost: str | None = None
        self._connected = threading.Event()
        self._failed: str | None = None
        self._heard = 0.0  # monotonic s of the last packet from the vehicle
        self._last_sent = 0.0
        self._low_level = False
        self._landing = False
        self.guard_reason: str | None = None
        require("cflib.crtp", "the Crazyflie driver")  # the crazyflie extra; imported for use on connect
        self._guard: threading.Thread | None = None
        self._stop_guard = threading.Event()
        self._yaw = 0.0

    # --- link ----------------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the link, download the TOCs and parameters, set the flight mode, start the log blocks.

        A Crazyradio acknowledges and retransmits every packet; UDP does not, so on ``udp://`` links cflib's own
        resending of unanswered requests is switched on (TOC, parameter and log-block requests: all idempotent, as
        on a radio without safelink). An attempt that hears nothing for ``CONNECT_STALL_S`` (a lost request that
        cflib does not resend) or outlasts ``connect_timeout_s`` is closed and the whole handshake is tried again,
        ``CONNECT_ATTEMPTS`` times in all, then ``LinkError`` names the last failure in one line. The handshake
        never moves the vehicle (no setpoint, no arming), so repeating it is safe.
        """
        init_cflib_drivers()
        for _ in range(CONNECT_ATTEMPTS):
            try:
                self._connect_once()
                break
            except LinkError as err:
                self.disconnect()
                failure = str(err)
        else:
            raise LinkError(f"{self.uri}: connect failed {CONNECT_ATTEMPTS} times (last: {failure})")
        self._stop_guard.clear()
        self._guard = threading.Thread(target=self._guard_loop, name="crazyflie-guard", daemon=True)
        self._guard.start()

    def _connect_once(self) -> None:
        """One connect handshake; ``LinkError`` (without the URI) when it fails, stalls or times out."""
        from cflib.crazyflie import Crazyflie

        cache = os.path.join(tempfile.gettempdir(), "sim2real-cflib-cache")
        os.makedirs(cache, exist_ok=True)
        self._connected.clear()
        self._failed = self._lost = None
        with self._lock:
            self._latest.clear()
        self._heard = time.monotonic()
        self.cf = cf = Crazyflie(rw_cache=cache)
        cf.fully_connected.add_callback(lambda uri: self._connected.set())
        cf.connection_failed.add_callback(self._on_failed)
        cf.connection_lost.add_callback(self._on_lost)
        cf.packet_received.add_callback(self._on_packet)
        if self.uri.startswith("udp://"):  # called before any TOC request is sent
            cf.link_established.add_callback(lambda uri: self._resend_unanswered(cf))
        cf.open_link(self.uri)
        self._await(lambda: self._connected.is_set() or self._failed is not None, "the TOC and parameter download",
                    self.connect_timeout_s)
        if self._failed is not None:
            raise LinkError(f"connection failed: {self._failed.splitlines()[0]}")
        rate_mode = "0" if self.action_mode == "ctbr" else "1"
        modes = ("flightmode.stabModeRoll", "flightmode.stabModePitch")
        for name in modes:
            cf.param.set_value(name, rate_mode)
        self._await(lambda: all(cf.param.get_value(n) == rate_mode for n in modes), "the flight-mode parameters", 2.0)
        self._start_logs()
        self._await(lambda: len(self._latest) == len(_BLOCKS), "the first log data", 2.0)

    def _await(self, done: Callable[[], bool], what: str, limit_s: float) -> None:
        """Wait for ``done()``; ``LinkError`` if nothing arrives for ``CONNECT_STALL_S`` or ``limit_s`` (s) pass."""
        stalled = lambda: time.monotonic() - self._heard > CONNECT_STALL_S  # noqa: E731
        if not wait_until(lambda: done() or stalled(), limit_s):
            raise LinkError(f"{what} not done within {limit_s:g} s")
        if not done():
            raise LinkError(f"no answer for {CONNECT_STALL_S:g} s during {what}")

    def _on_packet(self, packet) -> None:
        self._heard = time.monotonic()

    @staticmethod
    def _resend_unanswered(cf) -> None:
        """Have cflib resend requests that get no answer (as it does on a Crazyradio without safelink)."""
        link = cf.link
        if link is not None:  # None: this attempt's link was closed meanwhile
            link.needs_resending = True

    def _on_failed(self, uri: str, message: str) -> None:
        self._failed = message or "link error"

    def _on_lost(self, uri: str, message: str) -> None:
        self._lost = (message or "link lost").splitlines()[0]

    def _start_logs(self) -> None:
        from cflib.crazyflie.log import LogConfig

        for name, variables in _BLOCKS.items():
            config = LogConfig(name=name, period_in_ms=self.log_period_ms)
            for variable in variables:
                config.add_variable(variable, "float")
            self.cf.log.add_config(config)
            config.data_received_cb.add_callback(lambda ts, data, conf, name=name: self._on_log(name, data))
            config.start()

    def _on_log(self, block: str, data: dict) -> None:
        with self._lock:
            self._latest[block] = (time.monotonic(), data)

    def disconnect(self) -> None:
        self._stop_guard.set()
        if self._guard is not None:
            self._guard.join(timeout=1.0)
            self._guard = None
        if self.cf is not None:
            cf, self.cf = self.cf, None
            cf.close_link()

    def _check_link(self) -> None:
        if self.cf is None:
            raise LinkError(f"{self.uri}: not connected")
        if self._lost is not None:
            raise LinkError(f"{self.uri}: link lost ({self._lost})")

    # --- state ---------------------------------------------------------------------------------------------------
    def read_state(self) -> MultirotorState:
        """Latest state from the log blocks (world ENU / body FLU, SI); ``LinkError`` once the link is lost."""
        self._check_link()
        with self._lock:
            latest = dict(self._latest)
        if len(latest) < len(_BLOCKS):
            raise LinkError(f"{self.uri}: no state received yet")
        (t_pose, pose), (t_att, att), (t_rates, rates) = latest["pose"], latest["attitude"], latest["rates"]
        position = np.array([pose["stateEstimate.x"], pose["stateEstimate.y"], pose["stateEstimate.z"]])
        velocity = np.array([pose["stateEstimate.vx"], pose["stateEstimate.vy"], pose["stateEstimate.vz"]])
        quaternion = np.array([att["stateEstimate.qx"], att["stateEstimate.qy"], att["stateEstimate.qz"],
                               att["stateEstimate.qw"]])
        quaternion /= max(np.linalg.norm(quaternion), 1e-9)
        body_rates = np.radians([rates["gyro.x"], rates["gyro.y"], rates["gyro.z"]])
        state = MultirotorState(position, velocity, quaternion, body_rates, np.full(4, np.nan),
                                min(t_pose, t_att, t_rates))
        r = state.rotation
        self._yaw = math.atan2(r[1, 0], r[0, 0])
        return state

    @property
    def battery_voltage(self) -> float:
        with self._lock:
            entry = self._latest.get("attitude")
        return float(entry[1]["pm.vbat"]) if entry else float("nan")

    # --- commands ------------------------------------------------------------------------------------------------
    def arm(self) -> None:
        """Arm through the supervisor and release the commander's thrust lock (one zero-thrust setpoint). After a
        crash (supervisor: crashed, e.g. a tumble) the supervisor's crash recovery is asked first; the firmware grants
        it only to a vehicle set upright again."""
        self._check_link()
        cf = self.cf
        if cf.supervisor.is_crashed:
            cf.supervisor.send_crash_recovery_request()
            if not wait_until(lambda: not cf.supervisor.is_crashed, 2.0, 0.05):
                raise LinkError(f"{self.uri}: crash recovery refused: the vehicle lies tipped (set it upright)")
        cf.supervisor.send_arming_request(True)
        if not wait_until(lambda: cf.supervisor.is_armed, 2.0, 0.05):
            raise LinkError(f"{self.uri}: arming refused (supervisor bits 0x{cf.supervisor.read_bitfield():04x})")
        cf.commander.send_setpoint(0.0, 0.0, 0.0, 0)
        self._landing = False
        self.guard_reason = None

    def send_command(self, setpoint: Setpoint) -> Setpoint:
        """Send one setpoint; returns it as the vehicle receives it (thrust quantized to PWM and clipped)."""
        self._check_link()
        if self.guard_reason is not None:
            raise LinkError(f"{self.uri}: the driver's guard landed the vehicle ({self.guard_reason})")
        commander = self.cf.commander
        if isinstance(setpoint, (Ctbr, AttitudeThrust)):
            pwm = n_to_pwm(setpoint.thrust, self.thrust_map)
            if isinstance(setpoint, Ctbr):
                if self.action_mode != "ctbr":
                    raise ValueError("CTBR setpoints need the driver in ctbr mode (flightmode rate params)")
                roll, pitch, yaw_rate = (float(v) for v in setpoint.body_rates)
            else:
                if self.action_mode != "attitude":
                    raise ValueError("attitude setpoints need the driver in attitude mode (flightmode angle params)")
                roll, pitch, yaw_rate = setpoint.roll, setpoint.pitch, setpoint.yaw_rate
            commander.send_setpoint(math.degrees(roll), math.degrees(pitch), -math.degrees(yaw_rate), pwm)
            thrust = self.thrust_map.thrust(pwm)
            applied: Setpoint = (Ctbr(thrust, np.asarray(setpoint.body_rates, dtype=float))
                                 if isinstance(setpoint, Ctbr) else AttitudeThrust(thrust, roll, pitch, yaw_rate))
        elif isinstance(setpoint, Velocity):
            vx, vy, vz = (float(v) for v in setpoint.velocity)
            commander.send_velocity_world_setpoint(vx, vy, vz, math.degrees(setpoint.yaw_rate))
            applied = setpoint
        elif isinstance(setpoint, Position):
            x, y, z = (float(v) for v in setpoint.position)
            commander.send_position_setpoint(x, y, z, math.degrees(self._yaw))
            applied = Position(np.array([x, y, z]), 0.0)
        else:
            raise ValueError(f"{type(setpoint).__name__} setpoints cannot be sent over CRTP")
        self._last_sent = time.monotonic()
        self._low_level = True
        return applied

    def setpoint_age(self) -> float:
        """Seconds since the last low-level setpoint was sent (inf before the first)."""
        return time.monotonic() - self._last_sent if self._low_level else math.inf

    def _guard_loop(self) -> None:
        while not self._stop_guard.wait(0.02):
            if self._low_level and not self._landing and self.setpoint_age() > self.setpoint_timeout_s:
                self.guard_reason = f"no setpoint for {self.setpoint_age() * 1e3:.0f} ms"
                try:
                    self._start_landing()
                except LinkError:
                    return

    def _start_landing(self, again: bool = False) -> None:
        """Hand control to the high-level commander and start a landing to 0 m (does not wait); ``again``: resend
        even if a landing was started (its datagrams may have been lost)."""
        self._check_link()
        with self._lock:
            if self._landing and not again:
                return
            self._landing = True
        state = self.read_state()
        duration = max(float(state.position[2]) / self.land_speed, 1.0)
        self.cf.commander.send_notify_setpoint_stop(0)
        self._low_level = False
        self.cf.high_level_commander.land(0.0, duration, yaw=None)

    def _hold_here(self, seconds: float) -> None:
        """Stream position setpoints (50 Hz) at the current position for ``seconds`` s: the vehicle stops whatever the
        last setpoint asked (the firmware would hold it for up to 0.5 s), even if some datagrams are lost."""
        x, y, z = (float(v) for v in self.read_state().position)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._check_link()
            self.cf.commander.send_position_setpoint(x, y, z, math.degrees(self._yaw))
            self._last_sent = time.monotonic()
            time.sleep(0.02)

    def land(self, timeout_s: float = 15.0) -> bool:
        """Hold position for ``HOLD_BEFORE_LAND_S`` (low-level position setpoints), land in place (high-level
        commander to 0 m), then motors off and disarm.

        The land command is resent whenever the vehicle has not come down 2 cm in half a second (lost datagrams). Ground
        effect holds a Crazyflie a few cm up at the end of a landing, so — as with the stock firmware, where ``land``
        is followed by ``stop`` — the motors are cut once it is below ``LAND_CUTOFF_Z`` and still. Returns True if
        that happened within ``timeout_s`` (s); else the motors are cut where it is and False is returned.
        ``LinkError`` if the link is lost or silent for ``SILENT_LINK_S`` (the firmware's watchdog then levels the
        vehicle after 0.5 s and stops the motors after 2 s).
        """
        self._check_link()
        if not self._landing:
            self._hold_here(HOLD_BEFORE_LAND_S)
        self._start_landing()
        deadline = time.monotonic() + timeout_s
        check_at, height = time.monotonic() + 0.5, math.inf
        while True:
            self._check_link()
            state = self.read_state()
            now = time.monotonic()
            if now - state.timestamp > SILENT_LINK_S:
                raise LinkError(f"{self.uri}: no state for {now - state.timestamp:.1f} s while landing")
            down = landed(state, LAND_CUTOFF_Z)
            if down or now > deadline:
                break
            if now >= check_at:
                if state.position[2] > height - 0.02:
                    self._start_landing(again=True)
                check_at, height = now + 0.5, float(state.position[2])
            time.sleep(0.02)
        self._disarm()
        return down

    def _disarm(self, within_s: float = DISARM_WITHIN_S) -> None:
        """Motors off and disarm, resent until the supervisor reports the vehicle disarmed (a lost datagram must not
        leave the motors idling) or ``within_s`` (s) passes."""
        deadline = time.monotonic() + within_s
        while True:
            self.cf.high_level_commander.stop()
            self.cf.supervisor.send_arming_request(False)
            if wait_until(lambda: not self.cf.supervisor.is_armed, 0.25, 0.05) or time.monotonic() >= deadline:
                return
