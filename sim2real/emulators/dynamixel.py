"""Emulated ROBOTIS Dynamixel X-series servos (XL330 / XL430 / XM430 control table) on Protocol 2.0.

Framing: ``FF FF FD 00 | ID | LEN_L LEN_H | INST | params | CRC_L CRC_H`` with CRC-16 (poly 0x8005) over the
stuffed packet and byte stuffing ``FF FF FD`` → ``FF FF FD FD`` after the header. Errors in the status byte
(Protocol 2.0 numbers): 2 instruction, 3 CRC, 4 data range, 5 data length, 6 data limit (goal outside the
position limits), 7 access (undefined, read-only, EEPROM while torque is on, read past the table).

Modes: 3/4/5 position (5 also limits current through the servo's strength), 1 velocity, 0 current and 16 PWM
(applied as a torque proportional to the goal). Bus_Watchdog (98): 1..127 × 20 ms without an instruction to the
servo while torque is on stops it, reads -1 and refuses goal writes (range error) until 0 is written.
"""
from __future__ import annotations

import math

from sim2real.emulators.arm import MODE_POSITION, MODE_TORQUE, MODE_VELOCITY, EmulatedArm
from sim2real.emulators.bus import EmulatedServo, Names, ServoBus
from sim2real.emulators.control_table import Access, ControlTable, Register, TableError

R, RW = Access.R, Access.RW
MODELS = {"XL330-M077": 1190, "XL330-M288": 1200, "XL430-W250": 1060, "XM430-W350": 1020}
BAUD_RATES = {0: 9600, 1: 57600, 2: 115200, 3: 1_000_000, 4: 2_000_000, 5: 3_000_000, 6: 4_000_000}
WATCHDOG_UNIT_S = 0.020
RPM_UNIT = 0.229  # Present/Goal_Velocity unit (rev/min)
TICKS_PER_S_PER_UNIT = RPM_UNIT * 4096 / 60.0
CURRENT_UNIT_NM = 2.94 / 1750  # N·m per Present_Current unit: stall torque at the current limit
ERR_INSTRUCTION, ERR_CRC = 2, 3


