"""The README's "Python API" code blocks run as written (budgets cut from 20,000 to 150 steps)."""
from __future__ import annotations

import os
import re

import numpy as np

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
SECTION = "### Python API (issue 21)"
BUDGET, TINY = "total_timesteps=20_000", "total_timesteps=150"


def python_blocks() -> list[str]:
    """The ```python blocks of the README's Python API section."""
    text = open(README, encoding="utf-8").read()
    start = text.index(SECTION)
    end = text.index("\n### ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def test_readme_python_api_blocks_run(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) == 2 and all(block.count(BUDGET) == 1 for block in blocks)
    monkeypatch.chdir(tmp_path)  # the second block writes runs/python_api here
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace(BUDGET, TINY), README, "exec"), namespace)
    assert namespace["model"].num_timesteps == 150 and namespace["teacher"].episodes >= 2  # the curriculum ran
    names = {p.name for p in namespace["teacher"].space}
    assert {"dynamics.actuator.strength", "dynamics.link.mass", "sensing.obs.noise_std"} <= names
    assert (tmp_path / "runs" / "python_api" / "final" / "model.zip").is_file()
    env = namespace["env"]
    obs, _ = env.reset(seed=1)
    action = namespace["policy"].act(obs)
    assert action.shape == env.action_space.shape and np.all(np.abs(action) <= 1.0)
