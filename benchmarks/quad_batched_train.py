"""Time to a deployable hover policy with the batched quadrotor (issue 23): ``sim2real train`` on a fast launch file,
then the PyBullet evaluation of ``benchmarks/quad_train_hover.py`` (20 episodes, randomized parameters from seeds
900000+ never used in training, deterministic actions, RMS position error over t ∈ [1 s, 5 s], crashes).

Training runs through :func:`sim2real.train.train` exactly as the command line does (launch file + overrides);
wall and process CPU time of the training call are recorded separately from the evaluation. With ``--snapshots``
the run also keeps every checkpoint (``checkpoint.every_steps``) and each is evaluated, giving the budget at which
the target (≤ 5 cm RMS, no crash) is first met.

    nice -n 5 .venv/bin/python benchmarks/quad_batched_train.py launch/crazyflie_hover_fast.yaml \\
        --json benchmarks/figures/quad_batched_train.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from quad_train_hover import evaluate  # noqa: E402  (the PPO baseline's held-out evaluation, unchanged)

TARGET_RMS = 0.05  # m


def held_out(path: str, config: dict, episodes: int) -> dict:
    """The baseline's evaluation of the model at ``path`` (a run's model.zip, loaded without unpickling)."""
    from sim2real.env_factory import make_env_fn
    from sim2real.sb3_safe_load import load_sb3_model

    env = make_env_fn(config, rank=0)()
    model = load_sb3_model(config, path, env)
    env.close()
    result = evaluate(model, config["env"]["control_mode"], episodes, seed=900_000, randomize=True)
    result["meets_target"] = result["terminated"] == 0 and result["rms_m_mean"] <= TARGET_RMS
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("launch", nargs="?", default="launch/crazyflie_hover_fast.yaml")
    parser.add_argument("overrides", nargs="*", help="launch-file overrides, key=value")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--run-dir", default="runs/quad_batched_train")
    parser.add_argument("--snapshots", action="store_true", help="keep and evaluate every checkpoint")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    from sim2real.io import atomic_write_json
    from sim2real.launch import resolve
    from sim2real.train import train

    torch.set_num_threads(1)
    config = resolve(args.launch, args.overrides)
    shutil.rmtree(args.run_dir, ignore_errors=True)
    kept: list[tuple[int, float, float, str]] = []
    if args.snapshots:  # copy each checkpoint's model as it is published (train keeps only the newest two)
        import sim2real.train as training

        original = training.save_checkpoint
        start_wall, start_cpu = [0.0], [0.0]

        def keeping(model, run_dir, config, keep=2, curriculum=None):
            folder = original(model, run_dir, config, keep, curriculum)
            target = os.path.join(run_dir, "snapshots", f"{model.num_timesteps}.zip")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(os.path.join(folder, "model.zip"), target)
            kept.append((int(model.num_timesteps), time.time() - start_wall[0], time.process_time() - start_cpu[0],
                         target))
            return folder

        training.save_checkpoint = keeping
    load_before = os.getloadavg()
    wall0, cpu0 = time.time(), time.process_time()
    if args.snapshots:
        start_wall[0], start_cpu[0] = wall0, cpu0
    run_dir = train(config, args.run_dir, progress=False)
    wall, cpu = time.time() - wall0, time.process_time() - cpu0
    result = {"launch": args.launch, "overrides": args.overrides, "timesteps": config["budget"]["total_timesteps"],
              "n_envs": config["n_envs"], "simulator": config["env"]["simulator"], "train_wall_s": round(wall, 1),
              "train_cpu_s": round(cpu, 1), "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "final": held_out(os.path.join(run_dir, "final", "model.zip"), config, args.episodes)}
    if kept:
        result["snapshots"] = [{"timesteps": steps, "wall_s": round(w, 1), "cpu_s": round(c, 1),
                                **held_out(path, config, args.episodes)} for steps, w, c, path in kept]
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
