"""Flying vehicles behind the multirotor HAL: what a real link adds to :class:`Multirotor` (arming, landing, a
battery, a link that can be lost). Frames and units as in :mod:`sim2real.hal.multirotor` (world ENU, body FLU, SI).
"""
from __future__ import annotations

import abc
import time
from typing import Callable

from sim2real.hal.multirotor import Multirotor, MultirotorState


class LinkError(ConnectionError):
    """The link to the vehicle is lost, or the vehicle refused or did not answer a request (one line)."""


class FlightVehicle(Multirotor):
    """A real (or emulated) vehicle. ``safe_stop`` lands in place and disarms. ``crash``: the vehicle's own report
    of a crash since the last :meth:`arm`, one line (an alarm in flight such as a failure detector's on a tip-over,
    or its motors stopped in the air); None while there is none (or the driver cannot tell)."""

    crash: str | None = None

    @abc.abstractmethod
    def arm(self) -> None:
        """Arm the motors and enter the mode that accepts this driver's setpoints; ``LinkError`` if refused."""

    @abc.abstractmethod
    def land(self, timeout_s: float = 15.0) -> bool:
        """Land where the vehicle is and disarm; True once it is down within ``timeout_s`` (s)."""

    @property
    @abc.abstractmethod
    def battery_voltage(self) -> float:
        """Battery voltage (V), NaN when unknown."""

    def safe_stop(self) -> None:
        """Land in place (the vehicle's own failsafe takes over if the link is gone)."""
        self.land()


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def landed(state: MultirotorState, ground_z: float = 0.08, still: float = 0.15) -> bool:
    """Whether ``state`` is on the ground: below ``ground_z`` (m, world z) and slower than ``still`` (m/s)."""
    return bool(state.position[2] < ground_z and abs(state.velocity[2]) < still)
