"""A PX4-like multirotor over MAVLink 2 on UDP, flying the PyBullet quadrotor "reality" (pymavlink's own codec).

Listens on ``host:port`` (the vehicle side of ``udpout:host:port`` in pymavlink) and answers the last sender, like a
PX4 onboard (companion) link. System 1, component 1 (autopilot).

* HEARTBEAT at 1 Hz: MAV_TYPE_QUADROTOR, MAV_AUTOPILOT_PX4, custom mode ``main << 16 | sub << 24`` (PX4's encoding:
  POSCTL 3, AUTO 4 with LOITER 3 / TAKEOFF 2 / LAND 6, OFFBOARD 6), SAFETY_ARMED when armed.
* Streams at PX4-like onboard defaults (:data:`DEFAULT_RATES_HZ`), each changeable with SET_MESSAGE_INTERVAL (511;
  -1 disables, 0 restores the default) and sendable once with REQUEST_MESSAGE (512).
* COMMAND_LONG with COMMAND_ACK: COMPONENT_ARM_DISARM (400; disarm in the air only with the force code 21196),
  DO_SET_MODE (176), NAV_TAKEOFF (22, param 7 = height above the start, m), NAV_LAND (21); others UNSUPPORTED. SET_MODE
  (#11) as DO_SET_MODE. Manual modes are denied (no RC in the emulation).
* OFFBOARD is accepted only after setpoints have come at > 2 Hz (no gap over 0.5 s) for at least 1 s; in OFFBOARD,
  no setpoint for ``COM_OF_LOSS_T`` s (default 1) is the offboard-loss failsafe: AUTO.LAND in the air, AUTO.LOITER on
  the ground, announced by STATUSTEXT.
* Parameters (:data:`PX4_PARAMS`, the ones the emulation models, PX4's names and meanings): PARAM_REQUEST_LIST,
  PARAM_REQUEST_READ (by name or index) and PARAM_SET are answered with PARAM_VALUE (param_count, param_index, type
  REAL32 or INT32; INT32 values travel bytewise in the float field, as PX4 sends them). A set takes effect at once;
  a value of the wrong type, non-finite or outside the parameter's range is refused (the PARAM_VALUE carries the
  value kept, a STATUSTEXT says why); an unknown name or index gets a STATUSTEXT and no PARAM_VALUE.
* AUTOPILOT_VERSION (capabilities: MAVLink 2, bytewise parameters, SET_ATTITUDE_TARGET, SET_POSITION_TARGET_LOCAL_NED)
  on REQUEST_MESSAGE (512, param1 148) or REQUEST_AUTOPILOT_CAPABILITIES (520); HOME_POSITION (the position where the
  vehicle last armed, before that where it stands; global position from :data:`HOME_ORIGIN`) on REQUEST_MESSAGE
  (param1 242) or GET_HOME_POSITION (410), and whenever arming sets it.
* Setpoints: SET_POSITION_TARGET_LOCAL_NED (#84, MAV_FRAME_LOCAL_NED; position, or velocity, with yaw or yaw rate)
  and SET_ATTITUDE_TARGET (#82; body rates + thrust, or attitude + thrust; thrust normalized 0..1 of the maximum).
  Non-finite setpoints are dropped; thrust is clamped to 0..1 as PX4 does. Every setpoint is journaled.
* AUTO.LAND descends at 0.5 m/s and disarms ``COM_DISARM_LAND`` s (default 2; <= 0: never) after touchdown.
* Land detector: on the ground = the body touches the floor and does not move vertically, upright or lying on its
  side or back (EXTENDED_SYS_STATE ON_GROUND); a vehicle whose motors stopped in the air is IN_AIR until then.
* Failure detector: roll past ``FD_FAIL_R`` for ``FD_FAIL_R_TTRI`` s, or pitch past ``FD_FAIL_P`` for
  ``FD_FAIL_P_TTRI`` s (PX4's defaults 60 deg, 0.3 s; 0 deg turns an axis off) while armed is an attitude failure,
  announced by an EMERGENCY STATUSTEXT. As in PX4 it stops the motors (disarms) only where it may act: flight
  termination enabled (``CBRK_FLIGHTTERM`` not 121212, PX4's default being 121212 = off), or within
  ``COM_LKDOWN_TKO`` s (3) of take-off (PX4's lockdown); unlike PX4's termination it needs no reboot. Otherwise the
  flight goes on (the companion's safe stop lands it; the land detector then disarms it wherever it lies). Arming is
  denied while the attitude is past those limits (a vehicle lying on its side or back), as PX4's failure-detector
  arming check.
* The lab's operator (:meth:`EmulatedQuad.operator`): a vehicle that has lain still on the floor with its motors off,
  tipped past 45 deg, for 1 s is set back on its feet on its start mark (journal ``righted``), so the next
  deployment can arm and take off from the floor.

Frames on the wire: world NED, body FRD; inside: world ENU, body FLU (:mod:`sim2real.frames` converts).
"""
from __future__ import annotations

