"""``sim2real train LAUNCH [key=value ...]`` and ``sim2real train --resume RUN_DIR``."""
from __future__ import annotations

import argparse
import os

from sim2real.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a policy from a launch file",
                            description="Train a policy. Overrides use dotted keys, e.g. algo.learning_rate=1e-3 seed=3.")
    parser.add_argument("launch", nargs="?", help="launch file (YAML)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides key.subkey=value")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    parser.add_argument("--run-dir", help="write the run here instead of OUTPUT_DIR/NAME-TIME-sSEED")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.launch import resolve
    from sim2real.train import train

    if args.resume:
        if args.launch or args.overrides:
            raise UserError("--resume takes only the run directory (its launch.yaml is reused as it was)")
        launch = os.path.join(args.resume, "launch.yaml")
        if not os.path.isfile(launch):
            raise UserError(f"{args.resume}: not a run directory (no launch.yaml)")
        run_dir = train(resolve(launch), run_dir=args.resume, resume=True)
    else:
        if not args.launch:
            raise UserError("give a launch file (e.g. launch/panda_reach.yaml) or --resume RUN_DIR")
        run_dir = train(resolve(args.launch, args.overrides), run_dir=args.run_dir)
    print(f"run written to {run_dir}")
    return 0
