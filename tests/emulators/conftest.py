"""Emulators as separate processes (as in real use), started and stopped by the tests."""
from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import pytest
import yaml

from sim2real.emulators.process import stop_process


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
        stop_process(self.process)


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


REACH_LAUNCH = """name: so101_reach_test
env:
  id: sim2real/SO101Reach-v0
algo:
  name: sac
  her: true
  net_arch: [128, 128]
  gamma: 0.9
  batch_size: 128
  learning_starts: 200
n_envs: 1
budget:
  total_timesteps: 4000
eval:
  every_steps: 4000
  episodes: 10
checkpoint:
  every_steps: 100000
seed: 0
"""


@pytest.fixture(scope="session")
def reach_policy(tmp_path_factory) -> str:
    """A SAC + HER Reach policy for the SO-101-class arm, trained once per test session (~1 min)."""
    from sim2real.cli import main
    from sim2real.train import summarize

    root = tmp_path_factory.mktemp("reach")
    launch = root / "launch.yaml"
    launch.write_text(REACH_LAUNCH + f"output_dir: {root}\n")
    run_dir = root / "run"
    assert main(["train", str(launch), "--run-dir", str(run_dir)]) == 0
    assert summarize(str(run_dir / "evaluations.jsonl"))[-1]["success_rate"] >= 0.8
    return str(run_dir)


