"""Serial servo buses through the vendors' client libraries (ROBOTIS ``dynamixel_sdk``, Feetech ``scservo_sdk``).

A :class:`ServoBus` speaks raw ticks: ping, position mode, torque, one sync read of position/velocity/effort for
every servo, one sync write of goal positions, and (where the servo has one) a bus watchdog. Any communication
failure, including a vanished USB adapter, raises :class:`BusError`.

Bus watchdog (Dynamixel): servos whose watchdog expired (no instruction for longer than its time, e.g. the host
stalled) stop and refuse goal writes; the goal sync write has no reply, so nothing else would tell. The servos can
only expire after a silence, so the bus times its own instructions to every servo (``clock``) and, when one sync
read or sync write completes nearly the watchdog time after the previous one began
(:meth:`ServoBus.suspect_after_s`), asks the servos (one sync read of the watchdog register; no cost in periods
without such a silence) and notes the expired ones in ``expired`` (with ``expiry``, one line saying why) until the
watchdog is set again. What follows is the arm's decision (:class:`~sim2real.hal.servo_arm.ServoArm` raises
:class:`ServosStopped`).
"""
from __future__ import annotations

import abc
import math
import termios
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy as np

from sim2real.extras import require



class BusError(Exception):
    """The bus did not deliver: timeout, corrupt reply, servo error, or a lost port."""


class ServosStopped(Exception):
    """Servos no longer follow goal writes (their bus watchdog expired); the deployment must stop."""


@dataclass
class BusReading:
    """One sync read: ``positions`` ticks, ``velocities`` ticks/s, ``efforts`` N·m, in the bus's id order."""

    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray


def _port_class(base: type, latency_ms: float) -> type:
    """The SDK's PortHandler with the reply timeout based on ``latency_ms`` instead of a fixed 16 ms.

    USB serial adapters buffer bytes for their latency timer (FTDI default 16 ms; set it to 1 ms on Linux with
    ``echo 1 > /sys/bus/usb-serial/devices/ttyUSB0/latency_timer``).
    """

    class Port(base):  # type: ignore[misc, valid-type]
        def setPacketTimeout(self, packet_length):  # noqa: N802 (SDK name)
            self.packet_start_time = self.getCurrentTime()
            self.packet_timeout = self.tx_time_per_byte * packet_length + 2.0 * latency_ms + 2.0  # ms

    return Port


