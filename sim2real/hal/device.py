"""What every HAL device shares: a connection, a safe stop, and a context manager that always stops safely."""
from __future__ import annotations

import abc
from typing import TypeVar

DeviceT = TypeVar("DeviceT", bound="Device")


class Device(abc.ABC):
    """A robot or vehicle behind the HAL (simulated or real)."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection (bus, socket, radio, physics client)."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Close the connection; must be safe to call twice."""

    @abc.abstractmethod
    def safe_stop(self) -> None:
        """Bring the device to a safe standstill (per backend: hold, disable torque, hover or land)."""

    def __enter__(self: DeviceT) -> DeviceT:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.safe_stop()
        finally:
            self.disconnect()
