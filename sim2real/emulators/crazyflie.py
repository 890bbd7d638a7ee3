"""A Crazyflie 2.x emulated at the CRTP level, over UDP exactly as the stock ``cflib`` UDP driver frames it.

Wire format (``cflib/crtp/udpdriver.py``, cflib 0.1.34): one CRTP packet per datagram, no checksum — byte 0 the
header ``(port << 4) | 0b1100 | channel``, then up to 30 payload bytes; a lone ``0xFF`` (null packet) is the scan
probe and is answered with a null packet. Replies go to the sender; log data and console text go to the address of
the last client that sent a non-null packet.

What the firmware side answers (CRTP protocol version 12, so cflib uses TOC v2, the supervisor port and the current
generic-setpoint types):

* link control (15): echo (ch 0, the client's latency pings), source (ch 1) → ``"Bitcraze Crazyflie"``;
* platform (13, ch 1): protocol version 12, firmware version string; legacy arming (ch 0);
* log (5): TOC v1/v2, create/append v1/v2, start (period in 10 ms units), stop, delete, reset; data on ch 2 as
  ``[block id, 3-byte ms timestamp, values packed by their fetch type]``;
* param (2): TOC v1/v2 (read-only flag 0x40), read (ch 1: ``[id, 0, value]``), write (ch 2: echo of the value now
  held), default value (ch 3 misc cmd 8); writes act on the vehicle (flight modes, rate gains, ``stabilizer.stop``);
* mem (4): no memories;
* commander (3): roll, pitch (the client negates it), yaw rate (negated by the firmware), thrust uint16 — angles in
  degrees unless ``flightmode.stabModeRoll``/``stabModePitch`` are both 0 (rates in deg/s); thrust-locked until one
  zero-thrust setpoint;
* generic setpoints (7): meta channel 1: notify-setpoint-stop (hands control back to the high-level commander);
  channel 0: stop 0, position 7 (m, yaw deg), velocity world 8 (m/s, yaw rate deg/s), hover 10 (body
  vx, vy m/s, yaw rate deg/s, height m), manual 11 (angles or rates, thrust 0–100 %); other types are ignored;
* high-level commander (8): takeoff 7, land 8, go_to 4/12 (minimum-jerk position trajectories), stop 3 (motors
  off); blocked while low-level setpoints are in control;
* supervisor (9): state bitfield (ch 0), arm/disarm, crash recovery, emergency stop (ch 1);
* console (0): text lines on connection, arming, watchdog, tumble and emergency events;
* firmware watchdog: a low-level setpoint older than 0.5 s is replaced by a level attitude (thrust or altitude
  kept), older than 2 s by motors off; a body z axis below the horizon for 0.2 s stops the motors (tumbled).
* the lab's operator (:meth:`EmulatedQuad.operator`, as on the MAVLink vehicle): a vehicle that has lain still on the
  floor with its motors off, tipped past 45 deg, for 1 s is set back on its feet on its start mark (journal
  ``righted``); a tumble lock then still needs the supervisor's crash recovery, as on the real firmware.

Thrust: the commander's uint16 PWM drives the motors through the vehicle's own quadratic PWM ↔ thrust curve
(:func:`sim2real.hal.thrust_map.thrust_map_for`: the Crazyflie 2.x's published fit, 0 N at pwm 0) — the vehicle's
physics, not the driver's calibration; ``motor.mN`` logs the PWM that makes each rotor's present thrust on that curve.
Time: physics, firmware timers, log timestamps and the battery (drained by the motors' load only) run on the
emulator's clock (``clock``, default ``time.monotonic``).
Frames: world ENU, body FLU, angles right-handed (pitch positive nose down) after the sign flips above.
"""
from __future__ import annotations

import math
import select
import socket
import struct
import time
import zlib
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from sim2real.emulators.quad_reality import EmulatedQuad, LinkFaultState, QuadReality, UdpEmulatorBase
from sim2real.frames import quaternion_to_euler
from sim2real.hal.thrust_map import PWM_MAX, thrust_map_for
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, Position, Setpoint, Velocity

PROTOCOL_VERSION = 12
FIRMWARE = b"2025.02 sim2real"
MAX_PAYLOAD = 30
LEVEL_AFTER_S = 0.5
STOP_AFTER_S = 2.0
TUMBLE_AFTER_S = 0.2
_IDLE_S = 0.002

