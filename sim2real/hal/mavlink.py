"""PX4 / ArduPilot vehicles over MAVLink 2 through ``pymavlink``: a :class:`FlightVehicle` on a pymavlink URL
(``udpout:127.0.0.1:14550`` for ``sim2real emulate mavlink``; ``udpin:0.0.0.0:14540`` for PX4 SITL's offboard port;
``/dev/ttyACM0`` or a telemetry UART on hardware).

We are a companion computer (system 255, component MAV_COMP_ID_ONBOARD_COMPUTER) sending HEARTBEAT at 2 Hz.
State: LOCAL_POSITION_NED (position m, velocity m/s), ATTITUDE (roll, pitch, yaw rad), HIGHRES_IMU (gyro rad/s),
requested at ``state_rate_hz`` with SET_MESSAGE_INTERVAL; the state's timestamp is the receipt time (monotonic s) of
the oldest of the three, so one silent stream makes the whole state stale. All NED/FRD ↔ ENU/FLU conversion goes
through :mod:`sim2real.frames`.

Setpoints: :class:`Ctbr` and :class:`AttitudeThrust` as SET_ATTITUDE_TARGET (thrust normalized to 0..1 of the
maximum: :func:`thrust_to_normalized`), :class:`Position` and :class:`Velocity` as SET_POSITION_TARGET_LOCAL_NED.

:meth:`MavlinkDriver.arm`: PX4 — start a position-hold setpoint stream at 20 Hz, wait 1.2 s (PX4 accepts OFFBOARD
only after > 1 s of setpoints at > 2 Hz), switch to OFFBOARD, arm; ArduPilot — GUIDED, arm. The hold stream runs
until the first :meth:`send_command`. Failsafes: if we stop sending, the vehicle's offboard-loss action takes over
(PX4: COM_OF_LOSS_T, then COM_OBL_RC_ACT / land); :meth:`land` (our safe stop) switches to AUTO.LAND (ArduPilot:
LAND) and waits for the vehicle to disarm on the ground.

A crash: an EMERGENCY/ALERT STATUSTEXT while armed (PX4's failure detector stopping the motors on a tip-over past
FD_FAIL_R/P), or a vehicle that disarms itself while its land detector (EXTENDED_SYS_STATE) says it is in the air
(the heartbeat tells arming at 1 Hz, so up to a second late); :attr:`crash` then says so in one line.
:meth:`land` on a vehicle already disarmed sends nothing and waits until it is reported on the ground; a vehicle
reported on the ground for ``ON_GROUND_DISARM_S`` but still armed (PX4 with COM_DISARM_LAND <= 0) is disarmed, so
the safe stop ends with the motors off.
"""
from __future__ import annotations

import math
import os
import threading
import time

import numpy as np

from robots.quadrotor import QuadrotorSpec
from sim2real.frames import (attitude_enu_flu_to_ned_frd, attitude_ned_frd_to_enu_flu, enu_to_ned,
                             euler_to_quaternion, flu_to_frd, frd_to_flu, ned_to_enu, wxyz)
from sim2real.extras import require
from sim2real.hal.flight import FlightVehicle, LinkError, wait_until
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MultirotorState, Position, Setpoint, Velocity

PX4_POSCTL, PX4_AUTO, PX4_OFFBOARD = 3, 4, 6
PX4_AUTO_TAKEOFF, PX4_AUTO_LOITER, PX4_AUTO_LAND = 2, 3, 6
ARDUPILOT_GUIDED, ARDUPILOT_LAND = 4, 9
_STATE_MESSAGES = ("LOCAL_POSITION_NED", "ATTITUDE", "HIGHRES_IMU")
# SET_POSITION_TARGET_LOCAL_NED type masks: use position (or velocity) and yaw rate; ignore the rest
_MASK_POSITION = 0b0000_0101_1111_1000
_MASK_VELOCITY = 0b0000_0101_1100_0111
_MASK_RATES = 128  # SET_ATTITUDE_TARGET: attitude ignored, body rates and thrust used
_MASK_ATTITUDE = 0b11  # roll and pitch rates ignored; attitude, yaw rate and thrust used
ON_GROUND_DISARM_S = 3.0  # s reported on the ground while landing, still armed: the safe stop disarms


def px4_custom_mode(main: int, sub: int = 0) -> int:
    """PX4's HEARTBEAT/SET_MODE custom mode: main mode in bits 16–23, sub mode in bits 24–31."""
    return (main << 16) | (sub << 24)


def thrust_to_normalized(thrust: float, max_thrust: float) -> float:
    """Collective thrust (N) → MAVLink normalized thrust 0..1 (fraction of the vehicle's maximum)."""
    return min(max(thrust / max_thrust, 0.0), 1.0)


