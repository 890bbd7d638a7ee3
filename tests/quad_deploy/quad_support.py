"""Test support for the quadcopter deployment tests: emulator processes, free UDP ports, a fault-injecting UDP relay,
the hover policy with test hooks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np

from sim2real.emulators.process import stop_process

DATA = os.path.join(os.path.dirname(__file__), "data")
HOVER_POLICY = os.path.join(DATA, "crazyflie_hover_ppo")
REALITIES = os.path.join(os.path.dirname(__file__), "..", "..", "launch", "realities")


def free_udp_port(count: int = 1, candidates: range | None = None) -> int:
    """A UDP port on 127.0.0.1 with ``count - 1`` free ports after it (checked by binding them), from
    ``candidates`` if given, else any."""
    for attempt in (candidates or range(50)):
        if candidates is None:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
            probe.close()
        else:
            base = attempt
        if base + count > 65535:
            continue
        held = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", base + i))
                held.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no free UDP port range of {count} in {candidates or 'the ephemeral ports'}")


class QuadEmulator:
    """``sim2real emulate crazyflie|mavlink`` in a subprocess; ``address`` is its printed URI / address."""

    def __init__(self, kind: str, reality: str | None, journal: str | None, count: int = 1,
                 candidates: range | None = None) -> None:
        self.port = free_udp_port(count, candidates)
        args = [sys.executable, "-m", "sim2real.cli", "emulate", kind, "--port", str(self.port)]
        args += ["--reality", reality] if reality else []
        args += ["--journal", journal] if journal else []
        args += ["--count", str(count)] if count != 1 else []
        self.journal = journal
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert "emulator" in line and " on " in line, f"emulator did not start: {line!r} {self.process.stderr.read()}"
        self.addresses = line.split(" on ", 1)[1].split()

    @property
    def uri(self) -> str:
        return self.addresses[0]

    @property
    def url(self) -> str:
        return f"udpout:127.0.0.1:{self.port}"

    def records(self) -> list[dict]:
        import json

        with open(self.journal, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def stop(self) -> str:
        """Stop (SIGTERM) and return what it wrote to stderr."""
        stop_process(self.process)
        return self.process.stderr.read()

    def kill(self) -> None:
        """The vehicle's link dies at once (the process is killed)."""
        self.process.kill()
        self.process.wait(timeout=10)


class UdpProxy:
    """A UDP relay between a client library and an emulator, for faults timed from the test: ``cut_up`` drops
    client → vehicle datagrams, ``cut_down`` vehicle → client. Listens on ``port``; serves in a daemon thread."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target = ("127.0.0.1", target_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self.cut_up = self.cut_down = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import select

        while not self._stop.is_set():
            readable, _, _ = select.select([self.front, self.back], [], [], 0.05)
            for sock in readable:
                try:
                    data, address = sock.recvfrom(4096)
                except OSError:
                    continue
                if sock is self.front:
                    self.client = address
                    if not self.cut_up:
                        self.back.sendto(data, self.target)
                elif self.client is not None and not self.cut_down:
                    self.front.sendto(data, self.client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.front.close()
        self.back.close()


class Scripted:
    """The hover policy with test hooks: ``nan_steps`` get a NaN action, ``at[step]()`` runs before that step
    (steps count from the flight's first policy step: the loop's warm-up call comes before ``reset_trial``)."""

    def __init__(self, policy, nan_steps=(), at=None) -> None:
        self.policy, self.nan_steps, self.at, self.step = policy, set(nan_steps), at or {}, 0

    def reset_trial(self) -> None:
        self.policy.reset_trial()
        self.step = 0

    def act(self, obs):
        if self.step in self.at:
            self.at[self.step]()
        action = np.full(4, np.nan) if self.step in self.nan_steps else self.policy.act(obs)
        self.step += 1
        return action

    def observe(self, reward, terminated, truncated) -> None:
        self.policy.observe(reward, terminated, truncated)
