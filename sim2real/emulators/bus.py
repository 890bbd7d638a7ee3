"""Servo-bus semantics shared by the emulated Dynamixel and Feetech buses (framing lives in each protocol module).

A :class:`EmulatedServo` is one servo's control table bound to one joint of the :class:`EmulatedArm`; a
:class:`ServoBus` dispatches decoded instructions (PING, READ, WRITE, REG_WRITE, ACTION, SYNC_READ, SYNC_WRITE, ...)
to servos by their current ID register and returns status replies ``(id, error byte, data)``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim2real.emulators.arm import EmulatedArm
from sim2real.emulators.control_table import ControlTable, Register, TableError

PING, READ, WRITE, REG_WRITE, ACTION, REBOOT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x08
SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE = 0x82, 0x83, 0x92, 0x93
BROADCAST = 0xFE


@dataclass(frozen=True)
class Names:
    """Control-table item names a servo family uses for the registers the physics binds to."""

    torque: str
    goal_position: str
    present_position: str
    present_velocity: str
    present_load: str
    moving: str
    position_gain: str
    nominal_position_gain: int
    velocity_unit: float  # ticks/s per register unit
    load_unit: float  # N·m per register unit


class EmulatedServo(abc.ABC):
    """One servo: its control table and the joint (spec index) it drives."""

    names: Names

    def __init__(self, servo_id: int, joint: int, arm: EmulatedArm) -> None:
        self.joint, self.arm = joint, arm
        self.table = self.make_table(servo_id)
        self.pending: tuple[int, bytes] | None = None  # REG_WRITE waiting for ACTION

    @abc.abstractmethod
    def make_table(self, servo_id: int) -> ControlTable:
        """A fresh control table (factory defaults plus this servo's id and model)."""

    @property
    def id(self) -> int:
        return self.table.get("ID")

    @property
    def torque_on(self) -> bool:
        return bool(self.table.get(self.names.torque))

    def refresh(self) -> None:
        """Copy the sensors into the present-value registers."""
        ticks, ticks_per_s, effort = self.arm.measure()
        n, j = self.names, self.joint
        self.table.set(n.present_position, int(ticks[j]))
        self.table.set(n.present_velocity, int(round(ticks_per_s[j] / n.velocity_unit)))
        load = self.table.registers[n.present_load]
        self.table.set(n.present_load, int(np.clip(round(effort[j] / n.load_unit), load.low, load.high)))
        self.table.set(n.moving, int(abs(ticks_per_s[j]) > 10.0))

    def read(self, address: int, length: int) -> bytes:
        self.refresh()
        return self.table.read(address, length)

    def check_write(self, address: int, data: bytes) -> list[tuple[Register, int]]:
        """Validate a write (``TableError`` on refusal); family rules extend this."""
        return self.table.parse_write(address, data, self.torque_on)

    def write(self, address: int, data: bytes) -> None:
        items = self.check_write(address, data)
        self.table.store(items)
        for register, value in items:
            self.apply(register.name, value)

    def apply(self, name: str, value: int) -> None:
        """Side effects of a stored value on the physics."""
        n, j, arm = self.names, self.joint, self.arm
        if name == n.torque:
            arm.torque_on[j] = bool(value)
            if value:  # like the real servos: enabling torque makes the goal the present position
                self.refresh()
                self.table.set(n.goal_position, self.table.get(n.present_position))
                arm.hold(j)
        elif name == n.goal_position and self.torque_on and self.position_mode():
            arm.set_goal_ticks(j, value)
        elif name == n.position_gain:
            arm.gain_scale[j] = value / n.nominal_position_gain

    def position_mode(self) -> bool:
        """Whether goal positions drive the joint (families with other modes override this)."""
        return True

    def reboot(self) -> None:
        """Power cycle: factory RAM values, torque off."""
        servo_id = self.id
        self.table = self.make_table(servo_id)
        self.arm.torque_on[self.joint] = False
        self.pending = None

    def tick(self, now: float) -> None:
        """Time-driven behaviour (e.g. a bus watchdog); ``now`` s since the emulator started."""

    def heard(self, now: float) -> None:
        """An instruction addressed to this servo arrived at ``now``."""


Reply = tuple[int, int, bytes]  # servo id, error byte, parameters


class ServoBus(abc.ABC):
    """Instruction dispatch over a set of servos; subclasses define framing and error bytes."""

    address_size: int  # bytes of an address / length field in READ, SYNC_READ, ...
    errors: dict[str, int]  # TableError kind → status error byte; plus "instruction"

    def __init__(self, servos: list[EmulatedServo], on_goal: Callable[[int, int], None] | None = None) -> None:
        self.servos = servos
        self.on_goal = on_goal

    def find(self, servo_id: int) -> EmulatedServo | None:
        for servo in self.servos:
            if servo.id == servo_id:
                return servo
        return None

    def _int(self, data: bytes, offset: int) -> int:
        return int.from_bytes(data[offset:offset + self.address_size], "little")

    def _write(self, servo: EmulatedServo, address: int, data: bytes) -> int:
        try:
            servo.write(address, data)
        except TableError as err:
            return self.errors[err.kind]
        if self.on_goal is not None and address <= self.goal_address < address + len(data):
            self.on_goal(servo.id, servo.table.get(servo.names.goal_position))
        return 0

    @property
    def goal_address(self) -> int:
        servo = self.servos[0]
        return servo.table.registers[servo.names.goal_position].address

    def _read(self, servo: EmulatedServo, address: int, length: int) -> Reply:
        try:
            return servo.id, 0, servo.read(address, length)
        except TableError as err:
            return servo.id, self.errors[err.kind], b""

    def ping_data(self, servo: EmulatedServo) -> bytes:
        """Parameters of a PING status (Protocol 2.0: model + firmware; Feetech: none)."""
        return b""

    def execute(self, servo_id: int, instruction: int, params: bytes, now: float) -> list[Reply]:
        """Run one decoded instruction packet; returns the status replies in bus order."""
        a = self.address_size
        if instruction in (SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE):
            return self._group(instruction, params, now)
        targets = self.servos if servo_id == BROADCAST else [s for s in [self.find(servo_id)] if s is not None]
        replies: list[Reply] = []
        for servo in targets:
            servo.heard(now)
            if instruction == PING:
                replies.append((servo.id, 0, self.ping_data(servo)))
            elif instruction == READ and len(params) == 2 * a:
                replies.append(self._read(servo, self._int(params, 0), self._int(params, a)))
            elif instruction == WRITE and len(params) > a:
                replies.append((servo.id, self._write(servo, self._int(params, 0), params[a:]), b""))
            elif instruction == REG_WRITE and len(params) > a:
                try:
                    servo.check_write(self._int(params, 0), params[a:])
                    servo.pending, error = (self._int(params, 0), params[a:]), 0
                except TableError as err:
                    error = self.errors[err.kind]
                replies.append((servo.id, error, b""))
            elif instruction == ACTION:
                error = 0 if servo.pending is None else self._write(servo, *servo.pending)
                servo.pending = None
                replies.append((servo.id, error, b""))
            elif instruction == REBOOT:
                servo.reboot()
                replies.append((servo.id, 0, b""))
            else:
                replies.append((servo.id, self.errors["instruction"], b""))
        if servo_id == BROADCAST and instruction != PING:
            return []  # broadcast writes are never answered; a broadcast PING is answered by every servo
        return replies

    def _group(self, instruction: int, params: bytes, now: float) -> list[Reply]:
        a = self.address_size
        replies: list[Reply] = []
        if instruction == SYNC_READ:
            address, length = self._int(params, 0), self._int(params, a)
            for servo_id in params[2 * a:]:
                servo = self.find(servo_id)
                if servo is not None:
                    servo.heard(now)
                    replies.append(self._read(servo, address, length))
        elif instruction == SYNC_WRITE:
            address, length = self._int(params, 0), self._int(params, a)
            body = params[2 * a:]
            for offset in range(0, len(body) - length, length + 1):
                servo = self.find(body[offset])
                if servo is not None:
                    servo.heard(now)
                    self._write(servo, address, body[offset + 1:offset + 1 + length])
        elif instruction == BULK_READ:
            for offset in range(0, len(params) - 2 * a, 1 + 2 * a):
                servo = self.find(params[offset])
                if servo is not None:
                    servo.heard(now)
                    replies.append(self._read(servo, self._int(params, offset + 1), self._int(params, offset + 1 + a)))
        else:  # BULK_WRITE: [id, address, length, data] per servo
            offset = 0
            while offset + 1 + 2 * a <= len(params):
                length = self._int(params, offset + 1 + a)
                servo = self.find(params[offset])
                data = params[offset + 1 + 2 * a:offset + 1 + 2 * a + length]
                if servo is not None:
                    servo.heard(now)
                    self._write(servo, self._int(params, offset + 1), data)
                offset += 1 + 2 * a + length
        return replies

    def tick(self, now: float) -> None:
        for servo in self.servos:
            servo.tick(now)

    @abc.abstractmethod
    def decode(self, buffer: bytearray) -> list[tuple[int, int, bytes] | tuple[int, None, None]]:
        """Remove complete packets from ``buffer``: ``(id, instruction, params)``, or ``(id, None, None)`` for a
        packet whose CRC/checksum is wrong."""

    @abc.abstractmethod
    def encode(self, reply: Reply) -> bytes:
        """One status packet on the wire."""

    def checksum_error(self, servo_id: int) -> list[Reply]:
        """Replies to a corrupted instruction packet (none by default: the servo ignores it)."""
        return []

    def feed(self, buffer: bytearray, now: float) -> list[bytes]:
        """Handle every complete packet in ``buffer`` (consumed in place); returns the wire replies."""
        out: list[bytes] = []
        for servo_id, instruction, params in self.decode(buffer):
            replies = self.checksum_error(servo_id) if instruction is None else \
                self.execute(servo_id, instruction, params, now)
            out.extend(self.encode(r) for r in replies)
        return out
