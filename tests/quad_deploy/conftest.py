"""Fixtures: quadcopter emulators as separate processes (as in real use) and the shipped hover policy."""
from __future__ import annotations

import os
from typing import Iterator

import pytest
import yaml
from quad_support import HOVER_POLICY, QuadEmulator


@pytest.fixture
def quad_emulator(tmp_path) -> Iterator:
    """Factory ``quad_emulator(kind, count=1, **reality)``; every emulator is stopped after the test."""
    started: list[QuadEmulator] = []

    def start(kind: str, count: int = 1, candidates: range | None = None, **reality) -> QuadEmulator:
        path = None
        if reality:
            path = str(tmp_path / f"reality-{len(started)}.yaml")
            with open(path, "w") as handle:
                yaml.safe_dump(reality, handle)
        started.append(QuadEmulator(kind, path, str(tmp_path / f"journal-{len(started)}.jsonl"), count,
                                    candidates))
        return started[-1]

    yield start
    for em in started:
        em.stop()


@pytest.fixture(scope="session")
def hover_policy():
    """(single-env policy, resolved launch config) of the shipped Crazyflie hover policy (PPO, CTBR, 400k steps)."""
    from sim2real.policy_files import load_policy
    from sim2real.launch import resolve

    config = resolve(os.path.join(HOVER_POLICY, "launch.yaml"))
    return load_policy(os.path.join(HOVER_POLICY, "model.zip"), config)
