"""Emulated Feetech STS3215 serial-bus servos (SCServo protocol, little-endian STS variant).

Framing: ``FF FF | ID | LEN | INST | params | CHK`` with ``LEN = len(params) + 2`` and
``CHK = ~(ID + LEN + INST + params) & 0xFF``; no CRC and no byte stuffing. A packet with a wrong checksum is
ignored (no reply), as the servos do. Status error bits follow Dynamixel 1.0, which the STS firmware inherits:
0x08 range (value outside an item's range or the angle limits), 0x40 instruction/access (unknown instruction,
undefined or read-only item, EEPROM write while ``Lock`` = 1 or torque is on, read past the table). Signed items
use sign-magnitude (bit 15 for positions and speeds, bit 10 for load).
"""
from __future__ import annotations

from sim2real.emulators.arm import EmulatedArm
from sim2real.emulators.bus import EmulatedServo, Names, ServoBus
from sim2real.emulators.control_table import Access, ControlTable, Register, TableError

R, RW = Access.R, Access.RW
MODEL_STS3215 = 777
BAUD_RATES = {0: 1_000_000, 1: 500_000, 2: 250_000, 3: 128_000, 4: 115_200, 5: 76_800, 6: 57_600, 7: 38_400}
LOAD_UNIT_NM = 2.94 / 1000  # Present_Load: 0.1 % of stall torque
ERR_RANGE, ERR_INSTRUCTION = 0x08, 0x40


def sts3215_table(servo_id: int) -> ControlTable:
    """The STS3215 control table (Feetech memory map) with factory defaults (Lock = 1: EEPROM protected)."""
    e = {"eeprom": True}
    return ControlTable((
        Register("Firmware_Major_Version", 0, 1, R, 3, 0, 255),
        Register("Firmware_Minor_Version", 1, 1, R, 10, 0, 255),
        Register("Model_Number", 3, 2, R, MODEL_STS3215, 0, 65535),
        Register("ID", 5, 1, RW, servo_id, 0, 253, **e),
        Register("Baud_Rate", 6, 1, RW, 0, 0, 7, **e),
        Register("Return_Delay_Time", 7, 1, RW, 0, 0, 254, **e),
        Register("Response_Status_Level", 8, 1, RW, 1, 0, 1, **e),
        Register("Min_Position_Limit", 9, 2, RW, 0, 0, 4095, **e),
        Register("Max_Position_Limit", 11, 2, RW, 4095, 0, 4095, **e),
        Register("Max_Temperature_Limit", 13, 1, RW, 70, 0, 100, **e),
        Register("Max_Voltage_Limit", 14, 1, RW, 140, 0, 254, **e),
        Register("Min_Voltage_Limit", 15, 1, RW, 40, 0, 254, **e),
        Register("Max_Torque_Limit", 16, 2, RW, 1000, 0, 1000, **e),
        Register("Phase", 18, 1, RW, 12, 0, 254, **e),
        Register("Unloading_Condition", 19, 1, RW, 44, 0, 254, **e),
        Register("LED_Alarm_Condition", 20, 1, RW, 47, 0, 254, **e),
        Register("P_Coefficient", 21, 1, RW, 32, 1, 254, **e),
        Register("D_Coefficient", 22, 1, RW, 32, 0, 254, **e),
        Register("I_Coefficient", 23, 1, RW, 0, 0, 254, **e),
        Register("Minimum_Startup_Force", 24, 2, RW, 16, 0, 1000, **e),
        Register("CW_Dead_Zone", 26, 1, RW, 1, 0, 32, **e),
        Register("CCW_Dead_Zone", 27, 1, RW, 1, 0, 32, **e),
        Register("Protection_Current", 28, 2, RW, 500, 0, 511, **e),
        Register("Angular_Resolution", 30, 1, RW, 1, 1, 3, **e),
        Register("Homing_Offset", 31, 2, RW, 0, -2047, 2047, sign_bit=11, **e),
        Register("Operating_Mode", 33, 1, RW, 0, 0, 0, **e),
        Register("Protective_Torque", 34, 1, RW, 20, 0, 100, **e),
        Register("Protection_Time", 35, 1, RW, 200, 0, 254, **e),
        Register("Overload_Torque", 36, 1, RW, 80, 0, 100, **e),
        Register("Velocity_Closed_Loop_P", 37, 1, RW, 10, 0, 100, **e),
        Register("Over_Current_Protection_Time", 38, 1, RW, 200, 0, 254, **e),
        Register("Velocity_Closed_Loop_I", 39, 1, RW, 200, 0, 254, **e),
        Register("Torque_Enable", 40, 1, RW, 0, 0, 1),
        Register("Acceleration", 41, 1, RW, 0, 0, 254),
        Register("Goal_Position", 42, 2, RW, 2048, -32766, 32766, sign_bit=15),
        Register("Goal_Time", 44, 2, RW, 0, 0, 32766),
        Register("Goal_Velocity", 46, 2, RW, 0, -32766, 32766, sign_bit=15),
        Register("Torque_Limit", 48, 2, RW, 1000, 0, 1000),
        Register("Lock", 55, 1, RW, 1, 0, 1),
        Register("Present_Position", 56, 2, R, 2048, -32767, 32767, sign_bit=15),
        Register("Present_Velocity", 58, 2, R, 0, -32767, 32767, sign_bit=15),
        Register("Present_Load", 60, 2, R, 0, -1000, 1000, sign_bit=10),
        Register("Present_Voltage", 62, 1, R, 120, 0, 255),
        Register("Present_Temperature", 63, 1, R, 30, 0, 255),
        Register("Status", 65, 1, R, 0, 0, 255),
        Register("Moving", 66, 1, R, 0, 0, 1),
        Register("Present_Current", 69, 2, R, 0, 0, 32767),
    ))


