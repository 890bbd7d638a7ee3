"""Pick an RL² bandit/MDP policy among a run's weight snapshots on validation trials, then score it on the test trials.

Snapshots come from ``snapshot_every`` (``<run>/snapshots/step_*.pt``). Every snapshot plays the same validation
trials (env seed 20000, sampling from torch seed 1; common random numbers, so differences between snapshots are not
trial noise); the best one is then evaluated once on the table's 1000 test trials (env seed 10000, sampling from
torch seed 0), which took no part in the choice. With ``--export NAME`` it is written to the zoo with a model card.

    python benchmarks/rl2_select_snapshot.py --bandit 100x5 --runs /tmp/s16/snap/ft_s1 /tmp/s16/snap/ft_s2 \
        --validation-trials 5000 [--export bandit_n100_k5 --command "..."]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from policies import meta_bench as mb
from policies.checkpoint import load_policy, safe_load
from policies.evaluate import evaluate_policy

VALIDATION_SEED, TEST_SEED = 20_000, 10_000


def score(path: Path, make_env: Callable[[int], Any], trials: int, env_seed: int, torch_seed: int) -> tuple[float, float]:
    """Mean ± SE trial return of the policy file ``path`` on ``trials`` trials of env seed ``env_seed``."""
    model, _ = load_policy(path)
    torch.manual_seed(torch_seed)
    return mb.mean_se(evaluate_policy(model, make_env(trials), seed=env_seed))


def wall_time_at(run: Path, global_step: int) -> float | None:
    """Training wall time (s) logged at ``global_step`` in ``run/progress.jsonl``, if logged."""
    log = run / "progress.jsonl"
    for line in log.read_text().splitlines() if log.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a killed run
            continue
        if row.get("global_step") == global_step:
            return float(row["wall_time_s"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    setting = parser.add_mutually_exclusive_group(required=True)
    setting.add_argument("--bandit", metavar="NxK", help="pulls x arms")
    setting.add_argument("--mdp", type=int, metavar="N", help="episodes per trial")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run directories with snapshots/")
    parser.add_argument("--validation-trials", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=1000, help="test trials (the table's protocol)")
    parser.add_argument("--export", metavar="NAME", help="write the chosen policy to the zoo as NAME.pt / NAME.json")
    parser.add_argument("--zoo", type=Path, default=mb.ZOO)
    parser.add_argument("--command", default="", help="the training command(s), for the model card")
    args = parser.parse_args()
    if min(args.validation_trials, args.trials) < 2:
        parser.error("--validation-trials and --trials: need at least 2 (for a standard error)")
    if args.bandit:
        try:
            n, k = mb.parse_bandit_setting(args.bandit)
        except ValueError:
            parser.error(f"--bandit: expected NxK (pulls x arms), got {args.bandit!r}")
        make_env: Callable[[int], Any] = lambda trials: mb.bandit_env(n, k, trials, TEST_SEED)  # noqa: E731
        description = mb.env_description("rl2-bandits", (n, k))
    else:
        make_env = lambda trials: mb.mdp_env(args.mdp, trials, TEST_SEED)  # noqa: E731
        description = mb.env_description("rl2-mdp", (args.mdp,))
    snapshots = sorted(p for run in args.runs for p in (run / "snapshots").glob("step_*.pt"))
    if not snapshots:
        parser.error(f"--runs: no snapshots/step_*.pt in {', '.join(map(str, args.runs))}")

    validation = {p: score(p, make_env, args.validation_trials, VALIDATION_SEED, 1) for p in snapshots}
    for p, (m, se) in validation.items():
        print(f"{p.parent.parent.name}/{p.name}: validation {m:.2f} ± {se:.2f}")
    best = max(validation, key=lambda p: validation[p][0])
    test = score(best, make_env, args.trials, TEST_SEED, 0)
    print(f"chosen {best} (validation {validation[best][0]:.2f} ± {validation[best][1]:.2f} over "
          f"{args.validation_trials} trials, best of {len(snapshots)}): test {test[0]:.2f} ± {test[1]:.2f} "
          f"over {args.trials} trials")
    if args.export:
        data = safe_load(best)
        run = best.parent.parent
        steps = int(data["global_step"])
        mb.write_zoo_entry(args.export, data, args.zoo, env=description, env_steps=steps,
                           train_wall_time_s=wall_time_at(run, steps), command=args.command,
                           selection={"snapshots": len(snapshots), "validation_env_seed": VALIDATION_SEED,
                                      "validation_trials": args.validation_trials,
                                      "validation_mean": validation[best][0], "chosen": f"{run.name}/{best.name}"})
        print(f"wrote {args.zoo / args.export}.pt and .json")


if __name__ == "__main__":
    main()
