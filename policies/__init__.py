"""Recurrent meta-RL policies (RL², Duan et al. 2016): what acts.

Main entry points:

* :class:`~policies.config.RL2Config` — validated config of the ``policy: rl2`` launch section.
* :class:`~policies.trial.TrialWrapper` — K inner episodes of one sampled env per trial.
* :func:`~policies.ppo.train_rl2` — recurrent PPO with trial-aware hidden state, GAE and BPTT.
* :func:`~policies.export.export_policy` and :class:`~policies.runner.PolicyRunner` — deployment.

Imports torch, numpy and gymnasium only (never pybullet, never :mod:`sim2real`).
"""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"RecurrentActorCritic": "actor_critic", "NetworkConfig": "config", "RL2Config": "config",
          "ConfigError": "errors", "PolicyFileError": "errors", "export_policy": "export", "TrainResult": "ppo",
          "train_rl2": "ppo", "PolicyRunner": "runner", "TrialWrapper": "trial"}
__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    """The entry points, imported when first used: running a policy (``policies.runner``) never loads the trainer."""
    if name not in _HOMES:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    return getattr(importlib.import_module(f"policies.{_HOMES[name]}"), name)