import math
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim2real.emulators.quad_reality import EmulatedQuad, LinkFaultState, QuadReality, UdpEmulatorBase
from sim2real.extras import require
from sim2real.frames import (attitude_enu_flu_to_ned_frd, attitude_ned_frd_to_enu_flu, enu_to_ned, flu_to_frd,
                             frd_to_flu, ned_to_enu, quaternion_to_euler, quaternion_to_matrix, xyzw)
from sim2real.hal.mavlink import (PX4_AUTO, PX4_AUTO_LAND, PX4_AUTO_LOITER, PX4_AUTO_TAKEOFF, PX4_OFFBOARD,
                                  PX4_POSCTL, normalized_to_thrust, px4_custom_mode)
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, Position, Setpoint, Velocity

mavlink = require("pymavlink.dialects.v20.common", "the MAVLink emulator")  # the px4 extra

DEFAULT_RATES_HZ = {  # PX4-like onboard-link defaults (message id: Hz)
    mavlink.MAVLINK_MSG_ID_HEARTBEAT: 1.0, mavlink.MAVLINK_MSG_ID_SYS_STATUS: 5.0,
    mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: 5.0, mavlink.MAVLINK_MSG_ID_ATTITUDE: 100.0,
    mavlink.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: 50.0, mavlink.MAVLINK_MSG_ID_HIGHRES_IMU: 50.0,
    mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED: 30.0,
}
OFFBOARD_MIN_RATE_GAP_S = 0.5  # > 2 Hz
OFFBOARD_MIN_STREAM_S = 1.0
LAND_SPEED = 0.5  # m/s
FORCE_DISARM = 21196
_REAL32, _INT32 = mavlink.MAV_PARAM_TYPE_REAL32, mavlink.MAV_PARAM_TYPE_INT32
CAPABILITIES = (mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
                | mavlink.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET
                | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED)
FLIGHT_SW_VERSION = (1 << 24) | (14 << 16) | (0 << 8) | 255  # PX4's encoding: v1.14.0, release
HOME_ORIGIN = (47.397742, 8.545594, 488.0)  # lat, lon (deg), altitude AMSL (m) of local (0, 0, 0): PX4 SITL's default
EARTH_RADIUS = 6371000.0  # m


@dataclass(frozen=True)
class Px4Param:
    """A PX4 parameter the emulation models: MAV_PARAM_TYPE ``kind``, ``default`` and accepted ``low``..``high``."""

    name: str
    kind: int
    default: float
    low: float
    high: float


TERMINATION_OFF = 121212  # CBRK_FLIGHTTERM's circuit-breaker value: flight termination disabled (PX4's default)
PX4_PARAMS = (  # sorted by name, as PX4 lists them
    # flight termination circuit breaker: 121212 disables termination by the failure detector
    Px4Param("CBRK_FLIGHTTERM", _INT32, TERMINATION_OFF, 0, TERMINATION_OFF),
    # 1: arming allowed without GPS; 0: arming needs a GPS fix (the emulation has none)
    Px4Param("COM_ARM_WO_GPS", _INT32, 1, 0, 1),
    # s on the ground after a landing before the vehicle disarms itself; <= 0: never
    Px4Param("COM_DISARM_LAND", _REAL32, 2.0, -1.0, 20.0),
    # s after take-off in which an attitude failure stops the motors even with termination off; < 0: never
    Px4Param("COM_LKDOWN_TKO", _REAL32, 3.0, -1.0, 10.0),
    # s without offboard setpoints before the offboard-loss failsafe
    Px4Param("COM_OF_LOSS_T", _REAL32, 1.0, 0.0, 60.0),
    # failure detector: pitch (deg) past which, held FD_FAIL_P_TTRI s, the motors stop; 0: no pitch check
    Px4Param("FD_FAIL_P", _INT32, 60, 0, 180),
    Px4Param("FD_FAIL_P_TTRI", _REAL32, 0.3, 0.02, 5.0),
    # failure detector: roll (deg) past which, held FD_FAIL_R_TTRI s, the motors stop; 0: no roll check
    Px4Param("FD_FAIL_R", _INT32, 60, 0, 180),
    Px4Param("FD_FAIL_R_TTRI", _REAL32, 0.3, 0.02, 5.0),
)


