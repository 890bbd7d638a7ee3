"""Bernoulli-bandit baselines, vectorized over trials, with Beta(1, 1) priors on every arm.

Policies see per-arm success/failure counts (N, k) and the step index, and return arms (N,).
Ties are broken uniformly at random. ``bayes_optimal_value`` is exact (dynamic programming), not simulated.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np

BanditPolicy = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]


def _argmax_random_ties(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.random(scores.shape) * 1e-9
    return np.argmax(scores + noise, axis=1)


def random_policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random arm."""
    return rng.integers(0, s.shape[1], size=s.shape[0])


def greedy_policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    """Arm with the highest posterior mean (s + 1) / (s + f + 2)."""
    return _argmax_random_ties((s + 1) / (s + f + 2), rng)


def epsilon_greedy_policy(epsilon: float) -> BanditPolicy:
    """Greedy on the posterior mean, except a uniformly random arm with probability ``epsilon``."""

    def policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        greedy = greedy_policy(s, f, t, rng)
        explore = rng.random(s.shape[0]) < epsilon
        return np.where(explore, rng.integers(0, s.shape[1], size=s.shape[0]), greedy)

    return policy


def thompson_policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    """Thompson sampling: arm with the largest draw from Beta(s + 1, f + 1)."""
    return np.argmax(rng.beta(s + 1, f + 1), axis=1)


def optimistic_thompson_policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    """Optimistic TS (May et al. 2012): draws below the posterior mean are raised to it."""
    return np.argmax(np.maximum(rng.beta(s + 1, f + 1), (s + 1) / (s + f + 2)), axis=1)


def ucb1_policy(c: float = 1.0) -> BanditPolicy:
    """UCB1 on the Beta(1, 1)-smoothed mean: (s+1)/(m+2) + c·sqrt(2 ln(t+1) / (m+1)), m = pulls of the arm.

    The smoothing (instead of "pull every arm once first") keeps UCB1 meaningful when k > n.
    """

    def policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        m = s + f
        return _argmax_random_ties((s + 1) / (m + 2) + c * np.sqrt(2 * math.log(t + 1) / (m + 1)), rng)

    return policy


def _gittins_dp_continue(a: np.ndarray, b: np.ndarray, lam: np.ndarray, gamma: float, horizon: int) -> np.ndarray:
    """For roots Beta(a, b) (arrays (R,)) and retirement rewards ``lam`` (R,) per step, True where
    pulling once more is strictly better than retiring, by backward induction over ``horizon`` pulls.
    Beyond the horizon the arm is valued as if its mean were known: max(λ, p) / (1 − γ)."""
    retire = (lam / (1.0 - gamma))[:, None]
    i = np.arange(horizon + 1)[None, :]
    a_h, b_h = a[:, None] + i, b[:, None] + horizon - i
    value = np.maximum(retire, (a_h / (a_h + b_h)) / (1.0 - gamma))
    cont = None
    for d in range(horizon - 1, -1, -1):
        i = np.arange(d + 1)[None, :]
        a_d, b_d = a[:, None] + i, b[:, None] + d - i
        p = a_d / (a_d + b_d)
        cont = p + gamma * (p * value[:, 1:] + (1.0 - p) * value[:, :-1])
        value = np.maximum(retire, cont)
    assert cont is not None
    return cont[:, 0] > retire[:, 0]


def default_horizon(gamma: float, eps: float = 1e-3) -> int:
    """Pulls after which γ^H < eps; the truncation of the calibration DP."""
    return max(1, math.ceil(math.log(eps) / math.log(gamma)))


