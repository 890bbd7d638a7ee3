"""Serve an emulated servo bus on a Linux pseudo-terminal, advancing the arm's physics in wall-clock time.

The client library opens the slave side (``/dev/pts/N``) like a USB serial adapter. One thread does everything,
as a half-duplex bus would: wait for bytes, step physics up to "now", answer each complete instruction after the
reality's latency, apply injected faults (drop, corrupt, delay, silence) and journal every goal position written.
"""
from __future__ import annotations

import json
import os
import select
import threading
import time
import tty
from typing import Callable, TextIO

import numpy as np

from robots.registry import get_robot_spec
from sim2real.emulators import dynamixel, feetech
from sim2real.emulators.arm import EmulatedArm
from sim2real.emulators.bus import ServoBus
from sim2real.emulators.reality import Faults, RealityProfile, fault_seed

PROTOCOLS = ("dynamixel", "feetech")
_IDLE_S = 0.002  # physics keeps moving while the bus is quiet


class BusEmulator:
    """An emulated arm on a servo bus behind a pseudo-terminal.

    ``journal``: optional path receiving one JSON line per goal-position write (``t`` s, ``id``, ``ticks``).
    The injected faults are drawn with ``stats["fault_seed"]`` (the profile's ``faults.seed``, else fresh entropy).
    """

    def __init__(self, protocol: str, reality: RealityProfile, robot: str = "so101", journal: str | None = None,
                 dynamixel_model: int = dynamixel.MODELS["XL330-M288"],
                 clock: Callable[[], float] = time.monotonic) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.reality = reality
        self.spec = get_robot_spec(robot)
        self.arm = EmulatedArm(self.spec, reality)
        ids = [self.spec.actuator(n).bus_id for n in self.spec.joint_names]
        self._journal: TextIO | None = open(journal, "a", encoding="utf-8") if journal else None
        on_goal = self._record_goal if journal else None
        self.bus: ServoBus = (dynamixel.make_bus(self.arm, ids, [dynamixel_model] * len(ids), on_goal)
                              if protocol == "dynamixel" else feetech.make_bus(self.arm, ids, on_goal))
        seed = fault_seed(reality.faults.seed)
        self._rng = np.random.default_rng(seed)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line editing before the client configures the port
        self.port = os.ttyname(self.slave)
        self.clock = clock  # monotonic s (a fake clock in timing tests moves physics and the bus watchdog)
        self._start = clock()
        self._stop = threading.Event()
        self.stats = {"packets": 0, "dropped": 0, "corrupted": 0, "delayed": 0, "fault_seed": seed}

    def now(self) -> float:
        """Seconds since the emulator started (on its clock)."""
        return self.clock() - self._start

    def _record_goal(self, servo_id: int, ticks: int) -> None:
        assert self._journal is not None
        self._journal.write(json.dumps({"t": round(self.now(), 6), "id": servo_id, "ticks": ticks}) + "\n")

    def _send(self, replies: list[bytes]) -> None:
        """Write the status packets answering one instruction, after the latency (plus an injected spike)."""
        faults = self.reality.faults
        if self.now() < faults.after_s:
            faults = Faults()
        out = bytearray()
        for reply in replies:
            self.stats["packets"] += 1
            if self._rng.random() < faults.drop_probability:
                self.stats["dropped"] += 1
                continue
            if self._rng.random() < faults.corrupt_probability:
                self.stats["corrupted"] += 1
                damaged = bytearray(reply)
                damaged[int(self._rng.integers(2, len(damaged)))] ^= 0x5A
                reply = bytes(damaged)
            out.extend(reply)
        delay = self.reality.latency_s
        if self._rng.random() < faults.delay_probability:
            self.stats["delayed"] += 1
            delay += faults.delay_s
        if delay > 0:
            time.sleep(delay)
        if out:
            os.write(self.master, bytes(out))

    def serve(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Answer the bus until :meth:`stop`; ``on_ready(port)`` is called once the port exists."""
        if on_ready is not None:
            on_ready(self.port)
        buffer = bytearray()
        silent_after = self.reality.faults.silent_after_s
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self.master], [], [], _IDLE_S)
                now = self.now()
                self.arm.advance_to(now)
                self.bus.tick(now)
                if not readable:
                    continue
                data = os.read(self.master, 4096)
                if silent_after is not None and now >= silent_after:
                    continue  # the link is cut: nothing reaches the servos, nothing comes back
                buffer.extend(data)
                replies = self.bus.feed(buffer, now)
                if replies:
                    self._send(replies)
                if self._journal is not None:
                    self._journal.flush()
        finally:
            self.close()

    def start_thread(self) -> threading.Thread:
        """Serve in a daemon thread (tests of the protocol itself; deployments use a separate process)."""
        thread = threading.Thread(target=self.serve, name="bus-emulator", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self.slave = -1
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.arm.close()