def param_to_wire(kind: int, value: float) -> float:
    """A parameter value as PARAM_VALUE / PARAM_SET carry it: REAL32 as is, INT32 bytewise in the float field."""
    if kind == _INT32:
        return struct.unpack("<f", struct.pack("<i", int(value)))[0]
    return float(value)


def param_from_wire(kind: int, value: float) -> float:
    """Inverse of :func:`param_to_wire`."""
    if kind == _INT32:
        return float(struct.unpack("<i", struct.pack("<f", value))[0])
    return float(value)
_IDLE_S = 0.002
_POSITION_IGNORE, _VELOCITY_IGNORE, _YAW_IGNORE, _YAW_RATE_IGNORE = 0b111, 0b111000, 1024, 2048
_RATES_IGNORE, _THRUST_IGNORE, _ATTITUDE_IGNORE = 0b111, 64, 128


def global_position(enu: np.ndarray) -> tuple[int, int, int]:
    """(latitude, longitude in 1e-7 deg, altitude AMSL in mm) of a local ENU position (m) around
    :data:`HOME_ORIGIN` (flat-earth approximation, as PX4's local projection near its origin)."""
    lat0, lon0, alt0 = HOME_ORIGIN
    lat = lat0 + math.degrees(float(enu[1]) / EARTH_RADIUS)
    lon = lon0 + math.degrees(float(enu[0]) / (EARTH_RADIUS * math.cos(math.radians(lat0))))
    return int(round(lat * 1e7)), int(round(lon * 1e7)), int(round((alt0 + float(enu[2])) * 1000))


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class Px4Vehicle:
    """PX4-like commander state machine for one :class:`EmulatedQuad`; ``send(msg)`` emits to the client."""

    def __init__(self, quad: EmulatedQuad, send: Callable[[object], None], journal: Callable[[dict], None]) -> None:
        self.quad, self._send, self._journal = quad, send, journal
        self.mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
        self.armed = False
        self.main_mode, self.sub_mode = PX4_POSCTL, 0
        self.offboard: Setpoint | None = None
        self.last_setpoint: float | None = None
        self.stream_since: float | None = None
        self.hold = quad.home.copy()
        self.takeoff_target: np.ndarray | None = None
        self.touchdown: float | None = None
        self.airborne = False
        self.rates = dict(DEFAULT_RATES_HZ)
        self.next_due = {msg_id: 0.0 for msg_id in self.rates}
        self._previous_velocity: tuple[float, np.ndarray] | None = None
        self.params = {p.name: float(p.default) for p in PX4_PARAMS}
        self.home = np.array(quad.state().position)  # m, ENU: where it stands; set again at each arming
        self.now = 0.0
        self._over_since: dict[str, float] = {}  # failure detector: axis -> s since when it is past its limit
        self._failed = False  # an attitude failure was announced in this flight
        self.takeoff_at: float | None = None  # s (emulator clock) of this flight's take-off

    @property
    def mode_name(self) -> str:
        if self.main_mode == PX4_AUTO:
            return {PX4_AUTO_LOITER: "AUTO.LOITER", PX4_AUTO_TAKEOFF: "AUTO.TAKEOFF",
                    PX4_AUTO_LAND: "AUTO.LAND"}.get(self.sub_mode, "AUTO")
        return {PX4_POSCTL: "POSCTL", PX4_OFFBOARD: "OFFBOARD"}.get(self.main_mode, str(self.main_mode))

    def _note(self, kind: str, **fields: object) -> None:
        self._journal({"t": round(self.now, 4), "kind": kind, **fields})

    def status(self, severity: int, text: str) -> None:
        self._send(self.mav.statustext_encode(severity, text.encode()[:50]))
        self._note("statustext", text=text)

    # --- incoming -----------------------------------------------------------------------------------------------
    def handle(self, msg, now: float) -> None:
        self.now = now
        kind = msg.get_type()
        if kind == "COMMAND_LONG":
            self._command(msg)
        elif kind == "SET_MODE":
            self._set_mode(msg.base_mode, (msg.custom_mode >> 16) & 0xFF, (msg.custom_mode >> 24) & 0xFF)
        elif kind == "SET_POSITION_TARGET_LOCAL_NED":
            self._position_target(msg)
        elif kind == "SET_ATTITUDE_TARGET":
            self._attitude_target(msg)
        elif kind in ("PARAM_REQUEST_LIST", "PARAM_REQUEST_READ", "PARAM_SET") and msg.target_system in (0, 1):
            {"PARAM_REQUEST_LIST": self._param_list, "PARAM_REQUEST_READ": self._param_read,
             "PARAM_SET": self._param_set}[kind](msg)

    def _ack(self, command: int, result: int) -> None:
        self._send(self.mav.command_ack_encode(command, result, 0, 0, 0, 0))

    def _command(self, msg) -> None:
        c, result = msg.command, mavlink.MAV_RESULT_UNSUPPORTED
        if c == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            result = self._arm(msg.param1 > 0.5, int(round(msg.param2)) == FORCE_DISARM)
        elif c == mavlink.MAV_CMD_DO_SET_MODE:
            result = self._set_mode(int(msg.param1), int(msg.param2), int(msg.param3))
        elif c == mavlink.MAV_CMD_NAV_TAKEOFF:
            result = mavlink.MAV_RESULT_DENIED
            if self.armed and not self.airborne:
                height = msg.param7 if math.isfinite(msg.param7) and msg.param7 > 0 else 1.0
                self.takeoff_target = np.array([*self.quad.state().position[:2], self.quad.home[2] + height])
                self._enter(PX4_AUTO, PX4_AUTO_TAKEOFF)
                result = mavlink.MAV_RESULT_ACCEPTED
        elif c == mavlink.MAV_CMD_NAV_LAND:
            self._enter(PX4_AUTO, PX4_AUTO_LAND)
            result = mavlink.MAV_RESULT_ACCEPTED
        elif c == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
            result = self._interval(int(msg.param1), msg.param2)
        elif c == mavlink.MAV_CMD_REQUEST_MESSAGE:
            result = mavlink.MAV_RESULT_DENIED
            if int(msg.param1) in (*DEFAULT_RATES_HZ, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION,
                                   mavlink.MAVLINK_MSG_ID_HOME_POSITION):
                self._emit_stream(int(msg.param1))
                result = mavlink.MAV_RESULT_ACCEPTED
        elif c == mavlink.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self._emit_stream(mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
            result = mavlink.MAV_RESULT_ACCEPTED
        elif c == mavlink.MAV_CMD_GET_HOME_POSITION:
            self._emit_stream(mavlink.MAVLINK_MSG_ID_HOME_POSITION)
            result = mavlink.MAV_RESULT_ACCEPTED
        self._note("command", command=int(c), result=int(result))
        self._ack(c, result)

    def _interval(self, msg_id: int, interval_us: float) -> int:
        if msg_id not in DEFAULT_RATES_HZ or not math.isfinite(interval_us):
            return mavlink.MAV_RESULT_DENIED
        if interval_us < 0:
            self.rates[msg_id] = 0.0
        elif interval_us == 0:
            self.rates[msg_id] = DEFAULT_RATES_HZ[msg_id]
        else:
            self.rates[msg_id] = min(1e6 / interval_us, 500.0)
        self.next_due[msg_id] = self.now
        return mavlink.MAV_RESULT_ACCEPTED

    def _arm(self, arm: bool, force: bool) -> int:
        if arm:
            if self.armed:
                return mavlink.MAV_RESULT_ACCEPTED
            if self.airborne or (self.main_mode == PX4_OFFBOARD and not self._offboard_ok()):
                self.status(mavlink.MAV_SEVERITY_CRITICAL, "Arming denied: offboard signal not valid")
                return mavlink.MAV_RESULT_TEMPORARILY_REJECTED
            if not self.params["COM_ARM_WO_GPS"]:
                self.status(mavlink.MAV_SEVERITY_CRITICAL, "Arming denied: no GPS fix (COM_ARM_WO_GPS 0)")
                return mavlink.MAV_RESULT_DENIED
            tipped = self._attitude_past_limits()
            if tipped is not None:
                self.status(mavlink.MAV_SEVERITY_CRITICAL, f"Arming denied: attitude failure ({tipped[0]})")
                return mavlink.MAV_RESULT_DENIED
            self.armed, self.touchdown, self._failed, self.takeoff_at = True, None, False, None
            self.hold = np.array(self.quad.state().position)
            self.home = self.hold.copy()
            self._note("armed")
            self._emit_stream(mavlink.MAVLINK_MSG_ID_HOME_POSITION)
            return mavlink.MAV_RESULT_ACCEPTED
        if self.armed and self.airborne and not force:
            self.status(mavlink.MAV_SEVERITY_CRITICAL, "Disarming denied: not landed")
            return mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        self._disarm("command" if not force else "forced")
        return mavlink.MAV_RESULT_ACCEPTED

    def _disarm(self, why: str) -> None:
        if self.armed:
            self.armed = False
            self._note("disarmed", reason=why)

    def _offboard_ok(self) -> bool:
        return (self.last_setpoint is not None and self.stream_since is not None
                and self.now - self.last_setpoint <= OFFBOARD_MIN_RATE_GAP_S
                and self.now - self.stream_since >= OFFBOARD_MIN_STREAM_S)

    def _set_mode(self, base_mode: int, main: int, sub: int) -> int:
        if not base_mode & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
            return mavlink.MAV_RESULT_DENIED
        if main == PX4_OFFBOARD:
            if not self._offboard_ok():
                self.status(mavlink.MAV_SEVERITY_CRITICAL, "Switching to Offboard is currently not available")
                return mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        elif main == PX4_AUTO and sub in (PX4_AUTO_LOITER, PX4_AUTO_LAND):
            pass
        elif main != PX4_POSCTL:
            return mavlink.MAV_RESULT_DENIED
        self._enter(main, sub if main == PX4_AUTO else 0)
        return mavlink.MAV_RESULT_ACCEPTED

    def _enter(self, main: int, sub: int) -> None:
        if (main, sub) != (self.main_mode, self.sub_mode):
            self.main_mode, self.sub_mode = main, sub
            self.hold = np.array(self.quad.state().position)
            self._note("mode", mode=self.mode_name)

    def _setpoint_received(self, setpoint: Setpoint | None, record: dict) -> None:
        self._note("setpoint", **record)
        if setpoint is None:
            return
        if self.last_setpoint is None or self.now - self.last_setpoint > OFFBOARD_MIN_RATE_GAP_S:
            self.stream_since = self.now
        self.last_setpoint = self.now
        self.offboard = setpoint

    def _yaw_rate(self, msg) -> float:
        """ENU yaw rate (rad/s) from a position target's yaw (NED heading) or yaw rate fields."""
        if not msg.type_mask & _YAW_IGNORE and math.isfinite(msg.yaw):
            r = self.quad.sim.true_kinematics().rotation
            return 2.0 * _wrap((math.pi / 2 - msg.yaw) - math.atan2(r[3], r[0]))
        if not msg.type_mask & _YAW_RATE_IGNORE:
            return -float(msg.yaw_rate)
        return 0.0

    def _position_target(self, msg) -> None:
        values = [msg.x, msg.y, msg.z, msg.vx, msg.vy, msg.vz, msg.yaw, msg.yaw_rate]
        record = {"message": "SET_POSITION_TARGET_LOCAL_NED", "frame": int(msg.coordinate_frame),
                  "type_mask": int(msg.type_mask), "values": [float(v) for v in values]}
        mask = msg.type_mask
        setpoint: Setpoint | None = None
        if msg.coordinate_frame == mavlink.MAV_FRAME_LOCAL_NED:
            if not mask & _POSITION_IGNORE and all(math.isfinite(v) for v in values[:3]):
                setpoint = Position(ned_to_enu([msg.x, msg.y, msg.z]), self._yaw_rate(msg))
            elif not mask & _VELOCITY_IGNORE and all(math.isfinite(v) for v in values[3:6]):
                setpoint = Velocity(ned_to_enu([msg.vx, msg.vy, msg.vz]), self._yaw_rate(msg))
        self._setpoint_received(setpoint, record)

    def _attitude_target(self, msg) -> None:
        rates = [msg.body_roll_rate, msg.body_pitch_rate, msg.body_yaw_rate]
        record = {"message": "SET_ATTITUDE_TARGET", "type_mask": int(msg.type_mask),
                  "q": [float(v) for v in msg.q], "rates": [float(v) for v in rates], "thrust": float(msg.thrust)}
        mask, spec = msg.type_mask, self.quad.spec
        setpoint: Setpoint | None = None
        finite = all(math.isfinite(v) for v in [*msg.q, *rates, msg.thrust])
        if finite:
            thrust = spec.weight if mask & _THRUST_IGNORE else normalized_to_thrust(min(max(msg.thrust, 0.0), 1.0),
                                                                                   spec.max_thrust)
            if mask & _ATTITUDE_IGNORE and not mask & _RATES_IGNORE:
                setpoint = Ctbr(thrust, frd_to_flu(rates))
            elif not mask & _ATTITUDE_IGNORE and np.linalg.norm(msg.q) > 0.5:
                roll, pitch, _ = quaternion_to_euler(attitude_ned_frd_to_enu_flu(xyzw(msg.q)))
                yaw_rate = 0.0 if mask & 4 else -float(msg.body_yaw_rate)
                setpoint = AttitudeThrust(thrust, float(roll), float(pitch), yaw_rate)
        self._setpoint_received(setpoint, record)

    # --- parameters -------------------------------------------------------------------------------------------
    def _param_value(self, index: int) -> None:
        p = PX4_PARAMS[index]
        self._send(self.mav.param_value_encode(p.name.encode(), param_to_wire(p.kind, self.params[p.name]), p.kind,
                                               len(PX4_PARAMS), index))

    def _param_index(self, param_id: str | bytes, index: int) -> int | None:
        """Index into :data:`PX4_PARAMS` of a request (by ``index`` unless it is -1, then by name); None: unknown."""
        if index >= 0:
            return index if index < len(PX4_PARAMS) else None
        name = param_id.decode("ascii", "replace") if isinstance(param_id, bytes) else str(param_id)
        name = name.rstrip("\0")
        return next((i for i, p in enumerate(PX4_PARAMS) if p.name == name), None)

    def _param_list(self, msg) -> None:
        for index in range(len(PX4_PARAMS)):
            self._param_value(index)

    def _param_read(self, msg) -> None:
        index = self._param_index(msg.param_id, msg.param_index)
        if index is None:
            self.status(mavlink.MAV_SEVERITY_WARNING, f"unknown parameter {msg.param_id!s:.16} #{msg.param_index}")
            return
        self._param_value(index)

    def _param_set(self, msg) -> None:
        index = self._param_index(msg.param_id, -1)
        if index is None:
            self.status(mavlink.MAV_SEVERITY_WARNING, f"unknown parameter {msg.param_id!s:.16}")
            return
        p = PX4_PARAMS[index]
        value = param_from_wire(p.kind, msg.param_value) if msg.param_type == p.kind else math.nan
        if msg.param_type != p.kind or not (math.isfinite(value) and p.low <= value <= p.high):
            self.status(mavlink.MAV_SEVERITY_WARNING, f"{p.name}: refused (type {p.kind}, {p.low:g}..{p.high:g})")
        else:
            self.params[p.name] = value
            self._note("param", name=p.name, value=value)
        self._param_value(index)

    # --- per physics step ---------------------------------------------------------------------------------------
    def physics_step(self, quad: EmulatedQuad) -> None:
        self.now = max(self.now, quad.time + quad.behind_s)
        righted = quad.operator()
        if righted is not None:
            self._note("righted", tilt_deg=round(math.degrees(righted), 1))
        quad.command(self._setpoint())

    def _attitude_past_limits(self) -> tuple[str, float, float] | None:
        """(axis, angle deg, limit deg) of the first of roll, pitch past its FD_FAIL_* limit (PX4's Euler angles,
        NED/FRD), else None."""
        roll, pitch, _ = quaternion_to_euler(attitude_enu_flu_to_ned_frd(self.quad.sim.true_kinematics().quaternion))
        for axis, angle in (("roll", roll), ("pitch", pitch)):
            limit = self.params["FD_FAIL_R" if axis == "roll" else "FD_FAIL_P"]
            if limit > 0 and abs(math.degrees(angle)) > limit:
                return axis, abs(math.degrees(angle)), limit
        return None

    def _failure_detector(self) -> None:
        """Armed: an axis past its limit for longer than its FD_FAIL_*_TTRI is an attitude failure (announced once
        per flight); it stops the motors (disarms) with termination enabled or within the take-off lockdown window."""
        over = self._attitude_past_limits()
        axis = over[0] if over is not None else None
        self._over_since = {axis: self._over_since.get(axis, self.now)} if axis is not None else {}
        if axis is None or self.now - self._over_since[axis] <= self.params[f"FD_FAIL_{axis[0].upper()}_TTRI"]:
            return
        window = self.params["COM_LKDOWN_TKO"]
        lockdown = (self.takeoff_at is not None and window >= 0 and self.now - self.takeoff_at <= window)
        act = lockdown or self.params["CBRK_FLIGHTTERM"] != TERMINATION_OFF
        if act or not self._failed:
            self.status(mavlink.MAV_SEVERITY_EMERGENCY, f"Critical failure: {axis} {over[1]:.0f}>{over[2]:.0f} deg"
                        + (", motors off" if act else ""))
        self._failed = True
        if act:
            self._disarm("failure detector")
            self._over_since = {}

    def _setpoint(self) -> Setpoint | None:
        now, quad = self.now, self.quad
        kin = quad.sim.true_kinematics()
        z = kin.position[2]
        if self.armed and not self.airborne and z > quad.home[2] + 0.05:
            self.airborne, self.takeoff_at = True, now
        if self.armed:
            self._failure_detector()
        if not self.armed and self.airborne and quad.on_ground():
            self.airborne = False  # the land detector: motors stopped in the air, now down
        if self.main_mode == PX4_OFFBOARD and (self.last_setpoint is None or now - self.last_setpoint
                                               > self.params["COM_OF_LOSS_T"]):
            if self.airborne:
                self._enter(PX4_AUTO, PX4_AUTO_LAND)
                self.status(mavlink.MAV_SEVERITY_CRITICAL, "Failsafe: offboard signal lost, landing")
            else:
                self._enter(PX4_AUTO, PX4_AUTO_LOITER)
                self.status(mavlink.MAV_SEVERITY_WARNING, "Offboard signal lost: holding")
        if not self.armed:
            return None
        if self.main_mode == PX4_OFFBOARD and self.offboard is not None:
            return self.offboard
        if self.main_mode == PX4_AUTO and self.sub_mode == PX4_AUTO_TAKEOFF and self.takeoff_target is not None:
            if abs(z - self.takeoff_target[2]) < 0.1:
                self._enter(PX4_AUTO, PX4_AUTO_LOITER)
            return Position(self.takeoff_target)
        if self.main_mode == PX4_AUTO and self.sub_mode == PX4_AUTO_LAND:
            if quad.on_ground():
                self.touchdown = self.touchdown if self.touchdown is not None else now
                self.airborne = False
                disarm_after = self.params["COM_DISARM_LAND"]
                if disarm_after > 0 and now - self.touchdown >= disarm_after:
                    self._disarm("landed")
                    return None
            gain = quad.sim.controller.gains.position_p
            return Velocity(np.array([gain * (self.hold[0] - kin.position[0]), gain * (self.hold[1] - kin.position[1]),
                                      -LAND_SPEED]), 0.0)
        if not self.airborne:
            return Ctbr(0.1 * quad.spec.weight, np.zeros(3))  # armed on the ground: idle spin
        return Position(self.hold)

    # --- outgoing ----------------------------------------------------------------------------------------------
    def due_streams(self, now: float, emit: bool = True) -> None:
        """Send every stream whose period has come round (``emit`` False: the schedule advances, nothing is sent)."""
        for msg_id, rate in self.rates.items():
            if rate > 0 and now >= self.next_due[msg_id]:
                if emit:
                    self._emit_stream(msg_id)
                self.next_due[msg_id] = max(self.next_due[msg_id] + 1.0 / rate, now)

    def next_stream_due(self) -> float:
        return min((t for m, t in self.next_due.items() if self.rates[m] > 0), default=self.now + 1.0)

    def _emit_stream(self, msg_id: int) -> None:
        mav, quad = self.mav, self.quad
        boot_ms = int(self.now * 1000) & 0xFFFFFFFF
        if msg_id == mavlink.MAVLINK_MSG_ID_HEARTBEAT:
            base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (mavlink.MAV_MODE_FLAG_SAFETY_ARMED if self.armed else 0)
            state = mavlink.MAV_STATE_ACTIVE if self.armed else mavlink.MAV_STATE_STANDBY
            self._send(mav.heartbeat_encode(mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_PX4, base,
                                            px4_custom_mode(self.main_mode, self.sub_mode), state, 3))
            return
        if msg_id == mavlink.MAVLINK_MSG_ID_SYS_STATUS:
            voltage = int(quad.battery_voltage * 1000)
            remaining = int(max(min((quad.battery_voltage - 3.0) / 1.2, 1.0), 0.0) * 100)
            self._send(mav.sys_status_encode(0, 0, 0, 0, voltage, -1, remaining, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            return
        if msg_id == mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            self._send(mav.autopilot_version_encode(CAPABILITIES, FLIGHT_SW_VERSION, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8,
                                                    0, 0, 0))
            return
        if msg_id == mavlink.MAVLINK_MSG_ID_HOME_POSITION:
            self._send(mav.home_position_encode(*global_position(self.home), *enu_to_ned(self.home), [1.0, 0, 0, 0],
                                                0.0, 0.0, 0.0, int(self.now * 1e6)))
            return
        if msg_id == mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE:
            landed = (mavlink.MAV_LANDED_STATE_LANDING if self.sub_mode == PX4_AUTO_LAND and self.airborne
                      else mavlink.MAV_LANDED_STATE_IN_AIR if self.airborne else mavlink.MAV_LANDED_STATE_ON_GROUND)
            self._send(mav.extended_sys_state_encode(0, landed))
            return
        state = quad.state()
        rates = flu_to_frd(state.body_rates)
        if msg_id in (mavlink.MAVLINK_MSG_ID_ATTITUDE, mavlink.MAVLINK_MSG_ID_ATTITUDE_QUATERNION):
            q = attitude_enu_flu_to_ned_frd(state.quaternion)
            if msg_id == mavlink.MAVLINK_MSG_ID_ATTITUDE:
                roll, pitch, yaw = quaternion_to_euler(q)
                self._send(mav.attitude_encode(boot_ms, roll, pitch, yaw, *rates))
            else:
                self._send(mav.attitude_quaternion_encode(boot_ms, q[3], q[0], q[1], q[2], *rates, [0, 0, 0, 0]))
        elif msg_id == mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED:
            self._send(mav.local_position_ned_encode(boot_ms, *enu_to_ned(state.position),
                                                     *enu_to_ned(state.velocity)))
        elif msg_id == mavlink.MAVLINK_MSG_ID_HIGHRES_IMU:
            accel = np.zeros(3)
            if self._previous_velocity is not None and self.now > self._previous_velocity[0]:
                accel = (state.velocity - self._previous_velocity[1]) / (self.now - self._previous_velocity[0])
            self._previous_velocity = (self.now, state.velocity)
            specific = quaternion_to_matrix(state.quaternion).T @ (accel + np.array([0.0, 0.0, 9.81]))
            self._send(mav.highres_imu_encode(int(self.now * 1e6), *flu_to_frd(specific), *rates, 0, 0, 0,
                                              1013.25, 0, 0, 20.0, 0b111111, 0))


class MavlinkEmulator(UdpEmulatorBase):
    """One PX4-like vehicle on UDP ``host:port`` (answers whoever sent last), served by one thread."""

    thread_name = "mavlink-emulator"

    def __init__(self, reality: QuadReality, port: int = 14550, host: str = "127.0.0.1",
                 journal: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.reality, self.host = reality, host
        self._init_base(journal, clock)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.quad = EmulatedQuad(reality)
        self.vehicle = Px4Vehicle(self.quad, self._emit, self._write)
        self.parser = mavlink.MAVLink(None, srcSystem=255, srcComponent=0)
        self.parser.robust_parsing = True
        self.faults = LinkFaultState(reality.faults)
        self.client: tuple[str, int] | None = None

    @property
    def address(self) -> str:
        return f"udp:{self.host}:{self.port}"

    def _emit(self, msg) -> None:
        mav = self.vehicle.mav
        data = msg.pack(mav)
        mav.seq = (mav.seq + 1) % 256
        if self.client is None:
            return
        now = self.now()
        delay = self.faults.outgoing_delay(now)
        if delay is None:
            return
        if delay > 0:
            self._hold_back(now + delay, data)
            return
        self._sendto(data)

    def _sendto(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.client)
        except OSError:
            pass

    def _receive(self, now: float) -> None:
        while True:
            try:
                data, address = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not self.faults.accept(now):
                continue
            self.client = address
            for msg in self.parser.parse_buffer(data) or []:
                if msg.get_type() != "BAD_DATA":
                    self.vehicle.handle(msg, now)

    def serve(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until :meth:`stop`; ``on_ready(address)`` once the socket is bound."""
        if on_ready is not None:
            on_ready(self.address)
        vehicle = self.vehicle
        try:
            while not self._stop.is_set():
                now = self.now()
                deadlines = [now + _IDLE_S, vehicle.next_stream_due()]
                if self._next_release() is not None:
                    deadlines.append(self._next_release())
                readable, _, _ = select.select([self.sock], [], [], max(min(deadlines) - now, 0.0))
                now = self.now()
                self.quad.advance_to(now, vehicle.physics_step)  # first: a setpoint acts from when it arrived
                if readable:
                    self._receive(now)
                vehicle.due_streams(now, self.client is not None and self.faults.streaming(now))
                for data in self._released(now):
                    self._sendto(data)
                self._flush_journal()
        finally:
            self.close()

    @property
    def stats(self) -> dict:
        return {"link": self.faults.stats, "physics_behind_s": self.quad.behind_s, "mode": self.vehicle.mode_name,
                "armed": self.vehicle.armed}

    def close(self) -> None:
        self.sock.close()
        self.quad.close()
        self._close_journal()
