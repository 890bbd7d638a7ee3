"""Emulators as separate processes (as in real use), started and stopped by the tests."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest
import yaml


class Emulator:
    """``sim2real emulate`` in a subprocess; ``port`` is the pseudo-terminal to open."""

    def __init__(self, protocol: str, reality: str | None = None, journal: str | None = None) -> None:
        args = [sys.executable, "-m", "sim2real.cli", "emulate", protocol]
        args += ["--reality", reality] if reality else []
        args += ["--journal", journal] if journal else []
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert " on /dev/" in line, f"emulator did not start: {line!r} {self.process.stderr.read()}"
        self.port = line.split()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def emulator(tmp_path) -> Iterator:
    """Factory: ``emulator(protocol, **reality_overrides)``; every emulator is stopped after the test."""
    started: list[Emulator] = []

    def start(protocol: str, journal: str | None = None, **reality) -> Emulator:
        path = None
        if reality:
            path = str(tmp_path / f"reality-{len(started)}.yaml")
            with open(path, "w") as handle:
                yaml.safe_dump(reality, handle)
        started.append(Emulator(protocol, path, journal))
        return started[-1]

    yield start
    for em in started:
        em.stop()


LAB = os.path.join(os.path.dirname(__file__), "..", "..", "launch", "realities", "lab.yaml")