def normalized_to_thrust(value: float, max_thrust: float) -> float:
    """MAVLink normalized thrust 0..1 → collective thrust (N)."""
    return float(value) * max_thrust


class MavlinkDriver(FlightVehicle):
    """See the module docstring."""

    ACTION_MODES = ("ctbr", "attitude", "velocity")  # policy action modes offboard setpoints carry (not rpm)

    def __init__(self, spec: QuadrotorSpec, url: str, state_rate_hz: float = 100.0,
                 heartbeat_timeout_s: float = 10.0, command_timeout_s: float = 0.5, command_retries: int = 4) -> None:
        self.spec, self.url, self.state_rate_hz = spec, url, state_rate_hz
        self.heartbeat_timeout_s, self.command_timeout_s = heartbeat_timeout_s, command_timeout_s
        self.command_retries = command_retries
        self.master = None
        self.autopilot = "px4"
        self.target = (1, 1)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._latest: dict[str, tuple[float, object]] = {}
        self._acks: dict[int, int] = {}
        self._stop = threading.Event()
        self._receiver: threading.Thread | None = None
        self._hold: np.ndarray | None = None  # position-hold stream target (m, ENU) while arming
        os.environ.setdefault("MAVLINK20", "1")  # before pymavlink is imported: it picks its wire version then
        self._mavutil = require("pymavlink.mavutil", "the MAVLink driver")
        self.statustext: list[str] = []
        self._alarm: str | None = None  # the latest STATUSTEXT of severity ALERT or EMERGENCY since arming
        self._was_armed = False  # the heartbeat said armed since our arm()
        self.crash: str | None = None
        self._t0 = time.monotonic()

    # --- link ----------------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the link, wait for the vehicle's heartbeat, request the state streams and wait for them."""
        mavutil = self._mavutil
        try:
            self.master = mavutil.mavlink_connection(self.url, source_system=255, source_component=191,
                                                     dialect="common")
        except (OSError, ValueError) as err:
            raise LinkError(f"{self.url}: cannot open ({err})") from None
        deadline = time.monotonic() + self.heartbeat_timeout_s
        heartbeat = None
        while heartbeat is None and time.monotonic() < deadline:
            self._heartbeat()
            heartbeat = self.master.recv_match(type="HEARTBEAT", blocking=True, timeout=0.5)
            if heartbeat is not None and heartbeat.get_srcComponent() != 1:
                heartbeat = None  # a GCS or another companion, not the autopilot
        if heartbeat is None:
            self.disconnect()
            raise LinkError(f"{self.url}: no autopilot heartbeat within {self.heartbeat_timeout_s:g} s")
        self.target = (heartbeat.get_srcSystem(), heartbeat.get_srcComponent())
        self.autopilot = "ardupilot" if heartbeat.autopilot == mavutil.mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA else "px4"
        self._latest["HEARTBEAT"] = (time.monotonic(), heartbeat)
        self._stop.clear()
        self._receiver = threading.Thread(target=self._receive_loop, name="mavlink-receiver", daemon=True)
        self._receiver.start()
        m = mavutil.mavlink
        for msg_id in (m.MAVLINK_MSG_ID_LOCAL_POSITION_NED, m.MAVLINK_MSG_ID_ATTITUDE, m.MAVLINK_MSG_ID_HIGHRES_IMU):
            result = self.command(m.MAV_CMD_SET_MESSAGE_INTERVAL, msg_id, 1e6 / self.state_rate_hz)
            if result != m.MAV_RESULT_ACCEPTED:
                raise LinkError(f"{self.url}: SET_MESSAGE_INTERVAL {msg_id} refused (result {result})")
        if not wait_until(lambda: all(k in self._latest for k in _STATE_MESSAGES), 2.0):
            raise LinkError(f"{self.url}: no {', '.join(k for k in _STATE_MESSAGES if k not in self._latest)}")

    def disconnect(self) -> None:
        self._stop.set()
        if self._receiver is not None:
            self._receiver.join(timeout=1.0)
            self._receiver = None
        if self.master is not None:
            master, self.master = self.master, None
            master.close()

    def _heartbeat(self) -> None:
        m = self._mavutil.mavlink
        with self._send_lock:
            self.master.mav.heartbeat_send(m.MAV_TYPE_ONBOARD_CONTROLLER, m.MAV_AUTOPILOT_INVALID, 0, 0,
                                           m.MAV_STATE_ACTIVE)

    def _receive_loop(self) -> None:
        next_heartbeat = next_hold = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = now + 0.5
                hold = self._hold
                if hold is not None and now >= next_hold:
                    self._send_setpoint(Position(hold))
                    next_hold = now + 0.05  # 20 Hz
                msg = self.master.recv_match(blocking=True, timeout=0.05)
            except OSError:
                time.sleep(0.05)  # e.g. ECONNREFUSED while nobody listens: the streams go stale
                continue
            if msg is None or msg.get_srcSystem() != self.target[0] or msg.get_srcComponent() != self.target[1]:
                continue
            kind = msg.get_type()
            with self._lock:
                self._latest[kind] = (time.monotonic(), msg)
                if kind == "COMMAND_ACK":
                    self._acks[msg.command] = msg.result
                elif kind == "STATUSTEXT":
                    self.statustext.append(msg.text)
                    if msg.severity <= self._mavutil.mavlink.MAV_SEVERITY_ALERT and self._was_armed:
                        self._alarm = msg.text
                        self.crash = self.crash or f"vehicle alarm in flight: {msg.text}"
                elif kind == "HEARTBEAT":
                    self._watch_arming(msg)

    def _watch_arming(self, heartbeat) -> None:
        """Note a crash: disarmed by the vehicle after an alarm, or while its land detector said in the air (called
        with the lock held)."""
        m = self._mavutil.mavlink
        armed = bool(heartbeat.base_mode & m.MAV_MODE_FLAG_SAFETY_ARMED)
        landed = self._latest.get("EXTENDED_SYS_STATE")
        in_air = landed is not None and landed[1].landed_state in (m.MAV_LANDED_STATE_IN_AIR,
                                                                   m.MAV_LANDED_STATE_TAKEOFF)
        if self._was_armed and not armed and self.crash is None and in_air:
            self.crash = "the vehicle disarmed itself in the air (no alarm text)"
        self._was_armed = armed

    def command(self, command: int, *params: float) -> int | None:
        """COMMAND_LONG with up to ``command_retries`` resends; the ACK's result, or None without one."""
        p = list(params) + [0.0] * (7 - len(params))
        for attempt in range(self.command_retries):
            with self._lock:
                self._acks.pop(command, None)
            with self._send_lock:
                self.master.mav.command_long_send(*self.target, command, attempt, *p)
            if wait_until(lambda: command in self._acks, self.command_timeout_s, 0.001):
                return self._acks[command]
        return None

    # --- state ---------------------------------------------------------------------------------------------------
    def read_state(self) -> MultirotorState:
        """Latest state (world ENU / body FLU, SI) from the three streams."""
        if self.master is None:
            raise LinkError(f"{self.url}: not connected")
        with self._lock:
            (t_pos, pos), (t_att, att), (t_imu, imu) = (self._latest[k] for k in _STATE_MESSAGES)
        position = ned_to_enu([pos.x, pos.y, pos.z])
        velocity = ned_to_enu([pos.vx, pos.vy, pos.vz])
        quaternion = attitude_ned_frd_to_enu_flu(euler_to_quaternion([att.roll, att.pitch, att.yaw]))
        rates = frd_to_flu([imu.xgyro, imu.ygyro, imu.zgyro])
        return MultirotorState(position, velocity, quaternion, rates, np.full(4, np.nan), min(t_pos, t_att, t_imu))

    @property
    def battery_voltage(self) -> float:
        with self._lock:
            entry = self._latest.get("SYS_STATUS")
        return entry[1].voltage_battery / 1000.0 if entry else float("nan")

    def heartbeat(self):
        """The vehicle's latest HEARTBEAT message."""
        with self._lock:
            return self._latest["HEARTBEAT"][1]

    @property
    def armed(self) -> bool:
        return bool(self.heartbeat().base_mode & self._mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED)

    # --- commands ------------------------------------------------------------------------------------------------
    def _set_mode(self, main: int, sub: int = 0) -> int | None:
        m = self._mavutil.mavlink
        return self.command(m.MAV_CMD_DO_SET_MODE, m.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, main, sub)

    def arm(self) -> None:
        """Stream a hold setpoint first (PX4), switch to OFFBOARD / GUIDED, arm; ``LinkError`` when refused."""
        m = self._mavutil.mavlink
        with self._lock:
            self.crash, self._alarm, self._was_armed = None, None, False
        self._hold = np.array(self.read_state().position)
        if self.autopilot == "px4":
            time.sleep(1.2)  # > 1 s of setpoints at > 2 Hz before OFFBOARD is accepted
            result = self._set_mode(PX4_OFFBOARD)
        else:
            result = self._set_mode(ARDUPILOT_GUIDED)
        if result != m.MAV_RESULT_ACCEPTED:
            self._hold = None
            raise LinkError(f"{self.url}: mode change refused (result {result}; {self._last_text()})")
        result = self.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        if result != m.MAV_RESULT_ACCEPTED:
            self._hold = None
            raise LinkError(f"{self.url}: arming refused (result {result}; {self._last_text()})")

    def _last_text(self) -> str:
        return self.statustext[-1] if self.statustext else "no status text"

    def _send_setpoint(self, setpoint: Setpoint) -> Setpoint:
        m, spec, mav = self._mavutil.mavlink, self.spec, self.master.mav
        boot_ms = int((time.monotonic() - self._t0) * 1000) & 0xFFFFFFFF
        with self._send_lock:
            if isinstance(setpoint, Ctbr):
                thrust = thrust_to_normalized(setpoint.thrust, spec.max_thrust)
                rates = flu_to_frd(setpoint.body_rates)
                mav.set_attitude_target_send(boot_ms, *self.target, _MASK_RATES, [1.0, 0.0, 0.0, 0.0], *rates, thrust)
                return Ctbr(normalized_to_thrust(thrust, spec.max_thrust), np.asarray(setpoint.body_rates, float))
            if isinstance(setpoint, AttitudeThrust):
                thrust = thrust_to_normalized(setpoint.thrust, spec.max_thrust)
                r = self.read_state().rotation
                yaw = math.atan2(r[1, 0], r[0, 0])
                q = attitude_enu_flu_to_ned_frd(euler_to_quaternion([setpoint.roll, setpoint.pitch, yaw]))
                mav.set_attitude_target_send(boot_ms, *self.target, _MASK_ATTITUDE, wxyz(q), 0.0, 0.0,
                                             -setpoint.yaw_rate, thrust)
                return AttitudeThrust(normalized_to_thrust(thrust, spec.max_thrust), setpoint.roll, setpoint.pitch,
                                      setpoint.yaw_rate)
            if isinstance(setpoint, Position):
                x, y, z = enu_to_ned(setpoint.position)
                mav.set_position_target_local_ned_send(boot_ms, *self.target, m.MAV_FRAME_LOCAL_NED, _MASK_POSITION,
                                                       x, y, z, 0, 0, 0, 0, 0, 0, 0, -setpoint.yaw_rate)
                return setpoint
            if isinstance(setpoint, Velocity):
                vx, vy, vz = enu_to_ned(setpoint.velocity)
                mav.set_position_target_local_ned_send(boot_ms, *self.target, m.MAV_FRAME_LOCAL_NED, _MASK_VELOCITY,
                                                       0, 0, 0, vx, vy, vz, 0, 0, 0, 0, -setpoint.yaw_rate)
                return setpoint
        raise ValueError(f"{type(setpoint).__name__} setpoints cannot be sent over MAVLink offboard")

    def send_command(self, setpoint: Setpoint) -> Setpoint:
        """Send one offboard setpoint (ends the arming hold stream); returns it as sent (thrust clipped)."""
        if self.master is None:
            raise LinkError(f"{self.url}: not connected")
        self._hold = None
        try:
            return self._send_setpoint(setpoint)
        except OSError as err:
            raise LinkError(f"{self.url}: send failed ({err})") from None

    def land(self, timeout_s: float = 20.0) -> bool:
        """AUTO.LAND (ArduPilot: LAND), then wait until the vehicle has disarmed on the ground; True if it did
        within ``timeout_s`` (s). A vehicle already disarmed (motors off: a crash) is only waited for until it is
        reported on the ground; one reported on the ground for ``ON_GROUND_DISARM_S`` but still armed is disarmed."""
        if self.master is None:
            raise LinkError(f"{self.url}: not connected")
        self._hold = None
        m = self._mavutil.mavlink
        if self.armed:
            if self.autopilot == "px4":
                result = self._set_mode(PX4_AUTO, PX4_AUTO_LAND)
            else:
                result = self._set_mode(ARDUPILOT_LAND)
            if result != m.MAV_RESULT_ACCEPTED and not wait_until(lambda: not self.armed, 1.5, 0.05):
                raise LinkError(f"{self.url}: land mode refused or unanswered (result {result})")
        deadline, grounded_since = time.monotonic() + timeout_s, None
        while True:
            grounded = self._landed_state() in (None, m.MAV_LANDED_STATE_ON_GROUND)
            armed = self.armed
            if not armed and grounded:
                return True
            now = time.monotonic()
            grounded_since = (grounded_since or now) if grounded and self._landed_state() is not None else None
            if armed and grounded_since is not None and now - grounded_since > ON_GROUND_DISARM_S:
                self.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 0)  # on the ground: an ordinary disarm is allowed
                grounded_since = None
            if now >= deadline:
                return False
            time.sleep(0.05)

    def _landed_state(self) -> int | None:
        """The land detector's latest MAV_LANDED_STATE (EXTENDED_SYS_STATE), None if the vehicle sends none."""
        with self._lock:
            entry = self._latest.get("EXTENDED_SYS_STATE")
        return None if entry is None else int(entry[1].landed_state)
