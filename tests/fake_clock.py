"""A fake monotonic clock for the deployment loop's timing tests (arms and multirotors)."""
from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only when the loop sleeps or something takes time (``spend``); each read adds
    1 µs so the loop's final spin-wait ends."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def spend(self, seconds: float) -> None:
        self.now += seconds
