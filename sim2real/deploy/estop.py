"""Emergency stop: SIGINT/SIGTERM, a stop file appearing, or a key (``q``, space, Esc) on an interactive terminal."""
from __future__ import annotations

import os
import select
import signal
import sys
import termios
import tty
from types import FrameType


class EStop:
    """Polled once per control step (``reason`` is ``None`` until something asked to stop)."""

    KEYS = (b"q", b" ", b"\x1b")

    def __init__(self, stop_file: str | None = None, keyboard: bool = True) -> None:
        self.stop_file = stop_file
        self.reason: str | None = None
        self._previous: dict[int, object] = {}
        self._tty: list | None = None
        self._keyboard = keyboard and sys.stdin.isatty()

    def _signal(self, number: int, frame: FrameType | None) -> None:
        self.reason = f"signal {signal.Signals(number).name}"

    def __enter__(self) -> "EStop":
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._signal)
        if self._keyboard:
            self._tty = termios.tcgetattr(sys.stdin.fileno())
            tty.setcbreak(sys.stdin.fileno())
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        if self._tty is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._tty)

    def poll(self) -> str | None:
        """Why to stop, or ``None``."""
        if self.reason is None and self.stop_file and os.path.exists(self.stop_file):
            self.reason = f"stop file {self.stop_file}"
        if self.reason is None and self._keyboard and select.select([sys.stdin], [], [], 0)[0]:
            key = os.read(sys.stdin.fileno(), 1)
            if key in self.KEYS:
                self.reason = f"key {key!r}"
        return self.reason
