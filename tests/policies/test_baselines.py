"""Bandit and tabular-MDP baselines against known values and independent checks."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch

from policies.baselines.bandits import (bayes_optimal_value, gittins_indices, gittins_policy, gittins_table,
                                        random_policy, run_bandit_policy)
from policies.baselines.mdp import _dirichlet, play_mdp_baseline, run_mdp_baseline
from policies.envs.tabular_mdp import TabularMDPVecEnv, plan


@pytest.mark.parametrize("gamma,expected", [(0.9, 0.7029), (0.99, 0.8699)])
def test_gittins_index_beta11_known_values(gamma, expected):
    """Published values (Gittins, Glazebrook & Weber 2011, table 8.1): 0.7029 and 0.8699."""
    assert gittins_indices([1], [1], gamma)[0] == pytest.approx(expected, abs=5e-4)


def test_gittins_index_monotone_and_above_mean():
    table = gittins_table(6, 0.9)
    s, f = np.meshgrid(np.arange(7), np.arange(7), indexing="ij")
    ok = s + f <= 6
    assert np.all(table[ok] > ((s + 1) / (s + f + 2))[ok])
    assert np.all(np.diff(table[:, 0][:7]) > 0)  # more successes → higher index
    assert np.all(np.diff(table[0, :][:7]) < 0)  # more failures → lower index


def _brute_force_bayes(n: int, k: int) -> float:
    """Unsorted-state recursion (no symmetry reduction), an independent check of the DP."""

    @lru_cache(maxsize=None)
    def v(state: tuple[int, ...], r: int) -> float:
        if r == 0:
            return 0.0
        best = 0.0
        for j in range(k):
            s, f = state[2 * j], state[2 * j + 1]
            p = (s + 1) / (s + f + 2)
            win = state[:2 * j] + (s + 1, f) + state[2 * j + 2:]
            lose = state[:2 * j] + (s, f + 1) + state[2 * j + 2:]
            best = max(best, p * (1 + v(win, r - 1)) + (1 - p) * v(lose, r - 1))
        return best

    return v((0,) * (2 * k), n)


def test_bayes_optimal_value():
    assert bayes_optimal_value(10, 5) == pytest.approx(6.66, abs=0.01)
    assert bayes_optimal_value(7, 1) == pytest.approx(3.5)  # one arm: n · E[p]
    for n, k in ((4, 2), (5, 3), (3, 5)):
        assert bayes_optimal_value(n, k) == pytest.approx(_brute_force_bayes(n, k), abs=1e-12)


def test_simulated_policies_respect_the_bayes_optimal_bound():
    n, k, trials = 10, 5, 20_000
    bound = bayes_optimal_value(n, k)
    random_ret = run_bandit_policy(random_policy, k, n, trials, seed=1)
    gittins_ret = run_bandit_policy(gittins_policy(gittins_table(n, 0.9)), k, n, trials, seed=1)
    for ret in (random_ret, gittins_ret):
        assert ret.mean() <= bound + 4 * ret.std() / np.sqrt(trials)
    assert abs(random_ret.mean() - n / 2) < 4 * random_ret.std() / np.sqrt(trials)
    assert gittins_ret.mean() > bound - 0.1  # Gittins is near-optimal at n = 10


def test_value_iteration_on_a_hand_made_mdp():
    # two states; action 0 stays (reward 1), action 1 moves to the other state (reward 0 from s0, 3 from s1)
    p = torch.zeros(1, 2, 2, 2)
    p[0, 0, 0, 0] = p[0, 1, 0, 1] = 1
    p[0, 0, 1, 1] = p[0, 1, 1, 0] = 1
    r = torch.tensor([[[1.0, 0.0], [1.0, 3.0]]])
    q = plan(p, r, 3)
    # from s0 with 3 steps: move (0), then move back (3), then move (0) = 3; or stay-stay-stay = 3;
    # or move (0), stay (1), move (3) = 4 ← best
    assert q[3][0, 0].max().item() == pytest.approx(4.0)
    assert q[1][0, 1].tolist() == [1.0, 3.0]


def test_dirichlet_sampler_mean():
    alpha = torch.tensor([1.0, 2.0, 5.0]).expand(20_000, 3)
    draws = _dirichlet(alpha, torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws.mean(0), torch.tensor([0.125, 0.25, 0.625]), atol=0.01, rtol=0)


def test_mdp_baselines_beat_random():
    rand = run_mdp_baseline("random", 5, 300, seed=0)
    assert abs(rand.mean() - 50.0) < 4 * rand.std() / np.sqrt(300)  # E[mean reward] = 1 per step
    for name in ("greedy", "epsilon_greedy", "psrl"):
        ret = run_mdp_baseline(name, 5, 300, seed=0)
        se = np.hypot(ret.std(), rand.std()) / np.sqrt(300)
        assert ret.mean() > rand.mean() + 4 * se, name


def test_mdp_planners_improve_within_a_trial():
    """One row of per-episode returns per trial; the learning planners earn more late in a trial than early."""
    env = TabularMDPVecEnv(300, 5, seed=0)
    env.reset()
    episodes = play_mdp_baseline("random", env, torch.Generator().manual_seed(1))
    assert episodes.shape == (300, 5)
    with pytest.raises(ValueError, match="start of its trials"):  # the 5-episode trial above ended and restarted,
        env.step(torch.zeros(300, dtype=torch.long))               # so one more step puts it mid-trial
        play_mdp_baseline("greedy", env, torch.Generator())
    for name in ("greedy", "psrl"):
        env.reset(seed=0)
        episodes = play_mdp_baseline(name, env, torch.Generator().manual_seed(1))
        gain = episodes[:, -1] - episodes[:, 0]
        assert gain.mean() > 4 * gain.std() / np.sqrt(len(gain)), name
