"""The emulated condition (a Dynamixel emulator process behind the real SDK): a policy that raises or returns NaN
is safe-stopped in every episode, the trip names the cause, and the evaluation ends normally with the episodes
counted as failures."""
from __future__ import annotations

import numpy as np
import pytest

from sim2real.deploy.log import read_log
from sim2real.evaluation.emulated import run_emulated
from sim2real.launch import resolve
from sim2real.agents import StatelessPolicy


class BrokenPolicy(StatelessPolicy):
    """A batch policy whose every call fails: it raises, or returns NaN."""

    def __init__(self, fault: str) -> None:
        self.fault, self.calls = fault, 0

    def act_batch(self, observations):
        self.calls += 1
        if self.fault == "raise":
            raise ValueError("Expected parameter loc of Normal to satisfy the constraint Real()")
        return np.full((len(observations), 3), np.nan)

    def goal_estimates(self):
        return None


@pytest.mark.parametrize("fault, kind, words", [("raise", "error", "ValueError: Expected parameter loc"),
                                                ("nan", "policy", "non-finite action")])
def test_a_failing_policy_is_safe_stopped_in_each_emulated_episode(fault, kind, words, tmp_path):
    config = resolve("launch/so101_reach.yaml")
    policy = BrokenPolicy(fault)
    episodes, facts = run_emulated(policy, config, 2, seed=5, workdir=str(tmp_path))
    assert [e.success for e in episodes] == [False, False] and policy.calls == 2  # the warm-up call of each
    assert [t["episode"] for t in facts["trips"]] == [0, 1]
    for i, trip in enumerate(facts["trips"]):
        assert trip["kind"] == kind and words in trip["reason"] and trip["safe_stop_error"] is None
        records = read_log(str(tmp_path / f"deploy_log_{i:03d}.jsonl"))
        assert records[-1]["type"] == "summary" and records[-1]["stopped"]["kind"] == kind
        assert not [r for r in records if r["type"] == "step"]
