"""A tiny SO-101 Reach run (SAC + HER, 300 steps) shared by the evaluation tests; quality does not matter here."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> str:
    from sim2real.launch import resolve
    from sim2real.train import train

    root = tmp_path_factory.mktemp("eval_run")
    config = resolve("launch/demo_so101_reach.yaml", [f"output_dir={root}", "budget.total_timesteps=300",
                                                      "eval.every_steps=300", "eval.episodes=2",
                                                      "checkpoint.every_steps=300", "algo.learning_starts=100"])
    return train(config, run_dir=str(root / "run"), progress=False)
