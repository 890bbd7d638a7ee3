"""Random tabular MDPs (Duan et al. 2016) as a torch-vectorized trial environment.

Each trial samples an MDP: transitions P(·|s,a) ~ Dirichlet(1), mean rewards μ(s,a) ~ N(1, 1);
a step's reward is N(μ(s,a), 1). Episodes last ``horizon`` steps and start in state 0 (our choice;
the paper does not state the initial distribution); a trial is ``n`` episodes.
"""
from __future__ import annotations

import torch
from gymnasium import spaces

from policies.envs.base import LockstepTrialEnv
from policies.vec import TrialStep


def plan(p: torch.Tensor, r: torch.Tensor, horizon: int) -> list[torch.Tensor]:
    """Finite-horizon value iteration on MDPs p (N, S, A, S), r (N, S, A).

    Returns ``q`` with ``q[h]`` = Q-values (N, S, A) with h steps to go, for h = 1..horizon (q[0] unused).
    """
    v = torch.zeros(p.shape[:2])
    qs = [torch.zeros_like(r)]
    for _ in range(horizon):
        q = r + torch.einsum("nsat,nt->nsa", p, v)
        v = q.max(-1).values
        qs.append(q)
    return qs


class TabularMDPVecEnv(LockstepTrialEnv):
    """``num_envs`` random MDPs with ``num_states`` states, ``num_actions`` actions.

    Observation: one-hot of the current state, shape (num_states,). Attributes ``transitions``
    (N, S, A, S), ``reward_means`` (N, S, A) and ``state`` (N,) describe the current MDPs; ``reached_state`` (N,) is the
    state the last step reached, before an episode reset.

    Privileged task features (``privileged``), (num_actions + 3,): the optimal finite-horizon Q-values of the true MDP
    in the current state with the episode's remaining steps, the optimal value of a whole episode, and the fractions
    of the episode and of the trial left.
    """

    def __init__(self, num_envs: int, n: int, num_states: int = 10, num_actions: int = 5, horizon: int = 10,
                 seed: int | None = None, privileged: bool = False) -> None:
        self.num_envs, self.n, self.S, self.A, self.H = int(num_envs), int(n), num_states, num_actions, horizon
        self.action_space = spaces.Discrete(num_actions)
        super().__init__(seed, spaces.Box(0.0, 1.0, (num_states,)), num_actions + 3, privileged)
        self.state = torch.zeros(self.num_envs, dtype=torch.long)

    def _obs(self) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.state, self.S).float()

    def _task_features(self) -> torch.Tensor:
        steps_left = self.H - self.t % self.H
        idx = torch.arange(self.num_envs)
        q_now = self._q_star[idx, steps_left - 1, self.state]
        n = self.num_envs
        return torch.cat([q_now, self._episode_value, torch.full((n, 1), steps_left / self.H),
                          torch.full((n, 1), (self.n * self.H - self.t) / (self.n * self.H))], 1)

    def sample_trials(self) -> None:
        """Draw a new MDP for every env and put it in state 0."""
        # Dirichlet(1) = normalised Exp(1) draws (taken from self.gen, which torch's Dirichlet cannot use).
        shape = (self.num_envs, self.S, self.A, self.S)
        gamma = -torch.log(torch.rand(shape, generator=self.gen).clamp_min(1e-12))
        self.transitions = gamma / gamma.sum(-1, keepdim=True)
        self.reward_means = 1.0 + torch.randn(self.num_envs, self.S, self.A, generator=self.gen)
        self.state = torch.zeros(self.num_envs, dtype=torch.long)
        self.t = 0
        if self.privileged:
            self._q_star = torch.stack(plan(self.transitions, self.reward_means, self.H)[1:], 1)  # (N, H, S, A)
            self._episode_value = self._q_star[:, -1, 0].max(-1, keepdim=True).values  # (N, 1)

    def step(self, action: torch.Tensor) -> TrialStep:
        idx = torch.arange(self.num_envs)
        a = action.long().view(-1)
        mean = self.reward_means[idx, self.state, a]
        reward = mean + torch.randn(self.num_envs, generator=self.gen)
        probs = self.transitions[idx, self.state, a]
        self.state = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
        self.reached_state = self.state.clone()  # before any episode/trial reset (for baselines' posteriors)
        self.t += 1
        episode_end = self.t % self.H == 0
        trial_end = self.t >= self.n * self.H
        if trial_end:
            self.sample_trials()
        elif episode_end:
            self.state.zero_()
        n = self.num_envs
        return TrialStep(self.observe(), reward, torch.full((n,), float(episode_end)),
                         torch.full((n,), float(trial_end)), torch.zeros(n))
