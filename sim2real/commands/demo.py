"""``sim2real demo``: the README's main job, no arguments needed.

Trains SO-101-class arm Reach (SAC + HER, state observations) with dynamics and observation-noise randomization
(``launch/demo_so101_reach.yaml``), then measures the transfer gap on the training randomization, held-out
textures, wider held-out dynamics and the Dynamixel emulator (``launch/realities/lab.yaml``), and prints the path
of the HTML report and a 5-line summary table.
"""
from __future__ import annotations

import argparse
import os
import time

from sim2real.arguments import nonnegative_int, output_dir, positive_int

DEMO_LAUNCH = "demo_so101_reach"  # shipped launch file (sim2real.launch.files)
CONDITIONS = "train,heldout-textures,heldout-dynamics,emulated"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="train SO-101 Reach with randomization and report its transfer gap")
    parser.add_argument("--timesteps", type=positive_int, default=None,
                        help="training steps (default: the launch file's)")
    parser.add_argument("--episodes", type=positive_int, default=30,
                        help="episodes per simulated condition (default 30)")
    parser.add_argument("--emulated-episodes", type=positive_int, default=10,
                        help="episodes on the emulator (default 10)")
    parser.add_argument("--videos", type=nonnegative_int, default=2, help="videos per simulated condition (default 2)")
    parser.add_argument("--out", type=output_dir, default=None, help="output directory (default runs/demo-TIME)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.evaluation.command import run_eval
    from sim2real.evaluation.conditions import parse_conditions
    from sim2real.evaluation.report import summary_table
    from sim2real.evaluation.run import EvalSettings
    from sim2real.launch import resolve
    from sim2real.progress import progress_bars
    from sim2real.train import train

    conditions = parse_conditions(CONDITIONS)  # before training: the emulated condition needs the servo extra
    out = args.out or os.path.join("runs", f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    overrides = [f"output_dir={out}"]
    if args.timesteps is not None:
        step = max(1, args.timesteps)
        overrides += [f"budget.total_timesteps={args.timesteps}", f"eval.every_steps={step}",
                      f"checkpoint.every_steps={step}", "algo.learning_starts=" + str(min(200, step // 2))]
    config = resolve(DEMO_LAUNCH, overrides)
    started = time.time()
    print(f"[1/2] training {config['env']['id']} (SAC + HER, dynamics randomization) for "
          f"{config['budget']['total_timesteps']} steps", flush=True)
    run_dir = train(config, run_dir=os.path.join(out, "run"), progress=None)  # SB3's bar on a terminal
    print(f"[2/2] evaluating on {', '.join(conditions)} ({args.episodes} episodes each, "
          f"{args.emulated_episodes} on the emulator in real time)", flush=True)
    settings = EvalSettings(conditions, args.episodes, 1_000_000, 4, args.videos, args.emulated_episodes)
    with progress_bars() as bars:
        report_dir, summary = run_eval([run_dir], None, settings, os.path.join(out, "report"), bars)
    print(summary_table(summary))
    print(f"HTML report: {os.path.abspath(os.path.join(report_dir, 'report.html'))}  "
          f"({time.time() - started:.0f} s in all)")
    return 0
