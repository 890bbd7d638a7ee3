"""Dynamixel X-series servos on Protocol 2.0 through ROBOTIS' ``dynamixel_sdk`` (position mode)."""
from __future__ import annotations

from sim2real.hal.servo_bus import BusError, ServoBus, watchdog_units

OPERATING_MODE, TORQUE_ENABLE, BUS_WATCHDOG, GOAL_POSITION, PRESENT_CURRENT = 11, 64, 98, 116, 126
POSITION_MODE = 3
WATCHDOG_UNIT_S = 0.020
VELOCITY_UNIT = 0.229 * 4096 / 60.0  # ticks/s per Present_Velocity unit (0.229 rev/min)
CURRENT_UNIT_NM = 2.94 / 1750  # N·m per Present_Current unit, nominal: stall torque at the current limit


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


class DynamixelBus(ServoBus):
    """X-series (XL330, XL430, XM430) on one Protocol 2.0 bus; sync read of addresses 126..135."""

    sdk_module, label = "dynamixel_sdk", "the Dynamixel bus"
    baud_rates = (9600, 57600, 115200, 1_000_000, 2_000_000, 3_000_000, 4_000_000)
    model_numbers = {1190: "XL330-M077", 1200: "XL330-M288", 1060: "XL430-W250", 1020: "XM430-W350"}
    has_watchdog = True
    read_address, read_length = PRESENT_CURRENT, 10  # current (2) + velocity (4) + position (4)
    goal_address, goal_length = GOAL_POSITION, 4
    torque_address = TORQUE_ENABLE

    def packet_handler(self):
        return self.sdk.PacketHandler(2.0)

    def configure(self) -> None:
        for servo_id in self.ids:
            self.write_register(servo_id, OPERATING_MODE, 1, POSITION_MODE)

    def set_watchdog(self, seconds: float) -> None:
        """Bus_Watchdog: servos stop when no instruction arrives for ``seconds`` (20 ms units, 0 = off)."""
        units = 0 if seconds <= 0 else watchdog_units(seconds, WATCHDOG_UNIT_S, 127)
        for servo_id in self.ids:
            self.write_register(servo_id, BUS_WATCHDOG, 1, units)

    def watchdog_tripped(self) -> list[int]:
        """Ids whose bus watchdog has fired (register reads -1)."""
        try:
            return [i for i in self.ids if self.read_register(i, BUS_WATCHDOG, 1) == 0xFF]
        except BusError:
            return list(self.ids)

    def decode(self, servo_id: int) -> tuple[int, int, float]:
        get = self._reader.getData
        current = _signed(get(servo_id, PRESENT_CURRENT, 2), 16)
        velocity = _signed(get(servo_id, PRESENT_CURRENT + 2, 4), 32)
        position = _signed(get(servo_id, PRESENT_CURRENT + 6, 4), 32)
        return position, velocity * VELOCITY_UNIT, current * CURRENT_UNIT_NM