class ServoBus(abc.ABC):
    """Common SDK plumbing; subclasses give the control-table addresses and value decoding."""

    sdk_module: str  # the vendor SDK's module, imported when a bus is made (the servo extra)
    label: str  # who needs the SDK, for the missing-extra message
    baud_rates: tuple[int, ...]
    model_numbers: dict[int, str]
    has_watchdog: bool = False
    read_address: int
    read_length: int
    goal_address: int
    goal_length: int
    torque_address: int

    def __init__(self, port: str, ids: list[int], baudrate: int = 1_000_000, latency_ms: float = 16.0,
                 retries: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        if baudrate not in self.baud_rates:
            raise ValueError(f"baud rate {baudrate} not supported (allowed: {', '.join(map(str, self.baud_rates))})")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.port_name, self.ids, self.baudrate, self.retries = port, list(ids), baudrate, retries
        self.reply_timeout_s = (2.0 * latency_ms + 2.0) / 1000.0  # beyond the wire time of a packet (s)
        self.sdk: ModuleType = require(self.sdk_module, self.label)
        self.port = _port_class(self.sdk.PortHandler, latency_ms)(port)
        self.packets = self.packet_handler()
        self._reader: Any = None
        self._writer: Any = None
        self.clock = clock  # monotonic s: state timestamps and the silence before each instruction
        self.watchdog_s = 0.0  # the armed bus watchdog time (s); 0: none armed
        self.expired: list[int] = []  # ids whose bus watchdog was found expired (until it is set again)
        self.expiry = ""  # why, one line
        self._spoke_at: float | None = None  # when the last instruction to every servo began (clock s)

    @abc.abstractmethod
    def packet_handler(self) -> Any:
        """The SDK's packet handler for this protocol."""

    @abc.abstractmethod
    def decode(self, servo_id: int) -> tuple[int, int, float]:
        """(position ticks, velocity ticks/s, effort N·m) of one servo from the last sync read."""

    @abc.abstractmethod
    def configure(self) -> None:
        """Put every servo in position mode (torque must be off)."""

    # --- plumbing --------------------------------------------------------------------------------------------
    def _guard(self, call: Callable[[], Any]) -> Any:
        """Run an SDK call, turning a lost port into :class:`BusError` (the SDK would leave the port 'busy')."""
        try:
            return call()
        except (OSError, termios.error, TypeError, IndexError) as err:  # pyserial's SerialException is an OSError
            self.port.is_using = False
            raise BusError(f"{self.port_name}: link lost ({err})") from None

    def _lost(self, result: int) -> bool:
        """Whether an SDK result means the reply was lost or damaged on the wire (worth asking again)."""
        sdk = self.sdk
        return result in (sdk.COMM_RX_TIMEOUT, sdk.COMM_RX_CORRUPT, sdk.COMM_RX_FAIL, sdk.COMM_RX_WAITING)

    def _exchange(self, call: Callable[[], Any], retries: int | None = None) -> Any:
        """Run an idempotent request/reply SDK ``call`` (see the module docstring), again after a lost or damaged
        reply up to ``retries`` (default: the bus's) times; returns the last reply. Stale input (the rest of a
        damaged reply, or a reply that came after its timeout) is dropped before every try, or an SDK that does not
        (``scservo_sdk``) would take it for the answer. The SDK result is the reply itself (sync read) or its
        second-to-last item ((result, error), (value, result, error))."""
        tries = 1 + (self.retries if retries is None else retries)
        for attempt in range(tries):
            if attempt:
                time.sleep(self.reply_timeout_s)  # a late reply to the last try lands now, and is dropped
            self._guard(self.port.ser.reset_input_buffer)
            reply = self._guard(call)
            if attempt == tries - 1 or not self._lost(reply if isinstance(reply, int) else reply[-2]):
                return reply

    def _check(self, result: int, error: int, what: str, retries: int | None = None) -> None:
        if result != self.sdk.COMM_SUCCESS:
            tries = 1 + (self.retries if retries is None else retries)
            suffix = f" ({tries} tries)" if self._lost(result) and tries > 1 else ""
            raise BusError(f"{what}: {self.packets.getTxRxResult(result)}{suffix}")
        if error:
            raise BusError(f"{what}: {self.packets.getRxPacketError(error)} (error byte {error})")

    def write_register(self, servo_id: int, address: int, size: int, value: int) -> None:
        """Write one item (an absolute value: repeated when the status reply is lost) and check the reply."""
        method = {1: self.packets.write1ByteTxRx, 2: self.packets.write2ByteTxRx, 4: self.packets.write4ByteTxRx}[size]
        result, error = self._exchange(lambda: method(self.port, servo_id, address, value))
        self._check(result, error, f"servo {servo_id} write @{address}")

    def read_register(self, servo_id: int, address: int, size: int) -> int:
        method = {1: self.packets.read1ByteTxRx, 2: self.packets.read2ByteTxRx, 4: self.packets.read4ByteTxRx}[size]
        value, result, error = self._exchange(lambda: method(self.port, servo_id, address))
        self._check(result, error, f"servo {servo_id} read @{address}")
        return int(value)

    # --- the bus ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the port at the baud rate and prepare the group read/write helpers."""
        try:
            opened = self.port.openPort() and self.port.setBaudRate(self.baudrate)
        except OSError as err:  # pyserial's SerialException too
            raise BusError(f"cannot open {self.port_name}: {err}") from None
        if not opened:
            raise BusError(f"cannot open {self.port_name} at {self.baudrate} baud")
        self._reader = self.sdk.GroupSyncRead(self.port, self.packets, self.read_address, self.read_length)
        for servo_id in self.ids:
            self._reader.addParam(servo_id)
        self._writer = self.sdk.GroupSyncWrite(self.port, self.packets, self.goal_address, self.goal_length)

    def close(self) -> None:
        if self.port.is_open:
            try:
                self.port.closePort()
            except (OSError, termios.error):
                pass

    def ping(self) -> dict[int, str]:
        """Model name of every servo; :class:`BusError` names the ones that do not answer."""
        found, missing = {}, []
        for servo_id in self.ids:
            model, result, _ = self._exchange(lambda i=servo_id: self.packets.ping(self.port, i))
            if result != self.sdk.COMM_SUCCESS:
                missing.append(servo_id)
            else:
                found[servo_id] = self.model_numbers.get(model, f"model {model}")
        if missing:
            raise BusError(f"{self.port_name}: no answer from servo id(s) {missing} at {self.baudrate} baud "
                           f"({1 + self.retries} tries each)")
        return found

    def set_torque(self, enabled: bool) -> None:
        for servo_id in self.ids:
            self.write_register(servo_id, self.torque_address, 1, int(enabled))

    def set_watchdog(self, seconds: float) -> None:
        """Arm the servos' own communication watchdog (buses that have one); 0 disables and clears it."""
        raise BusError(f"{type(self).__name__} servos have no bus watchdog")

    def watchdog_tripped(self) -> list[int]:
        """Ids whose bus watchdog has expired (none on buses without one)."""
        return []

    def suspect_after_s(self) -> float:
        """The host silence (s) after which the armed watchdog may have expired: the watchdog time less the reply
        timeout (a goal write may sit that long in the USB adapter after it left this process), at least half of
        it. Measured from the start of one instruction to the end of the next, an upper bound on what the servos
        saw apart from that buffering."""
        return max(0.5 * self.watchdog_s, self.watchdog_s - self.reply_timeout_s)

    def _spoke(self, started: float, check: bool = True) -> None:
        """Bookkeeping after an instruction to every servo that began at ``started`` (clock s) went through. When it
        completed more than :meth:`suspect_after_s` after the previous one began, ask the servos (``check``) whether
        the watchdog expired and note the ones that did (``expired``, ``expiry``). Until they answer (no ``check``,
        or the check raised :class:`BusError`) the silence stays on the books, so the next instruction asks."""
        previous = self._spoke_at
        if self.watchdog_s <= 0 or previous is None or self.expired:
            self._spoke_at = started
            return
        silence = self.clock() - previous
        if silence <= self.suspect_after_s():
            self._spoke_at = started
            return
        if not check:
            return
        asked = self.clock()
        self.expired = self.watchdog_tripped()
        self._spoke_at = asked
        if self.expired:
            self.expiry = (f"bus watchdog expired on servo(s) {self.expired}: they stopped and refuse goal writes "
                           f"(instructions up to {silence:.3f} s apart; watchdog {self.watchdog_s:.3f} s)")

    def read(self, retries: int | None = None) -> BusReading:
        """Sync-read position, velocity and effort of every servo, asked again after a lost or damaged reply up to
        ``retries`` (default: the bus's) times; notes an expired bus watchdog (``expired``)."""
        started = self.clock()
        result = self._exchange(self._reader.txRxPacket, retries)
        self._check(result, 0, "sync read", retries)
        values = [self.decode(servo_id) for servo_id in self.ids]
        positions, velocities, efforts = (np.array(v, dtype=float) for v in zip(*values))
        self._spoke(started)
        return BusReading(positions, velocities, efforts)

    def write_goals(self, ticks: np.ndarray, check: bool = True) -> None:
        """Sync-write goal positions (ticks, bus id order); no reply is expected, so nothing is repeated. Notes an
        expired bus watchdog (``expired``: those servos ignored the write) unless ``check`` is off (a safe stop
        does not wait for the answer)."""
        self._writer.clearParam()
        for servo_id, value in zip(self.ids, ticks):
            self._writer.addParam(servo_id, list(int(value).to_bytes(self.goal_length, "little")))
        started = self.clock()
        result = self._guard(self._writer.txPacket)
        if result != self.sdk.COMM_SUCCESS:
            raise BusError(f"sync write: {self.packets.getTxRxResult(result)}")
        self._spoke(started, check)


def watchdog_units(seconds: float, unit_s: float, maximum: int) -> int:
    """A watchdog period in register units, at least 1 (rounded up so it never fires early)."""
    return int(min(maximum, max(1, math.ceil(seconds / unit_s - 1e-9))))
