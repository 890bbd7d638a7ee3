"""What the evaluator drives: a batch of observations in, a batch of actions out (optionally a goal estimate)."""
from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from sim2real.errors import UserError


class EvalPolicy(Protocol):
    def act_batch(self, observations: list[dict[str, np.ndarray]]) -> np.ndarray: ...

    def goal_estimates(self) -> np.ndarray | None:
        """World-frame goal positions (m) the policy perceived for the last batch, or None (state policies)."""


class Sb3EvalPolicy:
    """A stable-baselines3 model acting deterministically on stacked dict observations."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def act_batch(self, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
        stacked = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
        actions, _ = self.model.predict(stacked, deterministic=True)
        return np.asarray(actions)

    def goal_estimates(self) -> np.ndarray | None:
        return None


def load_eval_policy(path: str, config: dict[str, Any] | None) -> tuple[EvalPolicy, dict[str, Any]]:
    """(policy, resolved launch config) for a run directory, an SB3 ``.zip`` with ``config``, or a vision pipeline
    folder (``pipeline.json``, see :mod:`sim2real.vision.pipeline`)."""
    if os.path.isfile(os.path.join(path, "pipeline.json")):
        from sim2real.vision.pipeline import load_pipeline

        return load_pipeline(path, config)
    from sim2real.deploy.policies import Sb3Policy, load_policy

    policy, config = load_policy(path, config)
    if not isinstance(policy, Sb3Policy):
        raise UserError(f"{path}: sim2real eval takes stable-baselines3 runs and vision pipelines, "
                        "not RL² exports (their recurrent state spans a trial)")
    return Sb3EvalPolicy(policy.model), config