PORT_CONSOLE, PORT_PARAM, PORT_COMMANDER, PORT_MEM, PORT_LOG = 0, 2, 3, 4, 5
PORT_GENERIC, PORT_HL, PORT_SUPERVISOR, PORT_PLATFORM, PORT_LINK = 7, 8, 9, 13, 15
LOG_TYPES = {1: "<B", 2: "<H", 3: "<I", 4: "<b", 5: "<h", 6: "<i", 7: "<f", 8: "<e"}
PARAM_TYPES = {0x08: "<B", 0x09: "<H", 0x0A: "<I", 0x06: "<f"}
ENOENT, E2BIG, ENOMEM, EEXIST = 2, 7, 12, 17
LOG_MAX_BLOCKS, LOG_MAX_LEN = 16, 26


def header(port: int, channel: int) -> int:
    """CRTP header byte as cflib's ``CRTPPacket.set_header`` builds it."""
    return ((port & 0x0F) << 4) | 0x0C | (channel & 0x03)


# --- tables of contents --------------------------------------------------------------------------------------
# log: (group, name, type id); the values come from ``CrazyflieFirmware.snapshot``
LOG_TOC: tuple[tuple[str, str, int], ...] = (
    *(("stateEstimate", n, 7) for n in ("x", "y", "z", "vx", "vy", "vz", "qx", "qy", "qz", "qw", "roll", "pitch",
                                         "yaw")),
    *(("gyro", n, 7) for n in ("x", "y", "z")),
    *(("stabilizer", n, 7) for n in ("roll", "pitch", "yaw", "thrust")),
    ("pm", "vbat", 7), ("pm", "state", 4),
    *(("motor", f"m{i}", 2) for i in range(1, 5)),
    ("supervisor", "info", 2),
)
# params: (group, name, type id, read-only, default)
PARAM_TOC: tuple[tuple[str, str, int, bool, float], ...] = (
    ("flightmode", "stabModeRoll", 0x08, False, 1), ("flightmode", "stabModePitch", 0x08, False, 1),
    ("flightmode", "stabModeYaw", 0x08, False, 0), ("commander", "enHighLevel", 0x08, False, 1),
    ("stabilizer", "estimator", 0x08, False, 2), ("stabilizer", "controller", 0x08, False, 1),
    ("stabilizer", "stop", 0x08, False, 0), ("kalman", "resetEstimation", 0x08, False, 0),
    ("supervisor", "tmblChckEn", 0x08, False, 1), ("ring", "effect", 0x08, False, 6),
    ("pid_rate", "roll_kp", 0x06, False, 0.0), ("pid_rate", "yaw_kp", 0x06, False, 0.0),
    ("firmware", "revision0", 0x0A, True, 0x51A2), ("firmware", "modified", 0x08, True, 0),
)


def _toc_crc(entries) -> int:
    return zlib.crc32(";".join(f"{e[0]}.{e[1]}:{e[2]}" for e in entries).encode()) & 0xFFFFFFFF


def _toc_reply(cmd: int, entries, index: int, meta: Callable[[tuple], int], v2: bool) -> bytes | None:
    if not 0 <= index < len(entries):
        return None
    e = entries[index]
    ident = struct.pack("<H", index) if v2 else struct.pack("<B", index)
    return bytes([cmd]) + ident + bytes([meta(e)]) + e[0].encode() + b"\0" + e[1].encode() + b"\0"


@dataclass
class LogBlock:
    """A started or stopped log block: variables as (TOC index, fetch type id); ``period`` s."""

    variables: list[tuple[int, int]]
    period: float = 0.0
    next_due: float | None = None

    @property
    def size(self) -> int:
        return sum(struct.calcsize(LOG_TYPES[t]) for _, t in self.variables)


