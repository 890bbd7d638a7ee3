"""Short side-by-side runs of RL² recipe variants (tabular MDPs or Bernoulli bandits), before a long run.

Each variant is ``policies.meta_bench.mdp_config(n)`` (``--n N``) or ``bandit_config(n, k)`` (``--bandit NxK``)
with some fields replaced (``gae_lambda=0.95``, ``network.hidden_size=256``, ``num_envs=128``, ...), the
learning-rate schedule of a ``--anneal-steps`` run (the shipped MDP n = 10 weights used 8M), stopped after
``--stop-steps`` env steps. Same seed as the shipped run, so the training-trial return curves compare with its
``progress.jsonl`` (``--reference``); the short run's weights are also evaluated on the zoo's 1000 evaluation
trials (env seed 10000), the same trials as the shipped row.

    nice -n 15 python benchmarks/rl2_recipes.py --variant lam95 gae_lambda=0.95 --stop-steps 1024000 \
        --run-dir /tmp/r4/mdp_recipes --reference runs/bench/mdp_n10/progress.jsonl
    python benchmarks/rl2_recipes.py --bandit 100x10 --variant envs128 num_envs=128 --stop-steps 3000000 \
        --anneal-steps 10000000 --run-dir /tmp/s13/recipes --reference runs/bench/bandit_n100_k10/progress.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies import meta_bench as mb
from policies.checkpoint import load_policy
from policies.config import RL2Config
from policies.evaluate import evaluate_policy
from policies.ppo import train_rl2


class _Stop(Exception):
    """Raised from the iteration callback once the step budget of the short run is spent."""


def with_overrides(cfg: RL2Config, overrides: list[str]) -> RL2Config:
    """``cfg`` with ``key=value`` (or ``network.key=value``) fields replaced; values parsed as JSON."""
    data: dict[str, Any] = cfg.to_dict()
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target[part]
        if leaf not in target:
            raise SystemExit(f"override {key!r}: unknown field (known: {', '.join(sorted(target))})")
        target[leaf] = value
    return RL2Config.from_dict(data)


def curve(rows: list[dict[str, float]], upto: int) -> list[tuple[int, float]]:
    """(global step, training-trial return) of the logged iterations up to ``upto`` steps."""
    return [(int(r["global_step"]), float(r["trial_return_mean"])) for r in rows
            if "trial_return_mean" in r and r["global_step"] <= upto]


def tail_mean(points: list[tuple[int, float]], last: int = 3) -> float:
    """Mean training-trial return of the last ``last`` logged iterations (each over one iteration's trials)."""
    return float(np.mean([v for _, v in points[-last:]])) if points else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, help="name of this variant (run sub-directory)")
    parser.add_argument("overrides", nargs="*", help="RL2Config fields to replace, e.g. gae_lambda=0.95")
    parser.add_argument("--n", type=int, default=10, help="MDP: episodes per trial")
    parser.add_argument("--bandit", default=None, metavar="NxK", help="a bandit setting instead of an MDP")
    parser.add_argument("--stop-steps", type=int, default=1_024_000, help="env steps of the short run")
    parser.add_argument("--anneal-steps", type=int, default=8_000_000, help="LR schedule horizon (total_steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=Path("runs/mdp_recipes"))
    parser.add_argument("--reference", type=Path, default=None, help="progress.jsonl of the recipe to compare with")
    args = parser.parse_args()

    if args.bandit:
        try:
            pulls, arms = mb.parse_bandit_setting(args.bandit)
        except ValueError:
            parser.error(f"--bandit: expected NxK (pulls x arms), got {args.bandit!r}")
        base = mb.bandit_config(pulls, arms, total_steps=args.anneal_steps, seed=args.seed)
        make_env = lambda trials, seed, task=False: mb.bandit_env(pulls, arms, trials, seed, task)  # noqa: E731
    else:
        base = mb.mdp_config(args.n, total_steps=args.anneal_steps, seed=args.seed)
        make_env = lambda trials, seed, task=False: mb.mdp_env(args.n, trials, seed, task)  # noqa: E731
    cfg = with_overrides(base, args.overrides)
    run = args.run_dir / args.variant
    t0 = time.perf_counter()

    def stop(stats: dict[str, float]) -> None:
        # Stop on an iteration that wrote a checkpoint: the weights evaluated below are the stopping iteration's.
        if stats["global_step"] >= args.stop_steps and stats["iteration"] % cfg.checkpoint_every == 0:
            raise _Stop

    try:
        train_rl2(cfg, None, run, vec_env=make_env(cfg.num_envs, args.seed, mb.uses_task_features(cfg)),
                  on_iteration=stop)
    except _Stop:
        pass
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    ours = curve(rows, args.stop_steps)
    out: dict[str, Any] = {"variant": args.variant, "overrides": args.overrides, "stop_steps": args.stop_steps,
                           "anneal_steps": args.anneal_steps, "wall_time_s": round(wall, 1), "curve": ours,
                           "tail_mean": tail_mean(ours)}
    if args.reference is not None:
        ref_rows = [json.loads(line) for line in args.reference.read_text().splitlines()]
        reference = curve(ref_rows, args.stop_steps)
        out.update(reference_curve=reference, reference_tail_mean=tail_mean(reference))
    model, _ = load_policy(run / "checkpoint.pt")  # written at the stop (the run's last iteration)
    torch.manual_seed(0)
    out["eval_1000_trials"] = mb.mean_se(evaluate_policy(model, make_env(1000, 10_000), seed=10_000))
    (run / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"{args.variant}: {args.overrides} -> training-trial return over the last 3 logs before "
          f"{args.stop_steps:,} steps: {out['tail_mean']:.1f}"
          + (f" (reference {out['reference_tail_mean']:.1f})" if args.reference else "") + f"; {wall:.0f} s; "
          f"1000 evaluation trials: {out['eval_1000_trials'][0]:.2f} ± {out['eval_1000_trials'][1]:.2f}")


if __name__ == "__main__":
    main()