def x_series_table(servo_id: int, model: int) -> ControlTable:
    """The X-series control table (addresses as in the ROBOTIS e-manual) with factory defaults."""
    e = {"eeprom": True}
    return ControlTable((
        Register("Model_Number", 0, 2, R, model, 0, 65535),
        Register("Model_Information", 2, 4, R, 0, 0, 2**31 - 1),
        Register("Firmware_Version", 6, 1, R, 52, 0, 255),
        Register("ID", 7, 1, RW, servo_id, 0, 252, **e),
        Register("Baud_Rate", 8, 1, RW, 1, 0, 6, **e),
        Register("Return_Delay_Time", 9, 1, RW, 250, 0, 254, **e),
        Register("Drive_Mode", 10, 1, RW, 0, 0, 13, **e),
        Register("Operating_Mode", 11, 1, RW, 3, 0, 16, choices=(0, 1, 3, 4, 5, 16), **e),
        Register("Secondary_ID", 12, 1, RW, 255, 0, 255, **e),
        Register("Protocol_Type", 13, 1, RW, 2, 2, 2, **e),
        Register("Homing_Offset", 20, 4, RW, 0, -1_044_479, 1_044_479, signed=True, **e),
        Register("Moving_Threshold", 24, 4, RW, 10, 0, 1023, **e),
        Register("Temperature_Limit", 31, 1, RW, 80, 0, 100, **e),
        Register("Max_Voltage_Limit", 32, 2, RW, 140, 60, 140, **e),
        Register("Min_Voltage_Limit", 34, 2, RW, 60, 60, 140, **e),
        Register("PWM_Limit", 36, 2, RW, 885, 0, 885, **e),
        Register("Current_Limit", 38, 2, RW, 1750, 0, 1750, **e),
        Register("Velocity_Limit", 44, 4, RW, 445, 0, 2047, **e),
        Register("Max_Position_Limit", 48, 4, RW, 4095, 0, 4095, **e),
        Register("Min_Position_Limit", 52, 4, RW, 0, 0, 4095, **e),
        Register("Startup_Configuration", 60, 1, RW, 0, 0, 3, **e),
        Register("Shutdown", 63, 1, RW, 52, 0, 255, **e),
        Register("Torque_Enable", 64, 1, RW, 0, 0, 1),
        Register("LED", 65, 1, RW, 0, 0, 1),
        Register("Status_Return_Level", 68, 1, RW, 2, 0, 2),
        Register("Registered_Instruction", 69, 1, R, 0, 0, 1),
        Register("Hardware_Error_Status", 70, 1, R, 0, 0, 255),
        Register("Velocity_I_Gain", 76, 2, RW, 1000, 0, 16383),
        Register("Velocity_P_Gain", 78, 2, RW, 100, 0, 16383),
        Register("Position_D_Gain", 80, 2, RW, 0, 0, 16383),
        Register("Position_I_Gain", 82, 2, RW, 0, 0, 16383),
        Register("Position_P_Gain", 84, 2, RW, 800, 1, 16383),
        Register("Feedforward_2nd_Gain", 88, 2, RW, 0, 0, 16383),
        Register("Feedforward_1st_Gain", 90, 2, RW, 0, 0, 16383),
        Register("Bus_Watchdog", 98, 1, RW, 0, 0, 127, signed=True),
        Register("Goal_PWM", 100, 2, RW, 0, -885, 885, signed=True),
        Register("Goal_Current", 102, 2, RW, 0, -1750, 1750, signed=True),
        Register("Goal_Velocity", 104, 4, RW, 0, -445, 445, signed=True),
        Register("Profile_Acceleration", 108, 4, RW, 0, 0, 32767),
        Register("Profile_Velocity", 112, 4, RW, 0, 0, 32767),
        Register("Goal_Position", 116, 4, RW, 2048, -1_048_575, 1_048_575, signed=True),
        Register("Realtime_Tick", 120, 2, R, 0, 0, 32767),
        Register("Moving", 122, 1, R, 0, 0, 1),
        Register("Moving_Status", 123, 1, R, 0, 0, 255),
        Register("Present_PWM", 124, 2, R, 0, -885, 885, signed=True),
        Register("Present_Current", 126, 2, R, 0, -1750, 1750, signed=True),
        Register("Present_Velocity", 128, 4, R, 0, -2**31, 2**31 - 1, signed=True),
        Register("Present_Position", 132, 4, R, 2048, -2**31, 2**31 - 1, signed=True),
        Register("Velocity_Trajectory", 136, 4, R, 0, -2**31, 2**31 - 1, signed=True),
        Register("Position_Trajectory", 140, 4, R, 0, -2**31, 2**31 - 1, signed=True),
        Register("Present_Input_Voltage", 144, 2, R, 120, 0, 255),
        Register("Present_Temperature", 146, 1, R, 30, 0, 255),
    ))


_GOALS = ("Goal_PWM", "Goal_Current", "Goal_Velocity", "Goal_Position")