class FeetechServo(EmulatedServo):
    names = Names("Torque_Enable", "Goal_Position", "Present_Position", "Present_Velocity", "Present_Load",
                  "Moving", "P_Coefficient", 32, 1.0, LOAD_UNIT_NM)

    def make_table(self, servo_id: int) -> ControlTable:
        return sts3215_table(servo_id)

    def check_write(self, address, data):
        items = self.table.parse_write(address, data, self.torque_on)
        for register, value in items:
            if register.eeprom and self.table.get("Lock") == 1:
                raise TableError("access", f"{register.name} is in EEPROM: write Lock = 0 first")
            if register.name == "Goal_Position" and not (
                    self.table.get("Min_Position_Limit") <= value <= self.table.get("Max_Position_Limit")):
                raise TableError("range", f"Goal_Position {value} outside the angle limits")
        return items

    def refresh(self) -> None:
        super().refresh()
        load = abs(self.table.get("Present_Load")) / 1000.0
        self.table.set("Present_Current", int(load * 2.7 / 0.0065))  # 6.5 mA units, 2.7 A stall current


def _checksum(body: bytes) -> int:
    return ~sum(body) & 0xFF


def packet(servo_id: int, instruction_or_error: int, params: bytes) -> bytes:
    """A complete SCServo packet (instruction or status)."""
    body = bytes([servo_id, len(params) + 2, instruction_or_error]) + params
    return b"\xff\xff" + body + bytes([_checksum(body)])


class FeetechBus(ServoBus):
    """SCServo framing over emulated STS3215 servos."""

    address_size = 1
    errors = {"instruction": ERR_INSTRUCTION, "access": ERR_INSTRUCTION, "length": ERR_RANGE, "range": ERR_RANGE,
              "limit": ERR_RANGE}

    def execute(self, servo_id, instruction, params, now):
        replies = super().execute(servo_id, instruction, params, now)
        # Response_Status_Level 0: only PING and READ are answered.
        return [r for r in replies if instruction in (0x01, 0x02, 0x82) or
                self.find(r[0]) is None or self.find(r[0]).table.get("Response_Status_Level") == 1]

    def decode(self, buffer: bytearray):
        packets = []
        while True:
            start = buffer.find(b"\xff\xff")
            if start < 0:
                del buffer[:max(0, len(buffer) - 1)]
                return packets
            del buffer[:start]
            if len(buffer) >= 3 and buffer[2] == 0xFF:  # a third 0xFF: the header starts one byte later
                del buffer[0]
                continue
            if len(buffer) < 4:
                return packets
            total = 4 + buffer[3]
            if len(buffer) < total:
                return packets
            raw = bytes(buffer[:total])
            del buffer[:total]
            if total < 6 or _checksum(raw[2:-1]) != raw[-1]:
                packets.append((raw[2], None, None))
                continue
            packets.append((raw[2], raw[4], raw[5:-1]))

    def encode(self, reply) -> bytes:
        servo_id, error, data = reply
        return packet(servo_id, error, data)


def make_bus(arm: EmulatedArm, ids: list[int], on_goal=None) -> FeetechBus:
    """One STS3215 per joint of ``arm`` with the given bus ids."""
    return FeetechBus([FeetechServo(i, j, arm) for j, i in enumerate(ids)], on_goal)
