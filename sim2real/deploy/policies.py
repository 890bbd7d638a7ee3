"""Policies a deployment can run: stable-baselines3 checkpoints and exported recurrent (RL²) policies.

All expose ``reset_trial()`` (start of a deployment: recurrent state cleared once), ``act(obs) -> action``,
``observe(reward, episode_done)`` (RL² inputs; recurrent state is kept across the episodes of a trial) and
``goal_estimate()`` (the goal a vision policy perceived at its last ``act``, m, world frame; None for the others).
A vision pipeline folder (``pipeline.json``) deploys as a camera policy: it acts on ``{"image", "proprio"}``.
"""
from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from sim2real.errors import UserError


class DeployPolicy(Protocol):
    def reset_trial(self) -> None: ...
    def act(self, obs: Any) -> np.ndarray: ...
    def observe(self, reward: float, episode_done: bool) -> None: ...
    def goal_estimate(self) -> np.ndarray | None: ...


class Sb3Policy:
    """A stable-baselines3 model acting deterministically (stateless: trial and reward inputs are ignored)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def reset_trial(self) -> None:
        return None

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.model.predict(obs, deterministic=True)[0], dtype=float)

    def observe(self, reward: float, episode_done: bool) -> None:
        return None

    def goal_estimate(self) -> np.ndarray | None:
        return None


class RecurrentPolicy:
    """An exported RL² policy through :class:`policies.runner.PolicyRunner` (hidden state kept across episodes)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def reset_trial(self) -> None:
        self.runner.reset_trial()

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.runner.act(obs), dtype=float)

    def observe(self, reward: float, episode_done: bool) -> None:
        self.runner.observe(reward, episode_done)

    def goal_estimate(self) -> np.ndarray | None:
        return None


class BatchPolicy:
    """A batch policy (:class:`sim2real.evaluation.policy.EvalPolicy`: SB3 models, vision pipelines with their
    perception stage) acting on one observation at a time; sums the rewards the loop reports per episode
    (``returns``)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.returns: list[float] = []
        self._total = 0.0

    def _start_episode(self) -> None:
        if hasattr(self.policy, "start_episodes"):  # a vision pipeline fusing goal estimates per episode
            self.policy.start_episodes(1)

    def reset_trial(self) -> None:
        self.returns, self._total = [], 0.0
        self._start_episode()

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.policy.act_batch([obs])[0], dtype=float)

    def observe(self, reward: float, episode_done: bool) -> None:
        self._total += reward
        if episode_done:
            self.returns.append(self._total)
            self._total = 0.0
            self._start_episode()

    def goal_estimate(self) -> np.ndarray | None:
        estimates = self.policy.goal_estimates()
        return None if estimates is None else np.asarray(estimates[0], dtype=float)


def is_exported(path: str) -> bool:
    """An RL² export folder (``policy.json``) or tensors-only checkpoint (``.pt``)."""
    return path.endswith(".pt") or os.path.isfile(os.path.join(path, "policy.json"))


def _check_algo(model_path: str, config: dict[str, Any]) -> None:
    """A one-line error when the model zip was trained by another algorithm than the launch file's ``algo.name``
    (read from the policy class module the zip records as text, e.g. ``stable_baselines3.sac.policies``)."""
    from sim2real.launch.schema import ALGOS
    from sim2real.sb3_safe_load import read_model_data

    policy_class = read_model_data(model_path).get("policy_class")
    module = policy_class.get("__module__", "") if isinstance(policy_class, dict) else ""
    trained = next((name for name in ALGOS if module.startswith(f"stable_baselines3.{name}.")), None)
    given = f"algo.name {config['algo']['name']}" if config["policy"] == "mlp" else f"policy {config['policy']}"
    if trained is not None and given != f"algo.name {trained}":
        raise UserError(f"--launch: {given}, but {model_path} is a stable-baselines3 {trained} model")


def load_policy(path: str, config: dict[str, Any] | None) -> tuple[DeployPolicy, dict[str, Any]]:
    """(policy, resolved launch config) for a run directory, an SB3 ``.zip`` (needs ``config``), an export or a
    vision pipeline folder."""
    if os.path.isfile(os.path.join(path, "pipeline.json")):
        from sim2real.vision.pipeline import load_pipeline

        pipeline, config = load_pipeline(path, config)
        return BatchPolicy(pipeline), config
    if is_exported(path):
        if config is None:
            raise UserError(f"{path}: an exported policy needs --launch (which task and robot it drives)")
        from policies.errors import PolicyFileError
        from policies.runner import PolicyRunner

        try:
            return RecurrentPolicy(PolicyRunner.load(path)), config
        except PolicyFileError as err:
            raise UserError(str(err)) from None
    from sim2real.launch import recorded_launch, resolve, same_env
    from sim2real.train import load_model, make_env_fn, run_model_path

    if os.path.isdir(path):
        run_config, model_path = run_model_path(path)
        config = same_env(path, run_config, config)
    elif path.endswith(".zip") and os.path.isfile(path):
        if config is None:
            raise UserError(f"{path}: a model file needs --launch (the launch file it was trained with)")
        recorded = recorded_launch(path)
        if recorded is not None:
            config = same_env(path, resolve(recorded), config)
        model_path = path
    else:
        raise UserError(f"{path}: not a run directory, SB3 .zip, .pt checkpoint or export folder")
    _check_algo(model_path, config)
    env = make_env_fn(config, rank=0)()  # HER models bind to an env with the training spaces
    try:
        return Sb3Policy(load_model(config, model_path, env)), config
    finally:
        env.close()
