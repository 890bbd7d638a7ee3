"""``sim2real eval RUN_DIR``: success rate and mean return over N seeded episodes."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate a trained run")
    parser.add_argument("run_dir", help="run directory written by `sim2real train`")
    parser.add_argument("--episodes", type=int, default=50, help="episodes to run (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="first episode seed (default: run seed + 200000)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.errors import UserError
    from sim2real.train import evaluate_run

    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    result = evaluate_run(args.run_dir, args.episodes, args.seed)
    print(f"episodes {result.episodes}  success rate {result.success_rate:.1%}  "
          f"mean return {result.mean_return:.2f} ± {result.std_return:.2f}")
    return 0