@dataclass
class Trajectory:
    """A high-level-commander trajectory: minimum-jerk from ``start`` to ``end`` (m, world) over ``duration`` s."""

    kind: str
    start: np.ndarray
    end: np.ndarray
    t0: float
    duration: float
    yaw: float | None  # rad, None: keep the current yaw

    def position(self, now: float) -> np.ndarray:
        tau = min(max((now - self.t0) / self.duration, 0.0), 1.0) if self.duration > 0 else 1.0
        s = tau ** 3 * (10 - 15 * tau + 6 * tau * tau)
        return self.start + s * (self.end - self.start)

    def velocity(self, now: float) -> np.ndarray:
        """Feed-forward velocity (m/s, world) of the trajectory at ``now``."""
        if self.duration <= 0 or not 0.0 <= now - self.t0 <= self.duration:
            return np.zeros(3)
        tau = (now - self.t0) / self.duration
        ds = 30 * tau * tau * (1 - tau) ** 2 / self.duration
        return ds * (self.end - self.start)

    def finished(self, now: float) -> bool:
        return now >= self.t0 + self.duration


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class CrazyflieFirmware:
    """The firmware side of one emulated Crazyflie: answers CRTP packets and runs the commander per physics step.

    ``send(data)`` emits one CRTP packet to the current client; ``journal(record)`` receives every setpoint and
    safety event (JSON-able dicts).
    """

    def __init__(self, quad: EmulatedQuad, index: int, send: Callable[[bytes], None],
                 journal: Callable[[dict], None]) -> None:
        self.quad, self.index, self._send, self._journal = quad, index, send, journal
        self.thrust_map = thrust_map_for(quad.spec)  # the motors' physics (not the driver's calibration)
        self.params = {f"{g}.{n}": float(d) for g, n, _, _, d in PARAM_TOC}
        gains = quad.sim.controller.gains
        self.params["pid_rate.roll_kp"], self.params["pid_rate.yaw_kp"] = gains.rate_p, gains.yaw_rate_p
        self.log_blocks: dict[int, LogBlock] = {}
        self.armed = False
        self.locked = False  # emergency stop or tumble: needs crash recovery
        self.tumbled = False
        self.thrust_locked = True
        self.low: dict | None = None  # the current low-level setpoint (decoded) and when it came
        self.release_at: float | None = None  # notify-setpoint-stop: low level hands back at this time
        self.hl: Trajectory | None = None
        self.watchdog = "ok"  # ok | level | stopped
        self._level_z: float | None = None
        self._tipped_since: float | None = None
        self.now = 0.0

    # --- output helpers ---------------------------------------------------------------------------------------
    def console(self, text: str) -> None:
        """Console text (port 0), split into 30-byte packets."""
        data = text.encode()
        for i in range(0, len(data), MAX_PAYLOAD):
            self._send(bytes([header(PORT_CONSOLE, 0)]) + data[i:i + MAX_PAYLOAD])

    def _reply(self, port: int, channel: int, payload: bytes) -> None:
        self._send(bytes([header(port, channel)]) + payload[:MAX_PAYLOAD])

    def _note(self, kind: str, **fields: object) -> None:
        self._journal({"t": round(self.now, 4), "vehicle": self.index, "kind": kind, **fields})

    # --- packets ------------------------------------------------------------------------------------------------
    def handle(self, data: bytes, now: float) -> None:
        """One CRTP packet from the client (``now``: s since the emulator started)."""
        self.now = now
        h, payload = data[0], data[1:]
        port, channel = (h >> 4) & 0x0F, h & 0x03
        handler = {PORT_LINK: self._link, PORT_PLATFORM: self._platform, PORT_LOG: self._log,
                   PORT_PARAM: self._param, PORT_MEM: self._mem, PORT_COMMANDER: self._commander,
                   PORT_GENERIC: self._generic, PORT_HL: self._high_level,
                   PORT_SUPERVISOR: self._supervisor}.get(port)
        if handler is not None:
            handler(channel, payload)

    def _link(self, channel: int, payload: bytes) -> None:
        if channel == 0:
            self._reply(PORT_LINK, 0, payload)  # echo (latency ping)
        elif channel == 1:
            self._reply(PORT_LINK, 1, b"Bitcraze Crazyflie")

    def _platform(self, channel: int, payload: bytes) -> None:
        if channel == 1 and payload:
            if payload[0] == 0:
                self._reply(PORT_PLATFORM, 1, bytes([0, PROTOCOL_VERSION]))
            elif payload[0] == 1:
                self._reply(PORT_PLATFORM, 1, bytes([1]) + FIRMWARE)
        elif channel == 0 and len(payload) >= 2 and payload[0] == 1:
            self._arm(bool(payload[1]))  # legacy arming request

    # log ------------------------------------------------------------------------------------------------------------
    def _log(self, channel: int, payload: bytes) -> None:
        if not payload:
            return
        cmd = payload[0]
        if channel == 0:
            self._toc(PORT_LOG, cmd, payload, LOG_TOC, lambda e: e[2])
        elif channel == 1:
            self._log_settings(cmd, payload[1:])

    def _toc(self, port: int, cmd: int, payload: bytes, entries, meta: Callable[[tuple], int]) -> None:
        if cmd == 3:  # info v2: count (u16), crc (u32), max packet, max ops
            self._reply(port, 0, struct.pack("<BHIBB", 3, len(entries), _toc_crc(entries), LOG_MAX_BLOCKS, 128))
        elif cmd == 1:  # info v1
            self._reply(port, 0, struct.pack("<BBIBB", 1, len(entries), _toc_crc(entries), LOG_MAX_BLOCKS, 128))
        elif cmd in (2, 0) and len(payload) >= (3 if cmd == 2 else 2):
            index = struct.unpack("<H", payload[1:3])[0] if cmd == 2 else payload[1]
            reply = _toc_reply(cmd, entries, index, meta, cmd == 2)
            if reply is not None:
                self._reply(port, 0, reply)

    def _log_settings(self, cmd: int, body: bytes) -> None:
        if cmd == 5:  # reset: delete every block
            self.log_blocks.clear()
            self._reply(PORT_LOG, 1, bytes([5, 0, 0]))
            return
        if not body:
            return
        block_id = body[0]
        if cmd in (0, 1, 6, 7):  # create / append, v1 (1-byte ids) or v2 (2-byte ids)
            status = self._log_define(cmd, block_id, body[1:])
            self._reply(PORT_LOG, 1, bytes([cmd, block_id, status]))
        elif cmd == 3 and len(body) >= 2:  # start: period in 10 ms units
            block = self.log_blocks.get(block_id)
            if block is not None:
                block.period = max(body[1], 1) * 0.01
                block.next_due = self.now
            self._reply(PORT_LOG, 1, bytes([3, block_id, 0 if block else ENOENT]))
        elif cmd == 4:
            block = self.log_blocks.get(block_id)
            if block is not None:
                block.next_due = None
            self._reply(PORT_LOG, 1, bytes([4, block_id, 0 if block else ENOENT]))
        elif cmd == 2:
            found = self.log_blocks.pop(block_id, None)
            self._reply(PORT_LOG, 1, bytes([2, block_id, 0 if found else ENOENT]))

    def _log_define(self, cmd: int, block_id: int, items: bytes) -> int:
        v2 = cmd in (6, 7)
        width = 3 if v2 else 2
        variables = []
        for i in range(0, len(items) - width + 1, width):
            fetch = items[i] & 0x0F
            ident = struct.unpack("<H", items[i + 1:i + 3])[0] if v2 else items[i + 1]
            if ident >= len(LOG_TOC) or fetch not in LOG_TYPES:
                return ENOENT
            variables.append((ident, fetch))
        if cmd in (0, 6):
            if block_id in self.log_blocks:
                return EEXIST
            if len(self.log_blocks) >= LOG_MAX_BLOCKS:
                return ENOMEM
            block = LogBlock(variables)
        else:
            if block_id not in self.log_blocks:
                return ENOENT
            block = LogBlock(self.log_blocks[block_id].variables + variables)
        if block.size > LOG_MAX_LEN:
            return E2BIG
        self.log_blocks[block_id] = block
        return 0

    def snapshot(self) -> dict[str, float]:
        """Every log variable's current value (units of the real firmware: m, m/s, deg, deg/s, V, PWM)."""
        quad = self.quad
        state = quad.state()
        roll, pitch, yaw = np.degrees(quaternion_to_euler(state.quaternion))
        rates = np.degrees(state.body_rates)
        p, v, q = state.position, state.velocity, state.quaternion
        sp, pwm = quad.setpoint, np.zeros(4)  # motor.mN: the PWM of each rotor's thrust, 0 with the motors off
        if sp is not None:
            pwm = [min(self.thrust_map.pwm(4 * quad.spec.kf * rpm ** 2), PWM_MAX) for rpm in state.motor_rpm]
        thrust = min(self.thrust_map.pwm(sp.thrust), PWM_MAX) if isinstance(sp, (Ctbr, AttitudeThrust)) else 0
        values = {"stateEstimate.x": p[0], "stateEstimate.y": p[1], "stateEstimate.z": p[2],
                  "stateEstimate.vx": v[0], "stateEstimate.vy": v[1], "stateEstimate.vz": v[2],
                  "stateEstimate.qx": q[0], "stateEstimate.qy": q[1], "stateEstimate.qz": q[2],
                  "stateEstimate.qw": q[3], "stateEstimate.roll": roll, "stateEstimate.pitch": pitch,
                  "stateEstimate.yaw": yaw, "gyro.x": rates[0], "gyro.y": rates[1], "gyro.z": rates[2],
                  "stabilizer.roll": roll, "stabilizer.pitch": pitch, "stabilizer.yaw": yaw,
                  "stabilizer.thrust": thrust, "pm.vbat": quad.battery_voltage, "pm.state": 0,
                  "supervisor.info": self.bitfield()}
        for i in range(4):
            values[f"motor.m{i + 1}"] = int(pwm[i])
        return values

    def due_log_packets(self, now: float) -> list[bytes]:
        """Data packets of every started block whose period has come round."""
        due = [(bid, b) for bid, b in self.log_blocks.items() if b.next_due is not None and now >= b.next_due]
        if not due:
            return []
        values = self.snapshot()
        stamp = int(now * 1000) & 0xFFFFFF  # ms on the emulator's clock
        packets = []
        for block_id, block in due:
            data = bytearray([header(PORT_LOG, 2), block_id]) + stamp.to_bytes(3, "little")
            for ident, fetch in block.variables:
                g, n, _ = LOG_TOC[ident]
                value = values[f"{g}.{n}"]
                fmt = LOG_TYPES[fetch]
                data += struct.pack(fmt, float(value) if fmt in ("<f", "<e") else int(value))
            packets.append(bytes(data))
            block.next_due += block.period
            if block.next_due < now:
                block.next_due = now + block.period  # fell behind: no bursts
        return packets

    def next_log_due(self) -> float | None:
        dues = [b.next_due for b in self.log_blocks.values() if b.next_due is not None]
        return min(dues) if dues else None

    # params ---------------------------------------------------------------------------------------------------
    def _param(self, channel: int, payload: bytes) -> None:
        if not payload:
            return
        if channel == 0:
            self._toc(PORT_PARAM, payload[0], payload, PARAM_TOC, lambda e: e[2] | (0x40 if e[3] else 0))
        elif channel in (1, 2) and len(payload) >= 2:
            ident = struct.unpack("<H", payload[:2])[0]
            if ident >= len(PARAM_TOC):
                return
            g, n, kind, readonly, _ = PARAM_TOC[ident]
            fmt = PARAM_TYPES[kind]
            if channel == 2 and not readonly and len(payload) >= 2 + struct.calcsize(fmt):
                self._set_param(f"{g}.{n}", struct.unpack(fmt, payload[2:2 + struct.calcsize(fmt)])[0])
            value = self._packed(f"{g}.{n}", fmt)
            self._reply(PORT_PARAM, channel, payload[:2] + (b"\0" if channel == 1 else b"") + value)
        elif channel == 3 and len(payload) >= 3:
            self._param_misc(payload)

    def _packed(self, name: str, fmt: str) -> bytes:
        value = self.params[name]
        return struct.pack(fmt, value if fmt == "<f" else int(value))

    def _param_misc(self, payload: bytes) -> None:
        cmd, ident = payload[0], struct.unpack("<H", payload[1:3])[0]
        if ident >= len(PARAM_TOC):
            self._reply(PORT_PARAM, 3, payload[:3] + bytes([ENOENT]))
            return
        g, n, kind, _, default = PARAM_TOC[ident]
        if cmd == 8:  # default value v2: [cmd, id, status 0, value]
            fmt = PARAM_TYPES[kind]
            value = default if g != "pid_rate" else self.quad.sim.controller.gains.rate_p
            self._reply(PORT_PARAM, 3, payload[:3] + b"\0" + struct.pack(fmt, value if fmt == "<f" else int(value)))
        elif cmd == 4:  # persistent state: nothing is ever stored
            self._reply(PORT_PARAM, 3, payload[:3] + bytes([ENOENT]))
        elif cmd in (3, 5):  # persistent store / clear: no storage in the emulator
            self._reply(PORT_PARAM, 3, payload[:3] + bytes([ENOENT]))

    def _set_param(self, name: str, value: float) -> None:
        controller = self.quad.sim.controller
        if name == "pid_rate.roll_kp" and math.isfinite(value) and value > 0:
            controller.gains = replace(controller.gains, rate_p=float(value))
        elif name == "pid_rate.yaw_kp" and math.isfinite(value) and value > 0:
            controller.gains = replace(controller.gains, yaw_rate_p=float(value))
        elif name.startswith("pid_rate."):
            return  # non-positive or non-finite gains are refused (the value read back stays)
        self.params[name] = float(value)
        self._note("param", name=name, value=float(value))
        if name == "stabilizer.stop" and value:
            self.console("SYS: stabilizer.stop set: motors off\n")

    def _mem(self, channel: int, payload: bytes) -> None:
        if channel == 0 and payload and payload[0] == 1:
            self._reply(PORT_MEM, 0, bytes([1, 0]))  # number of memories: none

    # setpoints ------------------------------------------------------------------------------------------------
    def _take_low_level(self, record: dict) -> None:
        """A low-level setpoint arrived: it takes control from the high-level commander."""
        finite = all(math.isfinite(v) for v in record.values() if isinstance(v, float))
        self._note("setpoint", **record)
        if not finite:
            return  # the firmware would not fly NaN; the emulator drops the packet (and journals it)
        if self.hl is not None:
            self.hl = None
        record["received"] = self.now
        self.low, self.release_at = record, None
        if self.watchdog != "ok":
            self.console("CMD: setpoints back, watchdog cleared\n")
        self.watchdog, self._level_z = "ok", None

    def _commander(self, channel: int, payload: bytes) -> None:
        if channel != 0 or len(payload) < 14:
            return
        roll, pitch, yawrate, thrust = struct.unpack("<fffH", payload[:14])
        if self.thrust_locked:
            if thrust == 0:
                self.thrust_locked = False
                self._note("thrust_unlocked")
            return
        self._take_low_level({"type": "rpyt", "roll": roll, "pitch": pitch, "yawrate": yawrate,
                              "thrust": float(thrust)})

    def _generic(self, channel: int, payload: bytes) -> None:
        if channel == 1 and len(payload) >= 5 and payload[0] == 0:  # meta: notify setpoint stop
            remain = struct.unpack("<I", payload[1:5])[0] / 1000.0
            self.release_at = self.now + remain
            self._note("notify_setpoint_stop", remain_valid_s=remain)
            return
        if channel != 0 or not payload:
            return
        kind = payload[0]
        if kind == 0:
            self._take_low_level({"type": "stop"})
        elif kind in (7, 8, 10) and len(payload) >= 17:
            a, b, c, d = struct.unpack("<ffff", payload[1:17])
            names = {7: ("position", "x", "y", "z", "yaw"), 8: ("velocity", "vx", "vy", "vz", "yawrate"),
                     10: ("hover", "vx", "vy", "yawrate", "z")}[kind]
            self._take_low_level({"type": names[0], names[1]: a, names[2]: b, names[3]: c, names[4]: d})
        elif kind == 11 and len(payload) >= 16:
            roll, pitch, yawrate, thrust, rate = struct.unpack("<fffHB", payload[1:16])
            self._take_low_level({"type": "manual", "roll": roll, "pitch": pitch, "yawrate": yawrate,
                                  "thrust": float(thrust), "rate": bool(rate)})
        else:
            self._note("ignored_setpoint", setpoint_type=kind)

    def _high_level(self, channel: int, payload: bytes) -> None:
        if not payload:
            return
        cmd = payload[0]
        blocked = self.low is not None and self.release_at is None
        if cmd == 3:  # stop: motors off
            self._note("hl", command="stop")
            self.hl, self.low = None, None
            return
        if cmd not in (4, 7, 8, 12):
            return
        if blocked:
            self._note("hl_blocked", command=cmd)
            self.console("HLCMD: blocked by low-level setpoints\n")
            return
        current = np.array(self.quad.state().position)
        if cmd in (7, 8) and len(payload) >= 15:
            _, _, height, yaw, current_yaw, duration = struct.unpack("<BBff?f", payload[:15])
            end = np.array([current[0], current[1], height])
            kind = "takeoff" if cmd == 7 else "land"
        elif cmd in (4, 12) and len(payload) >= (23 if cmd == 4 else 24):
            offset = 3 if cmd == 4 else 4
            relative = bool(payload[2])
            x, y, z, yaw, duration = struct.unpack("<fffff", payload[offset:offset + 20])
            end = np.array([x, y, z]) + (current if relative else 0.0)
            current_yaw, kind = False, "go_to"
        else:
            return
        if not all(math.isfinite(v) for v in (*end, yaw, duration)) or duration < 0:
            self._note("hl_rejected", command=kind)
            return
        self.hl = Trajectory(kind, current, end, self.now, float(duration), None if current_yaw else float(yaw))
        self.low, self.release_at = None, None
        self._note("hl", command=kind, target=end.round(4).tolist(), duration=float(duration))

    def _supervisor(self, channel: int, payload: bytes) -> None:
        if not payload:
            return
        cmd = payload[0]
        if channel == 0 and cmd == 0x0C:
            self._reply(PORT_SUPERVISOR, 0, bytes([0x8C]) + self.bitfield().to_bytes(2, "little"))
        elif channel == 1 and cmd == 0x01 and len(payload) >= 2:
            success = self._arm(bool(payload[1]))
            self._reply(PORT_SUPERVISOR, 1, bytes([0x81, int(success), int(self.armed)]))
        elif channel == 1 and cmd == 0x02:
            recovered = self.locked and self.quad.tilt < math.pi / 2
            if recovered:
                self.locked = self.tumbled = False
                self.console("SUP: recovered\n")
            self._reply(PORT_SUPERVISOR, 1, bytes([0x82, int(recovered), int(recovered)]))
        elif channel == 1 and cmd == 0x03:
            self._emergency("emergency stop")

    def _arm(self, arm: bool) -> bool:
        if arm and self.locked:
            return False
        if arm != self.armed:
            self.armed = arm
            if not arm:
                self.low, self.hl = None, None
            self.console(f"SUP: {'armed' if arm else 'disarmed'}\n")
            self._note("armed" if arm else "disarmed")
        return True

    def _emergency(self, reason: str) -> None:
        self.locked, self.armed = True, False
        self.low, self.hl = None, None
        self.console(f"SUP: {reason}: motors off, locked\n")
        self._note("emergency", reason=reason)

    def bitfield(self) -> int:
        """Supervisor state bits as cflib decodes them."""
        flying = self.quad.setpoint is not None
        hl_active = self.hl is not None and self.low is None
        bits = [not self.locked and not self.tumbled, self.armed, False, self.armed and not self.locked, flying,
                self.tumbled, self.locked, self.tumbled, hl_active,
                self.hl is not None and self.hl.finished(self.now), self.low is not None and self.release_at is None]
        return sum(int(b) << i for i, b in enumerate(bits))

    # --- the commander, once per physics step ----------------------------------------------------------------
    def physics_step(self, quad: EmulatedQuad) -> None:
        """Choose the controller setpoint for this physics step (watchdog, arming, tumble, HL/low-level)."""
        now = quad.time + quad.behind_s
        self.now = max(self.now, now)
        righted = quad.operator()
        if righted is not None:
            self._note("righted", tilt_deg=round(math.degrees(righted), 1))
        quad.command(self._setpoint(now))

    def _setpoint(self, now: float) -> Setpoint | None:
        if not self.armed or self.locked or self.params["stabilizer.stop"]:
            return None
        kin = self.quad.sim.true_kinematics()
        if kin.rotation[8] < 0 and self.params["supervisor.tmblChckEn"]:
            self._tipped_since = self._tipped_since if self._tipped_since is not None else now
            if now - self._tipped_since > TUMBLE_AFTER_S:
                self.tumbled = True
                self._emergency("tumbled")
                return None
        else:
            self._tipped_since = None
        if self.low is not None and self.release_at is not None and now >= self.release_at:
            self.low, self.release_at = None, None
        if self.low is not None:
            return self._low_level(now, kin)
        if self.hl is not None:  # track the trajectory: feed-forward velocity + the cascade's position gain
            yaw = self.hl.yaw
            rate = 0.0 if yaw is None else 2.0 * _wrap(yaw - math.atan2(kin.rotation[3], kin.rotation[0]))
            error = self.hl.position(now) - np.asarray(kin.position)
            velocity = self.hl.velocity(now) + self.quad.sim.controller.gains.position_p * error
            speed = float(np.linalg.norm(velocity))
            if speed > self.quad.spec.max_speed:
                velocity *= self.quad.spec.max_speed / speed
            return Velocity(velocity, rate)
        return None

    def _low_level(self, now: float, kin) -> Setpoint | None:
        low, spec = self.low, self.quad.spec
        age = now - low["received"]
        if age > STOP_AFTER_S:
            if self.watchdog != "stopped":
                self.watchdog = "stopped"
                self.console("CMD: no setpoint for 2 s: motors off\n")
                self._note("watchdog", action="motors_off")
            return None
        kind = low["type"]
        if kind == "stop":
            return None
        if age > LEVEL_AFTER_S:
            if self.watchdog != "level":
                self.watchdog = "level"
                self._level_z = kin.position[2]
                self.console("CMD: no setpoint for 0.5 s: levelling\n")
                self._note("watchdog", action="level")
            return AttitudeThrust(self._level_thrust(kind, kin), 0.0, 0.0, 0.0)
        yaw = math.atan2(kin.rotation[3], kin.rotation[0])
        if kind == "rpyt" or kind == "manual":
            rate_mode = low["rate"] if kind == "manual" else (self.params["flightmode.stabModeRoll"] == 0
                                                              and self.params["flightmode.stabModePitch"] == 0)
            thrust = self._low_thrust(low, kind)
            if thrust <= 0.0:
                return None
            yaw_rate = -math.radians(low["yawrate"]) if kind == "rpyt" else math.radians(low["yawrate"])
            roll, pitch = math.radians(low["roll"]), -math.radians(low["pitch"])
            if rate_mode:
                return Ctbr(thrust, np.array([roll, pitch, yaw_rate]))
            return AttitudeThrust(thrust, roll, pitch, yaw_rate)
        if kind == "position":
            rate = 2.0 * _wrap(math.radians(low["yaw"]) - yaw)
            return Position(np.array([low["x"], low["y"], low["z"]]), rate)
        if kind == "velocity":
            return Velocity(np.array([low["vx"], low["vy"], low["vz"]]), math.radians(low["yawrate"]))
        # hover: body-heading vx, vy; height held by a P loop on z (1/s, the cascade's position gain)
        c, s = math.cos(yaw), math.sin(yaw)
        vz = self.quad.sim.controller.gains.position_p * (low["z"] - kin.position[2])
        return Velocity(np.array([c * low["vx"] - s * low["vy"], s * low["vx"] + c * low["vy"], vz]),
                        math.radians(low["yawrate"]))

    def _low_thrust(self, low: dict, kind: str) -> float:
        """Thrust (N) of an rpyt or manual setpoint (both carry uint16 PWM on the wire; the motors' curve)."""
        return self.thrust_map.thrust(low["thrust"])

    def _level_thrust(self, kind: str, kin) -> float:
        """Thrust (N) while levelled: the last commanded thrust, or for altitude-holding setpoints a PD hold of
        the altitude at the moment the watchdog fired (nominal mass; gains 1/s² and 1/s)."""
        spec = self.quad.spec
        if kind in ("rpyt", "manual"):
            return self._low_thrust(self.low, kind)
        z_ref = self._level_z if self._level_z is not None else kin.position[2]
        accel = 9.81 + 4.0 * (z_ref - kin.position[2]) - 3.0 * kin.velocity[2]
        return float(min(max(spec.mass * accel / max(kin.rotation[8], 0.5), 0.0), spec.max_thrust))


