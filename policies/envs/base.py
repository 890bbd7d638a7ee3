"""Shared plumbing of the lock-step torch trial environments."""
from __future__ import annotations

import abc

import torch


class LockstepTrialEnv(abc.ABC):
    """Base for torch envs whose trials all start together; subclasses define ``sample_trials`` and ``_obs``."""

    num_envs: int

    def __init__(self, seed: int | None) -> None:
        self.gen = torch.Generator().manual_seed(0 if seed is None else seed)
        self.t = 0

    @abc.abstractmethod
    def sample_trials(self) -> None:
        """Draw a new task for every env (all trials start together)."""

    @abc.abstractmethod
    def _obs(self) -> dict[str, torch.Tensor]:
        """The current observation of every env."""

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Start new trials in every env (re-seeding the env's generator when ``seed`` is given)."""
        if seed is not None:
            self.gen.manual_seed(seed)
        self.sample_trials()
        return self._obs()

    def close(self) -> None:
        """Nothing to release."""
