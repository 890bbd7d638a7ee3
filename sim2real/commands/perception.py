"""``sim2real perception train LAUNCH``: a localization CNN trained on randomized renders.

Renders ``--images`` camera images of the launch file's env (``obs_mode: rgb``) with its visual randomizers (in
``--workers`` processes; ``--cache DIR`` keeps them as npz for the next run), trains
:class:`sim2real.vision.model.PerceptionNet` to regress the task's positions (m: the goal; Push also the cube) with
a keypoint loss on their projection into each camera view, reports the localization error (per target and per axis)
on validation images and on the launch file's held-out textures, and writes ``perception.pt`` (state_dict) +
``perception.json``. With ``--policy RUN_DIR`` (a state policy of the same task; for Push one trained on the cube's
position only, ``sim2real/SO101PushObjectPosition-v0``) it also writes a vision pipeline folder ``sim2real eval``
and ``sim2real deploy`` accept.
"""
from __future__ import annotations

import argparse
import os
import time

from sim2real.arguments import output_dir, positive_int, seed


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("perception", help="train localization CNNs (goal, object) on randomized renders")
    actions = parser.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="render randomized images and train the CNN")
    train.add_argument("launch", help="launch file of a camera env (obs_mode: rgb), path or shipped name, "
                                      "e.g. so101_reach_twoview")
    train.add_argument("--images", type=positive_int, default=3000, help="training images (default 3000)")
    train.add_argument("--epochs", type=positive_int, default=30, help="training epochs (default 30)")
    train.add_argument("--test-images", type=positive_int, default=300,
                       help="held-out-texture test images (default 300)")
    train.add_argument("--no-visual", action="store_true", help="disable the visual randomizer (ablation)")
    train.add_argument("--n-unique", type=int, help="override the number of unique training textures")
    train.add_argument("--policy", help="state policy run directory of the same task: also write a vision pipeline "
                                        "into --out")
    train.add_argument("--goal-filter", choices=("none", "first", "median"), default="first",
                       help="how the pipeline fuses goal estimates within an episode (default first: hold the "
                            "first frame's, when the arm hides nothing)")
    train.add_argument("--seed", type=seed, default=0, help="seed of renders and weights (default 0)")
    train.add_argument("--workers", type=positive_int, default=1, help="rendering processes (default 1)")
    train.add_argument("--arm-poses", type=float, default=0.0,
                       help="fraction of training images with the arm moved toward the goal (Push: the cube moved "
                            "toward the goal, the arm behind it) (default 0: at home)")
    train.add_argument("--init", help="perception folder to continue training from (fine-tuning)")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed (default 1e-3)")
    train.add_argument("--threads", type=positive_int, default=2, help="torch threads for training (default 2)")
    train.add_argument("--cache", type=output_dir,
                       help="folder of rendered sets (npz, named by config, count and seed) to reuse")
    train.add_argument("--out", type=output_dir, help="output directory (default runs/perception-TIME)")
    parser.set_defaults(handler=run)


def _variant(config: dict, no_visual: bool, n_unique: int | None) -> dict:
    entries = []
    for entry in config.get("randomizers") or []:
        entry = dict(entry)
        if entry["group"] == "visual":
            if no_visual:
                entry["enabled"] = False
            if n_unique is not None:
                entry["textures"] = {**(entry.get("textures") or {}), "n_unique": n_unique}
        entries.append(entry)
    return {**config, "randomizers": entries}


