"""Dynamixel X-series servos on Protocol 2.0 through ROBOTIS' ``dynamixel_sdk`` (position mode)."""
from __future__ import annotations

from typing import Any

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
    _watchdog_reader: Any = None  # sync read of Bus_Watchdog (1 byte) from every servo

    def packet_handler(self):
        return self.sdk.PacketHandler(2.0)

    def configure(self) -> None:
        for servo_id in self.ids:
            self.write_register(servo_id, OPERATING_MODE, 1, POSITION_MODE)

    def open(self) -> None:
        super().open()
        self._watchdog_reader = self.sdk.GroupSyncRead(self.port, self.packets, BUS_WATCHDOG, 1)
        for servo_id in self.ids:
            self._watchdog_reader.addParam(servo_id)

    def set_watchdog(self, seconds: float) -> None:
        """Bus_Watchdog: servos stop when no instruction arrives for ``seconds`` (20 ms units, 0 = off and clears
        an expired one). Written to every servo by one sync write, so all start timing at once (armed one by one,
        with retries on a lossy bus, the first could expire before the last is armed), read back and written again
        while a servo disagrees (``retries`` times); the bus times its instructions from that write on."""
        units = 0 if seconds <= 0 else watchdog_units(seconds, WATCHDOG_UNIT_S, 127)
        writer = self.sdk.GroupSyncWrite(self.port, self.packets, BUS_WATCHDOG, 1)
        for servo_id in self.ids:
            writer.addParam(servo_id, [units])
        for _ in range(1 + self.retries):
            started = self.clock()
            result = self._guard(writer.txPacket)
            if result != self.sdk.COMM_SUCCESS:
                raise BusError(f"sync write of Bus_Watchdog: {self.packets.getTxRxResult(result)}")
            wrong = [i for i, value in self._watchdog_values().items() if value != units]
            if not wrong:
                self.watchdog_s, self._spoke_at, self.expired = units * WATCHDOG_UNIT_S, started, []
                return
        raise BusError(f"servo(s) {wrong}: Bus_Watchdog did not take {units} ({1 + self.retries} tries)")

    def _watchdog_values(self) -> dict[int, int]:
        """Bus_Watchdog of every servo as read (0xFF: -1, expired): one sync read, asked again after lost replies."""
        result = self._exchange(self._watchdog_reader.txRxPacket)
        self._check(result, 0, "sync read of Bus_Watchdog")
        return {i: self._watchdog_reader.getData(i, BUS_WATCHDOG, 1) for i in self.ids}

    def watchdog_tripped(self) -> list[int]:
        """Ids whose bus watchdog has expired (Bus_Watchdog reads -1): one sync read of the register."""
        return [i for i, value in self._watchdog_values().items() if value == 0xFF]

    def decode(self, servo_id: int) -> tuple[int, int, float]:
        get = self._reader.getData
        current = _signed(get(servo_id, PRESENT_CURRENT, 2), 16)
        velocity = _signed(get(servo_id, PRESENT_CURRENT + 2, 4), 32)
        position = _signed(get(servo_id, PRESENT_CURRENT + 6, 4), 32)
        return position, velocity * VELOCITY_UNIT, current * CURRENT_UNIT_NM