def gittins_indices(a: np.ndarray, b: np.ndarray, gamma: float, horizon: int | None = None,
                    iterations: int = 30) -> np.ndarray:
    """Gittins indices (per-step retirement reward, in [0, 1]) of Bernoulli arms with Beta(a, b) posteriors.

    Calibration: bisection on the retirement reward λ, each probe a DP over (successes, failures)
    truncated at ``horizon`` pulls (default :func:`default_horizon`). Vectorized over the roots.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    horizon = default_horizon(gamma) if horizon is None else horizon
    lo, hi = a / (a + b), np.ones_like(a)  # the index is at least the posterior mean
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        cont = _gittins_dp_continue(a, b, mid, gamma, horizon)
        lo, hi = np.where(cont, mid, lo), np.where(cont, hi, mid)
    return 0.5 * (lo + hi)


def gittins_table(max_pulls: int, gamma: float, horizon: int | None = None) -> np.ndarray:
    """Index of Beta(1 + s, 1 + f) for all s + f ≤ max_pulls; shape (max_pulls+1, max_pulls+1), NaN elsewhere."""
    s, f = np.meshgrid(np.arange(max_pulls + 1), np.arange(max_pulls + 1), indexing="ij")
    mask = s + f <= max_pulls
    table = np.full(s.shape, np.nan)
    table[mask] = gittins_indices(1 + s[mask], 1 + f[mask], gamma, horizon)
    return table


def gittins_policy(table: np.ndarray) -> BanditPolicy:
    """Pull the arm with the highest Gittins index, looked up in a :func:`gittins_table`."""

    def policy(s: np.ndarray, f: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        return _argmax_random_ties(table[s, f], rng)

    return policy


def bayes_optimal_value(n: int, k: int) -> float:
    """Exact Bayes-optimal expected total reward of ``n`` pulls of ``k`` Beta(1, 1) Bernoulli arms.

    Dynamic programming over sorted tuples of per-arm (successes, failures): arms with equal counts are
    interchangeable, which keeps the state count manageable for n ≤ 30.
    """
    if not (1 <= n <= 30 and k >= 1):
        raise ValueError(f"bayes_optimal_value: needs 1 <= n <= 30 and k >= 1, got n={n}, k={k}")

    @lru_cache(maxsize=None)
    def value(state: tuple[tuple[int, int], ...], remaining: int) -> float:
        if remaining == 0:
            return 0.0
        best = 0.0
        for j, (s, f) in enumerate(state):
            if j and state[j - 1] == (s, f):
                continue
            p = (s + 1) / (s + f + 2)
            win = tuple(sorted(state[:j] + ((s + 1, f),) + state[j + 1:]))
            lose = tuple(sorted(state[:j] + ((s, f + 1),) + state[j + 1:]))
            best = max(best, p * (1.0 + value(win, remaining - 1)) + (1.0 - p) * value(lose, remaining - 1))
        return best

    # More arms than pulls never helps: at most n arms are ever touched, but untouched arms are a free
    # fresh Beta(1,1) option, so keep min(k, n) of them.
    return value(tuple([(0, 0)] * min(k, n)), n)


def play_bandit_policy(policy: BanditPolicy, probs: np.ndarray, n: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Play ``n`` pulls in each bandit of ``probs`` (trials, k); returns the arms and rewards, each (trials, n)."""
    trials, k = probs.shape
    s = np.zeros((trials, k), dtype=np.int64)
    f = np.zeros((trials, k), dtype=np.int64)
    arms = np.zeros((trials, n), dtype=np.int64)
    rewards = np.zeros((trials, n))
    rows = np.arange(trials)
    for t in range(n):
        arm = policy(s, f, t, rng)
        reward = rng.random(trials) < probs[rows, arm]
        s[rows, arm] += reward
        f[rows, arm] += ~reward
        arms[:, t], rewards[:, t] = arm, reward
    return arms, rewards


def run_bandit_policy(policy: BanditPolicy, k: int, n: int, num_trials: int, seed: int = 0) -> np.ndarray:
    """Total reward of each of ``num_trials`` trials (p ~ U(0,1)^k, ``n`` pulls); shape (num_trials,)."""
    rng = np.random.default_rng(seed)
    probs = rng.random((num_trials, k))
    return play_bandit_policy(policy, probs, n, rng)[1].sum(axis=1)
