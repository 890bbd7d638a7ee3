"""Recurrent meta-RL policies (RL², Duan et al. 2016): what acts.

Main entry points:

* :class:`~policies.config.RL2Config` — validated config of the ``policy: rl2`` launch section.
* :class:`~policies.trial.TrialWrapper` — K inner episodes of one sampled env per trial.
* :func:`~policies.ppo.train_rl2` — recurrent PPO with trial-aware hidden state, GAE and BPTT.
* :func:`~policies.export.export_policy` and :class:`~policies.runner.PolicyRunner` — deployment.

Imports torch, numpy and gymnasium only (never pybullet, never :mod:`sim2real`).
"""
from policies.actor_critic import RecurrentActorCritic
from policies.config import NetworkConfig, RL2Config
from policies.errors import ConfigError, PolicyFileError
from policies.export import export_policy
from policies.ppo import TrainResult, train_rl2
from policies.runner import PolicyRunner
from policies.trial import TrialWrapper

__all__ = ["RecurrentActorCritic", "NetworkConfig", "RL2Config", "ConfigError", "PolicyFileError", "export_policy",
           "TrainResult", "train_rl2", "PolicyRunner", "TrialWrapper"]
