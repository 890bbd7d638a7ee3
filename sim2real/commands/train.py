"""``sim2real train LAUNCH [key=value ...]`` and ``sim2real train --resume RUN_DIR``."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sim2real.arguments import check_writable, output_dir
from sim2real.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a policy from a launch file",
                            description="Train a policy. Overrides use dotted keys, e.g. algo.learning_rate=1e-3 seed=3.")
    parser.add_argument("launch", nargs="?", help="launch file: a YAML path or a shipped name (sim2real info), "
                                                    "e.g. so101_reach")
    parser.add_argument("overrides", nargs="*", help="dotted overrides key.subkey=value")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    parser.add_argument("--run-dir", type=output_dir, help="write the run here instead of OUTPUT_DIR/NAME-TIME-sSEED")
    parser.add_argument("--backend", choices=("local", "ray"),
                        help="where the training envs run (the launch file's backend: key; ray: Ray actors, ray.*)")
    parser.set_defaults(handler=run)


def _device_warning(config: dict[str, Any]) -> str | None:
    """Why training will not run on the launch file's ``device`` (it then runs on the CPU), or None."""
    if config["device"] == "cpu":
        return None
    if config["policy"] == "rl2":
        return f"device: {config['device']} is not used by policy: rl2, which trains on the cpu"
    import torch

    if config["device"] == "cuda" and not torch.cuda.is_available():
        return "device: cuda, but CUDA is not available here: training on the cpu"
    return None


def _start(config: dict[str, Any]) -> dict[str, Any]:
    """``config``, after one warning line on stderr when its device will not be used."""
    warning = _device_warning(config)
    if warning:
        print(f"sim2real: warning: {warning}", file=sys.stderr, flush=True)
    return config


def _new_run_dir(config: dict[str, Any], run_dir: str | None) -> str:
    """``--run-dir`` (checked when parsed), else ``output_dir``/NAME-TIME-sSEED when it can be written."""
    from sim2real.train import new_run_dir

    return run_dir or check_writable(new_run_dir(config), "output_dir", directory=True)


def run(args: argparse.Namespace) -> int:
    from sim2real.launch import resolve
    from sim2real.train import train

    if args.resume:
        if args.launch or args.overrides:
            raise UserError("--resume takes only the run directory (its launch.yaml is reused as it was)")
        launch = os.path.join(args.resume, "launch.yaml")
        if not os.path.isfile(launch):
            raise UserError(f"{args.resume}: not a run directory (no launch.yaml)")
        backend = [f"backend={args.backend}"] if args.backend else []
        run_dir = train(_start(resolve(launch, backend)), run_dir=args.resume, resume=True)
    else:
        if not args.launch:
            raise UserError("give a launch file (a path, or a shipped name such as panda_reach) or --resume RUN_DIR")
        backend = [f"backend={args.backend}"] if args.backend else []
        config = _start(resolve(args.launch, [*args.overrides, *backend]))
        run_dir = train(config, run_dir=_new_run_dir(config, args.run_dir))
    print(f"run written to {run_dir}")
    return 0
