"""Shared plumbing of the lock-step torch trial environments."""
from __future__ import annotations

import abc

import numpy as np
import torch
from gymnasium import spaces

from policies.spaces import OBS_KEY

TASK_KEY = "task"  # privileged task features (critic only: ``network.critic_keys: [task]``)


class LockstepTrialEnv(abc.ABC):
    """Base for torch envs whose trials all start together.

    Subclasses define ``sample_trials``, ``_obs`` (what the agent sees) and ``_task_features`` (what a privileged
    critic may see: the sampled task's parameters and the time left in the trial). With ``privileged`` the
    observation is a dict ``{"obs": ..., "task": ...}``; the actor must not be given ``task``.
    """

    num_envs: int

    def __init__(self, seed: int | None, agent_space: spaces.Box, task_dim: int, privileged: bool = False) -> None:
        self.gen = torch.Generator().manual_seed(0 if seed is None else seed)
        self.t = 0
        self.privileged = bool(privileged)
        self.observation_space: spaces.Space = agent_space
        if self.privileged:
            task_space = spaces.Box(-np.inf, np.inf, (task_dim,), dtype=np.float32)
            self.observation_space = spaces.Dict({OBS_KEY: agent_space, TASK_KEY: task_space})

    @abc.abstractmethod
    def sample_trials(self) -> None:
        """Draw a new task for every env (all trials start together)."""

    @abc.abstractmethod
    def _obs(self) -> torch.Tensor:
        """The current agent observation of every env, (num_envs, ...)."""

    @abc.abstractmethod
    def _task_features(self) -> torch.Tensor:
        """Privileged features of every env's task and trial time, (num_envs, task_dim)."""

    def observe(self) -> dict[str, torch.Tensor]:
        """The observation dict of every env (with ``task`` only when privileged)."""
        obs = {OBS_KEY: self._obs()}
        if self.privileged:
            obs[TASK_KEY] = self._task_features()
        return obs

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Start new trials in every env (re-seeding the env's generator when ``seed`` is given)."""
        if seed is not None:
            self.gen.manual_seed(seed)
        self.sample_trials()
        return self.observe()

    def close(self) -> None:
        """Nothing to release."""
