"""Evaluate an RL² policy: total (undiscounted) reward per trial."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from policies.actor_critic import RecurrentActorCritic
from policies.spaces import first_prev_action, prev_action_input, raw_to_env_action
from policies.vec import TrialStep, TrialVecEnv


@torch.no_grad()
def evaluate_policy(model: RecurrentActorCritic, env: TrialVecEnv, trials_per_env: int = 1,
                    deterministic: bool = False, seed: int | None = None,
                    on_step: Callable[[torch.Tensor, TrialStep], None] | None = None) -> np.ndarray:
    """Run every env for ``trials_per_env`` trials; return the trial returns, shape (num_envs · trials_per_env,).

    Runs the actor alone (what deployment runs), so an asymmetric policy's critic-only observation keys are
    not needed. The hidden state and previous action/reward/done are reset at trial starts only. With
    ``deterministic`` the mode of the action distribution is taken instead of a sample. ``on_step(raw_action,
    step)``, when given, sees every step's raw actions (num_envs, ...) and the env's answer.
    """
    n = env.num_envs
    act = model.spec.action
    obs = env.reset(seed=seed)
    state = model.initial_actor_state(n)
    prev_a, prev_r, prev_d = first_prev_action(n, act), torch.zeros(n), torch.zeros(n)
    running = torch.zeros(n, dtype=torch.float64)
    done_count = torch.zeros(n, dtype=torch.long)
    returns: list[list[float]] = [[] for _ in range(n)]
    while bool((done_count < trials_per_env).any()):
        params, state = model.actor_step(obs, prev_a, prev_r, prev_d, state)
        raw = model.actor_head.mode(params) if deterministic else model.actor_head.sample(params)
        step = env.step(raw_to_env_action(raw, act))
        if on_step is not None:
            on_step(raw, step)
        end = torch.maximum(step.trial_terminated, step.trial_truncated)
        running += step.reward.double()
        keep = 1.0 - end
        state = state * keep.view(1, -1, 1)
        prev_a = prev_action_input(raw, act) * keep.unsqueeze(-1) + first_prev_action(n, act) * end.unsqueeze(-1)
        prev_r, prev_d = step.reward.float() * keep, step.episode_done * keep
        for i in torch.nonzero(end).flatten().tolist():
            if done_count[i] < trials_per_env:
                returns[i].append(float(running[i]))
            done_count[i] += 1
            running[i] = 0.0
        obs = step.obs
    return np.array([r for env_returns in returns for r in env_returns])
