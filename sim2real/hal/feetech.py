"""Feetech STS3215 servos through ``feetech-servo-sdk`` (``scservo_sdk``, little-endian STS protocol)."""
from __future__ import annotations

from sim2real.hal.servo_bus import ServoBus

OPERATING_MODE, TORQUE_ENABLE, GOAL_POSITION, LOCK, PRESENT_POSITION = 33, 40, 42, 55, 56
POSITION_MODE = 0
LOAD_UNIT_NM = 2.94 / 1000  # Present_Load is 0.1 % of the 2.94 N·m stall torque


def _sign_magnitude(value: int, sign_bit: int) -> int:
    magnitude = value & ~(1 << sign_bit)
    return -magnitude if value & (1 << sign_bit) else magnitude


class FeetechBus(ServoBus):
    """STS3215 servos on one bus; sync read of addresses 56..61 (position, speed, load). No bus watchdog."""

    sdk_module, label = "scservo_sdk", "the Feetech bus"
    baud_rates = (38_400, 57_600, 76_800, 115_200, 128_000, 250_000, 500_000, 1_000_000)
    model_numbers = {777: "STS3215"}
    read_address, read_length = PRESENT_POSITION, 6
    goal_address, goal_length = GOAL_POSITION, 2
    torque_address = TORQUE_ENABLE

    def packet_handler(self):
        return self.sdk.PacketHandler(0)  # 0: little-endian (STS series)

    def configure(self) -> None:
        """Position mode is an EEPROM item: unlock, write, lock again."""
        for servo_id in self.ids:
            self.write_register(servo_id, LOCK, 1, 0)
            self.write_register(servo_id, OPERATING_MODE, 1, POSITION_MODE)
            self.write_register(servo_id, LOCK, 1, 1)

    def decode(self, servo_id: int) -> tuple[int, int, float]:
        get = self._reader.getData
        position = _sign_magnitude(get(servo_id, PRESENT_POSITION, 2), 15)
        speed = _sign_magnitude(get(servo_id, PRESENT_POSITION + 2, 2), 15)
        load = _sign_magnitude(get(servo_id, PRESENT_POSITION + 4, 2), 10)
        return position, float(speed), load * LOAD_UNIT_NM
