"""A servo's control table: named registers at byte addresses, with size, access, value range and encoding.

Both emulated servo families use it. Values are stored little-endian; ``sign_bit`` selects Feetech's
sign-magnitude encoding (bit ``sign_bit`` set = negative), otherwise multi-byte values are two's complement when
``signed``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Access(Enum):
    R = "R"
    RW = "RW"


class TableError(Exception):
    """A request the servo refuses; ``kind`` is one of ``access``, ``range``, ``length``, ``limit``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Register:
    """One control-table item: ``address`` and ``size`` in bytes, allowed ``low``..``high`` (decoded units)."""

    name: str
    address: int
    size: int
    access: Access
    default: int
    low: int
    high: int
    eeprom: bool = False
    signed: bool = False
    sign_bit: int | None = None
    choices: tuple[int, ...] | None = None  # allowed values when not a contiguous range


def encode(register: Register, value: int) -> bytes:
    if register.sign_bit is not None and value < 0:
        value = (-value) | (1 << register.sign_bit)
    elif register.signed and value < 0:
        value += 1 << (8 * register.size)
    return int(value).to_bytes(register.size, "little")


def decode(register: Register, raw: bytes) -> int:
    value = int.from_bytes(raw, "little")
    if register.sign_bit is not None:
        magnitude = value & ~(1 << register.sign_bit)
        return -magnitude if value & (1 << register.sign_bit) else magnitude
    if register.signed and value >= 1 << (8 * register.size - 1):
        value -= 1 << (8 * register.size)
    return value


class ControlTable:
    """The memory of one servo. ``end`` is one past the last defined byte; gaps read as zero."""

    def __init__(self, registers: tuple[Register, ...]) -> None:
        self.registers = {r.name: r for r in registers}
        self._by_address = {r.address: r for r in registers}
        self.end = max(r.address + r.size for r in registers)
        self.memory = bytearray(self.end)
        for r in registers:
            self.memory[r.address:r.address + r.size] = encode(r, r.default)

    def get(self, name: str) -> int:
        r = self.registers[name]
        return decode(r, bytes(self.memory[r.address:r.address + r.size]))

    def set(self, name: str, value: int) -> None:
        """Store a value (the servo's own update, e.g. present position); no range check."""
        r = self.registers[name]
        self.memory[r.address:r.address + r.size] = encode(r, value)

    def read(self, address: int, length: int) -> bytes:
        """Raw bytes; ``TableError('access')`` past the end of the table."""
        if length < 1 or address < 0 or address + length > self.end:
            raise TableError("access", f"read {address}+{length} outside the control table (0..{self.end - 1})")
        return bytes(self.memory[address:address + length])

    def parse_write(self, address: int, data: bytes, torque_on: bool) -> list[tuple[Register, int]]:
        """Validate a write of ``data`` at ``address``; returns (register, value) pairs without storing them.

        Raises ``TableError``: ``access`` for an undefined or read-only item or an EEPROM item while torque is on,
        ``length`` when the data ends inside an item, ``range`` for a value outside the item's range.
        """
        items: list[tuple[Register, int]] = []
        offset = 0
        while offset < len(data):
            r = self._by_address.get(address + offset)
            if r is None:
                raise TableError("access", f"no item starts at address {address + offset}")
            if r.access is Access.R:
                raise TableError("access", f"{r.name} is read-only")
            if r.eeprom and torque_on:
                raise TableError("access", f"{r.name} is in EEPROM: disable torque first")
            if offset + r.size > len(data):
                raise TableError("length", f"{r.name} needs {r.size} bytes")
            value = decode(r, bytes(data[offset:offset + r.size]))
            if not r.low <= value <= r.high or (r.choices is not None and value not in r.choices):
                allowed = r.choices if r.choices is not None else f"{r.low}..{r.high}"
                raise TableError("range", f"{r.name}={value} outside {allowed}")
            items.append((r, value))
            offset += r.size
        return items

    def store(self, items: list[tuple[Register, int]]) -> None:
        for r, value in items:
            self.memory[r.address:r.address + r.size] = encode(r, value)
