"""Privileged task features of the torch trial envs (for a critic-only ``task`` key)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.envs import BernoulliBanditVecEnv, TabularMDPVecEnv
from policies.spaces import OBS_KEY, make_spec


def _brute_force_q(p: np.ndarray, r: np.ndarray, steps: int) -> np.ndarray:
    """Q with ``steps`` to go for one MDP, by recursion over (state, steps) without vectorisation."""
    S, A = r.shape
    value = np.zeros(S)
    for _ in range(steps):
        q = np.array([[r[s, a] + sum(p[s, a, t] * value[t] for t in range(S)) for a in range(A)] for s in range(S)])
        value = q.max(1)
    return q


def test_mdp_task_features_are_the_true_optimal_q_and_the_time_left():
    env = TabularMDPVecEnv(3, n=2, num_states=4, num_actions=3, horizon=3, seed=5, privileged=True)
    obs = env.reset()
    assert set(obs) == {OBS_KEY, "task"} and obs["task"].shape == (3, 6)
    p, r = env.transitions[1].numpy(), env.reward_means[1].numpy()
    np.testing.assert_allclose(obs["task"][1, :3].numpy(), _brute_force_q(p, r, 3)[0], rtol=1e-5)
    assert obs["task"][1, 3].item() == pytest.approx(_brute_force_q(p, r, 3)[0].max(), rel=1e-5)
    left = [(obs["task"][0, 4].item(), obs["task"][0, 5].item())]
    for _ in range(3):
        step = env.step(torch.zeros(3, dtype=torch.long))
        left.append((step.obs["task"][0, 4].item(), step.obs["task"][0, 5].item()))
    # episode fraction left: 3/3, 2/3, 1/3, then a new episode; trial fraction left counts down over 6 steps
    np.testing.assert_allclose(left, [(1, 1), (2 / 3, 5 / 6), (1 / 3, 4 / 6), (1, 3 / 6)], rtol=1e-6)
    s = int(env.state[2])
    np.testing.assert_allclose(step.obs["task"][2, :3].numpy(),
                               _brute_force_q(env.transitions[2].numpy(), env.reward_means[2].numpy(), 3)[s],
                               rtol=1e-5)


def test_bandit_task_features_and_the_plain_env_is_unchanged():
    env = BernoulliBanditVecEnv(4, k=3, n=5, seed=0, privileged=True)
    obs = env.reset()
    torch.testing.assert_close(obs["task"][:, :3], env.probs)
    torch.testing.assert_close(obs["task"][:, 3], env.probs.max(1).values)
    assert obs["task"][:, 4].tolist() == [1.0] * 4
    assert env.step(torch.zeros(4, dtype=torch.long)).obs["task"][:, 4].tolist() == pytest.approx([0.8] * 4)
    spec = make_spec(env.observation_space, env.action_space)
    assert [part.key for part in spec.obs_parts] == [OBS_KEY, "task"]
    plain = BernoulliBanditVecEnv(4, k=3, n=5, seed=0)
    assert set(plain.reset()) == {OBS_KEY} and plain.observation_space.shape == (1,)
    torch.testing.assert_close(plain.probs, env.probs)  # the same trials with or without the features