def _check_state_policy_run(path: str, camera_env: str) -> None:
    """A one-line error naming ``--policy`` unless ``path`` is a run directory with a model trained on state
    observations of the camera env's robot and task."""
    from sim2real.envs import ARM_ENVS
    from sim2real.errors import UserError
    from sim2real.train import run_model_path

    try:
        env = run_model_path(path)[0]["env"]
    except UserError as err:
        raise UserError(f"--policy {err}") from None
    if ARM_ENVS.get(env["id"]) != ARM_ENVS[camera_env] or env["obs_mode"] != "state":
        robot, task = ARM_ENVS[camera_env]
        raise UserError(f"--policy {path}: the pipeline needs a {robot} {task} policy with state observations; it was "
                        f"trained on {env['id']} ({env['obs_mode']})")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from sim2real.envs import ARM_ENVS
    from sim2real.errors import UserError
    from sim2real.evaluation.conditions import heldout_textures_config
    from sim2real.launch import resolve
    from sim2real.launch.files import find_launch_file
    from sim2real.launch.randomizers import validate_randomizers
    from sim2real.progress import progress_bars
    from sim2real.vision.dataset import cached_dataset, target_names
    from sim2real.vision.training import axis_errors, fit, load, localization_error, save, target_errors

    if not 0.0 <= args.arm_poses <= 1.0:
        raise UserError(f"--arm-poses must be in [0, 1], got {args.arm_poses}")
    config = resolve(args.launch)
    if config["env"]["obs_mode"] != "rgb" or config["env"]["id"] not in ARM_ENVS:
        raise UserError(f"{args.launch}: perception needs an arm env with env.obs_mode rgb (got {config['env']['id']}, "
                        f"{config['env']['obs_mode']})")
    if args.policy:  # before minutes of rendering and training
        _check_state_policy_run(args.policy, config["env"]["id"])
    targets = target_names(ARM_ENVS[config["env"]["id"]][1])
    # every variant is tested on the same held-out set: the launch file's own held-out textures
    heldout = heldout_textures_config(config)
    config = _variant(config, args.no_visual, args.n_unique)
    validate_randomizers(config)
    torch.set_num_threads(args.threads)
    init = None
    if args.init:
        try:
            init = load(args.init)
        except (OSError, KeyError, ValueError, UserError) as err:
            raise UserError(f"--init {args.init}: not a perception folder ({err})") from None
    out = args.out or os.path.join("runs", f"perception-{time.strftime('%Y%m%d-%H%M%S')}")
    started = time.time()
    with progress_bars() as bars:
        images, goals, keypoints = cached_dataset(config, args.images, args.seed * 1_000_003, args.cache,
                                                  bars.counter(f"rendering {config['env']['id']}"), args.workers,
                                                  args.arm_poses)
        test_x, test_y, _ = cached_dataset(heldout, args.test_images, 500_000_000 + args.seed, args.cache,
                                           bars.counter("rendering held-out textures"), args.workers)
        rendered = time.time() - started
        try:
            perception, result = fit(images, goals, args.epochs, args.seed, lr=args.lr, keypoints=keypoints,
                                     progress=bars.counter("training epochs", line_every=1), init=init,
                                     targets=targets)
        except ValueError as err:  # --init of another task
            raise UserError(f"--init {args.init}: {err}") from None
    heldout_error = localization_error(perception, test_x, test_y)
    per_target = target_errors(perception, test_x, test_y)
    facts = {"launch": os.path.abspath(find_launch_file(args.launch)), "images": args.images, "epochs": args.epochs,
             "seed": args.seed, "visual_randomization": not args.no_visual, "n_unique": args.n_unique,
             "init": os.path.abspath(args.init) if args.init else None, "lr": args.lr, "arm_poses": args.arm_poses,
             "train_error_m": result.train_error, "val_error_m": result.val_error,
             "val_axis_error_m": list(result.val_axis_error), "heldout_texture_error_m": heldout_error,
             "heldout_axis_error_m": list(axis_errors(perception, test_x, test_y)),
             "heldout_target_error_m": per_target,
             "chance_error_m": float(np.mean(np.linalg.norm((test_y - goals.mean(axis=0)).reshape(len(test_y), -1, 3),
                                                            axis=2))),
             "render_time_s": round(rendered, 1), "wall_time_s": round(time.time() - started, 1)}
    save(perception, out, facts)
    print(f"localization error: train {result.train_error * 100:.2f} cm, validation {result.val_error * 100:.2f} cm, "
          f"held-out textures {heldout_error * 100:.2f} cm"
          + ("" if len(targets) == 1 else " (" + ", ".join(f"{n} {e * 100:.2f} cm" for n, e in per_target.items()) + ")"))
    if args.policy:
        from sim2real.vision.pipeline import write_pipeline

        write_pipeline(out, out, args.policy, config, args.goal_filter)
        print(f"vision pipeline written to {out} (sim2real eval {out} --conditions ...)")
    print(f"perception written to {out}")
    return 0
