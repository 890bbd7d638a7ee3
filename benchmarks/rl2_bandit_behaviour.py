"""How a shipped RL² bandit policy explores, next to greedy and UCB1 on the same arm probabilities.

For the zoo's ``bandit_n{N}_k{K}`` policy on the table's 1000 evaluation trials (env seed 10000, sampling from torch
seed 0) and for two index policies on the same bandits: total reward, how many distinct arms a trial tries, the
share of pulls on the best arm, and the mean reward per pull in each tenth of the trial.

    python benchmarks/rl2_bandit_behaviour.py --bandit 100x10 [--zoo policies/zoo] [--ucb-c 0.1]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from policies import meta_bench as mb
from policies.baselines.bandits import greedy_policy, play_bandit_policy, ucb1_policy
from policies.checkpoint import load_policy
from policies.envs import BernoulliBanditVecEnv
from policies.evaluate import evaluate_policy
from policies.vec import TrialStep

EVAL_SEED = 10_000


def play_rl2(model: torch.nn.Module, env: BernoulliBanditVecEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One trial per env with sampled actions; returns the arm probabilities (trials, k), arms and rewards (trials, n)."""
    probs: list[np.ndarray] = []
    arms: list[np.ndarray] = []
    rewards: list[np.ndarray] = []

    def record(raw: torch.Tensor, step: TrialStep) -> None:
        if not probs:  # the trial's bandits (redrawn only after its last pull)
            probs.append(env.probs.numpy().copy())
        arms.append(raw.long().view(-1).numpy())
        rewards.append(step.reward.numpy())

    evaluate_policy(model, env, seed=EVAL_SEED, on_step=record)
    return probs[0], np.stack(arms, axis=1), np.stack(rewards, axis=1)


def describe(name: str, probs: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> str:
    """One table row: return ± SE, distinct arms tried, best-arm share, reward per pull by tenth of the trial."""
    totals = rewards.sum(axis=1)
    best = probs.argmax(axis=1)[:, None]
    distinct = np.mean([len(np.unique(row)) for row in arms])
    tenths = np.array_split(rewards, 10, axis=1)
    per_tenth = " ".join(f"{chunk.mean():.2f}" for chunk in tenths)
    se = totals.std(ddof=1) / np.sqrt(len(totals))
    return (f"| {name} | {totals.mean():.2f} ± {se:.2f} | {distinct:.1f} | {100 * (arms == best).mean():.0f} % | "
            f"{per_tenth} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bandit", default="100x10", metavar="NxK", help="pulls x arms of a shipped policy")
    parser.add_argument("--zoo", type=Path, default=mb.ZOO)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--ucb-c", type=float, default=0.1, help="UCB1 exploration constant (the table tuned 0.1 for n = 100)")
    args = parser.parse_args()
    try:
        pulls, k = mb.parse_bandit_setting(args.bandit)
    except ValueError:
        parser.error(f"--bandit: expected NxK (pulls x arms), got {args.bandit!r}")
    path = args.zoo / f"{mb.bandit_name(pulls, k)}.pt"
    if not path.is_file():
        parser.error(f"--bandit {args.bandit}: no shipped policy {path}")
    model, _ = load_policy(path)
    torch.manual_seed(0)
    probs, arms, rewards = play_rl2(model, mb.bandit_env(pulls, k, args.trials, EVAL_SEED))
    print(f"n={pulls}, k={k}: {args.trials} trials; oracle (best arm every pull) {pulls * probs.max(axis=1).mean():.2f}")
    print("| policy | return | distinct arms tried | pulls on the best arm | reward per pull, by tenth of the trial |")
    print("|---|---|---|---|---|")
    print(describe(f"RL² ({path.name})", probs, arms, rewards))
    for name, policy in (("Greedy", greedy_policy), (f"UCB1 (c = {args.ucb_c})", ucb1_policy(args.ucb_c))):
        print(describe(name, probs, *play_bandit_policy(policy, probs, pulls, np.random.default_rng(0))))


if __name__ == "__main__":
    main()
