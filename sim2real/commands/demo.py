"""``sim2real demo``: the README's main job, no arguments needed.

1. Trains an SO-101-class arm Reach policy (SAC + HER, state observations) with dynamics randomization
   (``launch/demo_so101_reach.yaml``) and measures its transfer gap on the training randomization, dynamics ranges
   twice as wide (``heldout-dynamics``) and the Dynamixel emulator (``emulated``, reality profile ``lab``); held-out
   textures are listed as "n/a": a state policy sees no image.
2. Measures the held-out texture gap where textures matter: the shipped camera pipeline
   (``policies/zoo/so101_reach_vision``: a perception CNN trained on renders with 10,000 procedural textures,
   feeding a state Reach policy) on training textures and on the held-out texture families.

Prints both summary tables and the path of one HTML page over both reports (``OUT/demo.html``).
"""
from __future__ import annotations

import argparse
import os
import time

from sim2real.arguments import nonnegative_int, output_dir, positive_int

DEMO_LAUNCH = "demo_so101_reach"  # shipped launch file (sim2real.launch.files)
CONDITIONS = "train,heldout-textures,heldout-dynamics,emulated"
CAMERA_CONDITIONS = "train,heldout-textures"
CAMERA_PIPELINE = ("zoo", "so101_reach_vision")  # inside the installed policies package (shipped package data)


def camera_pipeline_path() -> str:
    """The shipped camera pipeline folder (found in the install, not the working directory)."""
    import policies

    return os.path.join(os.path.dirname(os.path.abspath(policies.__file__)), *CAMERA_PIPELINE)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="train SO-101 Reach with randomization and report its transfer gap")
    parser.add_argument("--timesteps", type=positive_int, default=None,
                        help="training steps (default: the launch file's)")
    parser.add_argument("--episodes", type=positive_int, default=30,
                        help="episodes per simulated condition, for each policy (default 30)")
    parser.add_argument("--emulated-episodes", type=positive_int, default=10,
                        help="episodes on the emulator (default 10)")
    parser.add_argument("--videos", type=nonnegative_int, default=2, help="videos per simulated condition (default 2)")
    parser.add_argument("--out", type=output_dir, default=None, help="output directory (default runs/demo-TIME)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.evaluation.command import run_eval
    from sim2real.evaluation.conditions import parse_conditions
    from sim2real.evaluation.report import summary_table, write_overview
    from sim2real.evaluation.run import EvalSettings
    from sim2real.launch import resolve
    from sim2real.progress import progress_bars
    from sim2real.train import train

    conditions = parse_conditions(CONDITIONS)  # before training: the emulated condition needs the servo extra
    camera_conditions = parse_conditions(CAMERA_CONDITIONS)
    out = args.out or os.path.join("runs", f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    overrides = [f"output_dir={out}"]
    if args.timesteps is not None:
        step = max(1, args.timesteps)
        overrides += [f"budget.total_timesteps={args.timesteps}", f"eval.every_steps={step}",
                      f"checkpoint.every_steps={step}", "algo.learning_starts=" + str(min(200, step // 2))]
    config = resolve(DEMO_LAUNCH, overrides)
    started = time.time()
    print(f"[1/3] training {config['env']['id']} (SAC + HER, state observations, dynamics randomization) for "
          f"{config['budget']['total_timesteps']} steps", flush=True)
    run_dir = train(config, run_dir=os.path.join(out, "run"), progress=None)  # SB3's bar on a terminal
    print(f"[2/3] evaluating it on {', '.join(conditions)} ({args.episodes} episodes each, "
          f"{args.emulated_episodes} on the emulator in real time)", flush=True)
    settings = EvalSettings(conditions, args.episodes, 1_000_000, 4, args.videos, args.emulated_episodes)
    with progress_bars() as bars:
        state_dir, state = run_eval([run_dir], None, settings, os.path.join(out, "report"), bars)
    pipeline = camera_pipeline_path()
    print(f"[3/3] evaluating the camera pipeline {pipeline} on {', '.join(camera_conditions)} "
          f"({args.episodes} episodes each)", flush=True)
    settings = EvalSettings(camera_conditions, args.episodes, 1_000_000, 4, args.videos)
    with progress_bars() as bars:
        camera_dir, camera = run_eval([pipeline], None, settings, os.path.join(out, "camera-report"), bars)
    sections = [
        ("State policy (trained now)", "SAC + HER on joint positions and the goal, trained under dynamics "
         "randomization: the dynamics gap and the emulated-hardware gap.", state, state_dir),
        ("Camera pipeline (shipped)", "Perception CNN trained on renders with 10,000 procedural textures, locating "
         "the goal for a state Reach policy: the held-out texture gap (texture families cells and dots never "
         "seen in training).", camera, camera_dir)]
    page = write_overview(os.path.join(out, "demo.html"), "sim2real demo: transfer gaps", sections)
    for heading, sentence, summary, _ in sections:
        print(f"\n{heading}: {sentence}\n{summary_table(summary)}")
    print(f"\nHTML report: {os.path.abspath(page)}  ({time.time() - started:.0f} s in all)")
    return 0
