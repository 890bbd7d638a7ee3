"""Bernoulli multi-armed bandits as a torch-vectorized trial environment.

One trial = ``n`` one-step episodes (pulls) in one bandit with arm probabilities p ~ U(0, 1)^k.
All envs run in lock-step, so every trial has the same length and resets happen together.
"""
from __future__ import annotations

import torch
from gymnasium import spaces

from policies.envs.base import LockstepTrialEnv
from policies.vec import TrialStep


class BernoulliBanditVecEnv(LockstepTrialEnv):
    """``num_envs`` bandits with ``k`` arms and ``n`` pulls per trial.

    Observation: a constant zero of shape (1,) (all information comes through the RL² previous
    action/reward inputs). Reward: 1 with probability p[action], else 0. Every step ends an episode.
    ``probs`` (num_envs, k) holds the current arm probabilities. Privileged task features (``privileged``):
    the arm probabilities, the best one, and the fraction of pulls left, (k + 2,).
    """

    def __init__(self, num_envs: int, k: int, n: int, seed: int | None = None, privileged: bool = False) -> None:
        self.num_envs, self.k, self.n = int(num_envs), int(k), int(n)
        self.action_space = spaces.Discrete(self.k)
        super().__init__(seed, spaces.Box(0.0, 1.0, (1,)), self.k + 2, privileged)
        self.probs = torch.zeros(self.num_envs, self.k)

    def _obs(self) -> torch.Tensor:
        return torch.zeros(self.num_envs, 1)

    def _task_features(self) -> torch.Tensor:
        left = torch.full((self.num_envs, 1), (self.n - self.t) / self.n)
        return torch.cat([self.probs, self.probs.max(1, keepdim=True).values, left], 1)

    def sample_trials(self) -> None:
        """Draw new arm probabilities for every env."""
        self.probs = torch.rand(self.num_envs, self.k, generator=self.gen)
        self.t = 0

    def step(self, action: torch.Tensor) -> TrialStep:
        p = self.probs.gather(1, action.long().view(-1, 1)).squeeze(1)
        reward = (torch.rand(self.num_envs, generator=self.gen) < p).float()
        self.t += 1
        end = torch.full((self.num_envs,), float(self.t >= self.n))
        if self.t >= self.n:
            self.sample_trials()
        return TrialStep(self.observe(), reward, torch.ones(self.num_envs), end, torch.zeros(self.num_envs))
