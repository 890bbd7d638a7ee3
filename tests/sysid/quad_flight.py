"""Test support: the emulators' vehicle model (:class:`EmulatedQuad`: physics, onboard controller, latency, noise of a
reality profile) behind the :class:`FlightVehicle` interface in-process, on a fake clock, so the real multirotor
deployment loop writes a real deployment log in a fraction of the flight's time. The link (cflib / pymavlink and
the emulator's wire protocol) is left out; the benchmarks fly the same excitation through it."""
from __future__ import annotations

import numpy as np

from sim2real.emulators.quad_reality import EmulatedQuad, QuadReality
from sim2real.hal.flight import FlightVehicle
from sim2real.hal.multirotor import MultirotorState, Position, Setpoint


class FakeClock:
    """Monotonic seconds that move only when slept, plus ``tick`` per reading (so a spin-wait ends)."""

    def __init__(self, tick: float = 2e-5) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class InProcessFlight(FlightVehicle):
    """``reality``'s emulated vehicle; physics advances to the fake clock's time on every read and command."""

    def __init__(self, reality: QuadReality, clock: FakeClock) -> None:
        self.quad, self.clock = EmulatedQuad(reality), clock
        self.spec = self.quad.spec

    def connect(self) -> None:
        return None

    def disconnect(self) -> None:
        return None

    def arm(self) -> None:
        return None

    def _advance(self) -> None:
        self.quad.advance_to(self.clock.now)

    def read_state(self) -> MultirotorState:
        self._advance()
        state = self.quad.state()
        state.timestamp = self.clock.now
        return state

    def send_command(self, setpoint: Setpoint) -> Setpoint:
        self._advance()
        self.quad.command(setpoint)
        return setpoint

    def land(self, timeout_s: float = 15.0) -> bool:
        x, y, _ = self.read_state().position
        self.quad.command(Position(np.array([x, y, 0.0])))
        self.clock.sleep(3.0)
        self._advance()
        self.quad.command(None)
        return True

    @property
    def battery_voltage(self) -> float:
        return self.quad.battery_voltage
