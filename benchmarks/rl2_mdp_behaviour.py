"""Where a shipped RL² tabular-MDP policy gains and loses reward within a trial, next to the planners.

For the zoo's ``mdp_n{N}`` policy on the table's 1000 evaluation trials (env seed 10000, sampling from torch seed 0)
and for the greedy planner and PSRL on the same MDPs: the mean return of selected episodes of the trial, next to
what the optimal policy of the true MDP earns per episode in expectation (the oracle). A meta-learner that keeps
learning should climb towards the oracle episode by episode.

    python benchmarks/rl2_mdp_behaviour.py --mdp 25 [--zoo policies/zoo] [--trials 1000] [--policy policies/zoo/mdp_n10.pt]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from policies import meta_bench as mb
from policies.baselines.mdp import play_mdp_baseline
from policies.checkpoint import load_policy
from policies.envs.tabular_mdp import TabularMDPVecEnv, plan
from policies.evaluate import evaluate_policy
from policies.vec import TrialStep

EVAL_SEED = 10_000


def oracle_episode_value(env: TabularMDPVecEnv) -> np.ndarray:
    """Expected return of one episode under the optimal policy of each env's current MDP, shape (trials,)."""
    q = plan(env.transitions, env.reward_means, env.H)[env.H]
    return q[:, 0].max(-1).values.numpy()


def play_rl2(model: torch.nn.Module, env: TabularMDPVecEnv) -> np.ndarray:
    """One trial per env with sampled actions; returns each episode's reward (trials, n)."""
    rewards: list[np.ndarray] = []

    def record(raw: torch.Tensor, step: TrialStep) -> None:
        rewards.append(step.reward.double().numpy())

    evaluate_policy(model, env, seed=EVAL_SEED, on_step=record)
    return np.stack(rewards, axis=1).reshape(env.num_envs, env.n, env.H).sum(axis=2)


def describe(name: str, episodes: np.ndarray, shown: list[int]) -> str:
    """One table row: trial return ± SE, then the mean return of each shown episode (1-based)."""
    totals = episodes.sum(axis=1)
    se = totals.std(ddof=1) / np.sqrt(len(totals))
    cells = " | ".join(f"{episodes[:, e - 1].mean():.2f}" for e in shown)
    return f"| {name} | {totals.mean():.2f} ± {se:.2f} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mdp", type=int, default=25, metavar="N", help="episodes per trial of a shipped policy")
    parser.add_argument("--zoo", type=Path, default=mb.ZOO)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--policy", type=Path, default=None,
                        help="another policy file to play these trials (default: the zoo's mdp_n<N>.pt)")
    args = parser.parse_args()
    if args.trials < 2:
        parser.error(f"--trials: need at least 2 (for a standard error), got {args.trials}")
    path = args.policy or args.zoo / f"{mb.mdp_name(args.mdp)}.pt"
    if not path.is_file():
        parser.error(f"--mdp {args.mdp}: no policy file {path}")
    model, _ = load_policy(path)
    n = args.mdp
    reference = mb.mdp_env(n, args.trials, EVAL_SEED)
    reference.reset(seed=EVAL_SEED)  # the MDPs every policy below plays (evaluate_policy resets the same way)
    oracle = oracle_episode_value(reference)
    torch.manual_seed(0)
    rows = {f"RL² ({path.name})": play_rl2(model, mb.mdp_env(n, args.trials, EVAL_SEED))}
    for name in ("greedy", "psrl"):
        env = mb.mdp_env(n, args.trials, EVAL_SEED)
        env.reset(seed=EVAL_SEED)
        if not torch.equal(env.transitions, reference.transitions):
            raise SystemExit("error: the baselines did not get the RL² policy's MDPs")
        rows["Greedy" if name == "greedy" else "PSRL"] = play_mdp_baseline(name, env, torch.Generator().manual_seed(1))
    shown = sorted({e for e in (1, 2, 3, 5, 10, 25, 50) if e <= n} | {n})
    print(f"MDP n={n}: {args.trials} trials; oracle (optimal policy of the true MDP) {oracle.mean():.2f} per episode, "
          f"{n * oracle.mean():.2f} per trial")
    print("| policy | trial return | " + " | ".join(f"episode {e}" for e in shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    for name, episodes in rows.items():
        print(describe(name, episodes, shown))


if __name__ == "__main__":
    main()
