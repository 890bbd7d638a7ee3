"""Shared plumbing of the lock-step torch trial environments."""
from __future__ import annotations

import torch


class LockstepTrialEnv:
    """Base for torch envs whose trials all start together; subclasses define ``sample_trials`` and ``_obs``."""

    num_envs: int

    def __init__(self, seed: int | None) -> None:
        self.gen = torch.Generator().manual_seed(0 if seed is None else seed)
        self.t = 0

    def sample_trials(self) -> None:
        raise NotImplementedError

    def _obs(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Start new trials in every env (re-seeding the env's generator when ``seed`` is given)."""
        if seed is not None:
            self.gen.manual_seed(seed)
        self.sample_trials()
        return self._obs()

    def close(self) -> None:
        """Nothing to release."""
