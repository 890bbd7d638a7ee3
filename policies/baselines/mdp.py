"""Tabular-MDP baselines for :class:`~policies.envs.TabularMDPVecEnv`, vectorized over trials.

Posterior (conjugate, matching the env's generative model): transitions Dirichlet(1 + counts);
mean rewards N(1, 1) prior with known unit noise, so the posterior is N((1 + Σr)/(1 + m), 1/(1 + m))
after m visits of (s, a). Plans are finite-horizon value iteration over the rest of the episode.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from policies.envs.tabular_mdp import TabularMDPVecEnv, plan

MDPBaseline = Literal["random", "greedy", "epsilon_greedy", "psrl"]


class _Posterior:
    def __init__(self, n: int, S: int, A: int) -> None:
        self.counts = torch.zeros(n, S, A, S)
        self.visits = torch.zeros(n, S, A)
        self.reward_sum = torch.zeros(n, S, A)

    def update(self, s: torch.Tensor, a: torch.Tensor, r: torch.Tensor, s_next: torch.Tensor) -> None:
        idx = torch.arange(len(s))
        self.counts[idx, s, a, s_next] += 1
        self.visits[idx, s, a] += 1
        self.reward_sum[idx, s, a] += r

    def mean(self) -> tuple[torch.Tensor, torch.Tensor]:
        p = (1 + self.counts) / (1 + self.counts).sum(-1, keepdim=True)
        return p, (1 + self.reward_sum) / (1 + self.visits)

    def sample(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        # Dirichlet(α) via Gamma(α) draws; α ≥ 1 here. torch's Gamma cannot take a generator, so use
        # Marsaglia–Tsang with generator-driven normals/uniforms.
        p = _dirichlet(1 + self.counts, gen)
        mu = (1 + self.reward_sum) / (1 + self.visits)
        return p, mu + torch.randn(mu.shape, generator=gen) / torch.sqrt(1 + self.visits)


def _gamma_ge1(alpha: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gamma(α, 1) samples for α ≥ 1 (Marsaglia & Tsang 2000), repeated until all accept."""
    d = alpha - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.zeros_like(alpha)
    todo = torch.ones_like(alpha, dtype=torch.bool)
    while bool(todo.any()):
        x = torch.randn(alpha.shape, generator=gen)
        v = (1 + c * x) ** 3
        u = torch.rand(alpha.shape, generator=gen)
        ok = (v > 0) & (torch.log(u.clamp_min(1e-30)) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-30)))
        take = ok & todo
        out[take] = (d * v)[take]
        todo &= ~ok
    return out


def _dirichlet(alpha: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    g = _gamma_ge1(alpha, gen)
    return g / g.sum(-1, keepdim=True)


def play_mdp_baseline(name: MDPBaseline, env: TabularMDPVecEnv, gen: torch.Generator,
                      epsilon: float = 0.1) -> np.ndarray:
    """Play one trial in each of ``env``'s current MDPs (just reset); returns each episode's reward (trials, n).

    ``greedy`` replans on the posterior-mean MDP every step; ``epsilon_greedy`` does the same but acts
    uniformly at random with probability ``epsilon``; ``psrl`` samples one MDP from the posterior at
    each episode start and follows its optimal policy for the episode. ``gen`` drives the baseline's own draws.
    """
    if name not in ("random", "greedy", "epsilon_greedy", "psrl"):
        raise ValueError(f"baseline: must be random, greedy, epsilon_greedy or psrl, got {name!r}")
    if env.t != 0:
        raise ValueError(f"env: must be at the start of its trials (just reset), it is at step {env.t}")
    num_trials, horizon, num_actions = env.num_envs, env.H, env.A
    post = _Posterior(num_trials, env.S, num_actions)
    episode_rewards = torch.zeros(num_trials, env.n, dtype=torch.float64)
    idx = torch.arange(num_trials)
    psrl_q: list[torch.Tensor] = []
    for t in range(env.n * horizon):
        steps_left = horizon - t % horizon
        s = env.state.clone()
        if name == "random":
            a = torch.randint(0, num_actions, (num_trials,), generator=gen)
        else:
            if name == "psrl":
                if steps_left == horizon:
                    psrl_q = plan(*post.sample(gen), horizon)
                q = psrl_q[steps_left]
            else:
                q = plan(*post.mean(), steps_left)[steps_left]
            a = (q[idx, s] + torch.rand(num_trials, num_actions, generator=gen) * 1e-6).argmax(-1)
            if name == "epsilon_greedy":
                explore = torch.rand(num_trials, generator=gen) < epsilon
                a = torch.where(explore, torch.randint(0, num_actions, (num_trials,), generator=gen), a)
        step = env.step(a)
        episode_rewards[:, t // horizon] += step.reward.double()
        post.update(s, a, step.reward, env.reached_state)
    return episode_rewards.numpy()


def run_mdp_baseline(name: MDPBaseline, n: int, num_trials: int, seed: int = 0, epsilon: float = 0.1,
                     num_states: int = 10, num_actions: int = 5, horizon: int = 10) -> np.ndarray:
    """Total reward of each of ``num_trials`` trials of ``n`` episodes in fresh MDPs (env seed ``seed``); shape
    (num_trials,). The baselines are described at :func:`play_mdp_baseline`."""
    env = TabularMDPVecEnv(num_trials, n, num_states, num_actions, horizon, seed=seed)
    env.reset()
    gen = torch.Generator().manual_seed(seed + 1)
    return play_mdp_baseline(name, env, gen, epsilon).sum(axis=1)