class CrazyflieEmulator(UdpEmulatorBase):
    """``count`` emulated Crazyflies on UDP ports ``port``, ``port + 1``, … of ``host``, served by one thread."""

    thread_name = "crazyflie-emulator"

    def __init__(self, reality: QuadReality, port: int = 19850, host: str = "127.0.0.1", count: int = 1,
                 journal: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.reality, self.host = reality, host
        self._init_base(journal, clock)
        self.sockets: list[socket.socket] = []
        self.vehicles: list[CrazyflieFirmware] = []
        self.quads: list[EmulatedQuad] = []
        self.faults = [LinkFaultState(reality.faults, i) for i in range(count)]
        self._clients: list[tuple[str, int] | None] = [None] * count
        try:
            for i in range(count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((host, port + i))
                sock.setblocking(False)
                self.sockets.append(sock)
        except OSError:
            self.close()
            raise
        for i in range(count):
            quad = EmulatedQuad(reality, i)
            self.quads.append(quad)
            self.vehicles.append(CrazyflieFirmware(quad, i, lambda data, i=i: self._emit(i, data), self._write))
        self.ports = [s.getsockname()[1] for s in self.sockets]

    @property
    def uris(self) -> list[str]:
        return [f"udp://{self.host}:{p}" for p in self.ports]

    def _emit(self, index: int, data: bytes, address: tuple[str, int] | None = None) -> None:
        address = address or self._clients[index]
        if address is None:
            return
        now = self.now()
        delay = self.faults[index].outgoing_delay(now)
        if delay is None:
            return
        if delay > 0:
            self._hold_back(now + delay, (index, data, address))
            return
        self._sendto(index, data, address)

    def _sendto(self, index: int, data: bytes, address: tuple[str, int]) -> None:
        try:
            self.sockets[index].sendto(data, address)
        except OSError:
            pass  # the client went away; UDP has no connection to lose

    def _receive(self, index: int, now: float) -> None:
        sock = self.sockets[index]
        while True:
            try:
                data, address = sock.recvfrom(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not data:
                continue
            if not self.faults[index].accept(now):
                continue
            if data == b"\xff":  # scan probe / null packet: answer with a null packet, to the prober only
                try:
                    sock.sendto(b"\xff", address)
                except OSError:
                    pass
                continue
            if address != self._clients[index]:
                self._clients[index] = address
                self.vehicles[index].console(f"SYS: sim2real Crazyflie emulator, vehicle {index} "
                                             f"({self.reality.name})\n")
            self.vehicles[index].handle(data, now)

    def serve(self, on_ready: Callable[[list[str]], None] | None = None) -> None:
        """Serve until :meth:`stop`; ``on_ready(uris)`` once the sockets are bound."""
        if on_ready is not None:
            on_ready(self.uris)
        try:
            while not self._stop.is_set():
                now = self.now()
                deadlines = [now + _IDLE_S] + [d for v in self.vehicles if (d := v.next_log_due()) is not None]
                if self._next_release() is not None:
                    deadlines.append(self._next_release())
                timeout = max(min(deadlines) - now, 0.0)
                readable, _, _ = select.select(self.sockets, [], [], timeout)
                now = self.now()
                if readable:  # physics up to the arrival first: a setpoint acts from when it arrived, not before
                    for quad, firmware in zip(self.quads, self.vehicles):
                        quad.advance_to(now, firmware.physics_step)
                for sock in readable:
                    self._receive(self.sockets.index(sock), now)
                for i, (quad, firmware) in enumerate(zip(self.quads, self.vehicles)):
                    quad.advance_to(now, firmware.physics_step)
                    if self.faults[i].streaming(now):
                        for packet in firmware.due_log_packets(now):
                            self._emit(i, packet)
                    else:
                        firmware.due_log_packets(now)  # consumed, not sent: the stream pauses
                for index, data, address in self._released(now):
                    self._sendto(index, data, address)
                self._flush_journal()
        finally:
            self.close()

    @property
    def stats(self) -> dict:
        return {"link": [f.stats for f in self.faults], "physics_behind_s": [q.behind_s for q in self.quads]}

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []
        for quad in self.quads:
            quad.close()
        self._close_journal()