class DynamixelServo(EmulatedServo):
    names = Names("Torque_Enable", "Goal_Position", "Present_Position", "Present_Velocity", "Present_Current",
                  "Moving", "Position_P_Gain", 800, TICKS_PER_S_PER_UNIT, CURRENT_UNIT_NM)

    def __init__(self, servo_id: int, joint: int, arm: EmulatedArm, model: int) -> None:
        self.model = model
        super().__init__(servo_id, joint, arm)
        self._last_heard = 0.0

    def make_table(self, servo_id: int) -> ControlTable:
        return x_series_table(servo_id, self.model)

    def check_write(self, address, data):
        items = super().check_write(address, data)
        tripped = self.table.get("Bus_Watchdog") == -1
        for register, value in items:
            if tripped and register.name in _GOALS:
                raise TableError("range", "bus watchdog expired: write 0 to Bus_Watchdog first")
            if register.name == "Goal_Position" and self.table.get("Operating_Mode") == 3 and not (
                    self.table.get("Min_Position_Limit") <= value <= self.table.get("Max_Position_Limit")):
                raise TableError("limit", f"Goal_Position {value} outside the position limits")
        return items

    def position_mode(self) -> bool:
        return self.table.get("Operating_Mode") in (3, 4, 5)

    def apply(self, name: str, value: int) -> None:
        super().apply(name, value)
        mode = self.table.get("Operating_Mode")
        if name == "Operating_Mode":
            self.arm.mode[self.joint] = MODE_POSITION if mode in (3, 4, 5) else MODE_VELOCITY if mode == 1 else MODE_TORQUE
        elif name in _GOALS[:3] and self.torque_on and not self.position_mode():
            self._apply_goal(mode)

    def _apply_goal(self, mode: int) -> None:
        """Velocity mode: Goal_Velocity; current / PWM mode: a torque proportional to Goal_Current / Goal_PWM."""
        j, arm = self.joint, self.arm
        if mode == 1:
            arm.mode[j] = MODE_VELOCITY
            arm.goal[j] = self.table.get("Goal_Velocity") * RPM_UNIT * 2.0 * math.pi / 60.0
        else:
            arm.mode[j] = MODE_TORQUE
            fraction = self.table.get("Goal_Current") / 1750 if mode == 0 else self.table.get("Goal_PWM") / 885
            arm.goal[j] = fraction * arm.max_torque[j]

    def heard(self, now: float) -> None:
        self._last_heard = now

    def tick(self, now: float) -> None:
        watchdog = self.table.get("Bus_Watchdog")
        if watchdog > 0 and self.torque_on and now - self._last_heard > watchdog * WATCHDOG_UNIT_S:
            self.table.set("Bus_Watchdog", -1)
            self.arm.hold(self.joint)

    def refresh(self) -> None:
        super().refresh()
        self.table.set("Realtime_Tick", int(self.arm.time * 1000) % 32768)


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Dynamixel Protocol 2.0 CRC-16 (polynomial 0x8005, initial 0, MSB first)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


_HEADER = b"\xff\xff\xfd\x00"


def stuff(body: bytes) -> bytes:
    return body.replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")


def unstuff(body: bytes) -> bytes:
    return body.replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


def packet(servo_id: int, instruction: int, params: bytes) -> bytes:
    """A complete Protocol 2.0 packet (instruction or status) with stuffing and CRC."""
    body = stuff(bytes([instruction]) + params)
    head = _HEADER + bytes([servo_id]) + (len(body) + 2).to_bytes(2, "little") + body
    return head + crc16(head).to_bytes(2, "little")


class DynamixelBus(ServoBus):
    """Protocol 2.0 framing over emulated X-series servos."""

    address_size = 2
    errors = {"instruction": ERR_INSTRUCTION, "range": 4, "length": 5, "limit": 6, "access": 7}

    def ping_data(self, servo: EmulatedServo) -> bytes:
        return servo.table.read(0, 2) + servo.table.read(6, 1)

    def execute(self, servo_id, instruction, params, now):
        replies = super().execute(servo_id, instruction, params, now)
        # Status_Return_Level 0: only PING is answered; 1: PING and reads; 2: everything.
        keep = []
        for reply in replies:
            servo = self.find(reply[0])
            level = servo.table.get("Status_Return_Level") if servo is not None else 2
            if level == 2 or instruction == 0x01 or (level == 1 and instruction in (0x02, 0x82, 0x92)):
                keep.append(reply)
        return keep

    def decode(self, buffer: bytearray):
        packets = []
        while True:
            start = buffer.find(_HEADER)
            if start < 0:
                del buffer[:max(0, len(buffer) - 3)]  # keep a possible partial header
                return packets
            del buffer[:start]
            if len(buffer) < 7:
                return packets
            total = 7 + int.from_bytes(buffer[5:7], "little")
            if len(buffer) < total:
                return packets
            raw = bytes(buffer[:total])
            del buffer[:total]
            if total < 10 or crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
                packets.append((raw[4], None, None))
                continue
            body = unstuff(raw[7:-2])
            packets.append((raw[4], body[0], body[1:]))

    def checksum_error(self, servo_id: int):
        servo = self.find(servo_id)
        return [] if servo is None else [(servo_id, ERR_CRC, b"")]

    def encode(self, reply) -> bytes:
        servo_id, error, data = reply
        return packet(servo_id, 0x55, bytes([error]) + data)


def make_bus(arm: EmulatedArm, ids: list[int], models: list[int], on_goal=None) -> DynamixelBus:
    """One servo per joint of ``arm`` with the given bus ids and model numbers."""
    servos = [DynamixelServo(i, j, arm, m) for j, (i, m) in enumerate(zip(ids, models))]
    return DynamixelBus(servos, on_goal)
