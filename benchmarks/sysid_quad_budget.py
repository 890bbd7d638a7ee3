"""Retraining budget on a fit outside the training ranges (issue 20 item 5b), measured without flights: train
``crazyflie_hover_fast`` on the ranges a fit of a reality profile gives (the profile's true values with the fit's
range floor, :data:`sim2real.sysid.ranges.MIN_SPREAD` of each search box either side: what ``sysid fit`` writes for a
tight fit), keep every checkpoint, and fly each on the batched model with the profile's own parameters pinned (mass,
inertia, kf, km, motor time constant, drag, battery sag, latency, sensor noise, mean wind, gusts): N vehicles,
``--steps`` control steps from the task's starts (up to 0.3 m off the goal). Per checkpoint: each vehicle's hold RMS
(position error after the first second, as the loop's deployments report it), the RMS over the last half, crashes,
and the fraction of steps that command a body rate at its limit (|normalized rate| ≥ 0.999 on any axis).

    nice -n 15 .venv/bin/python benchmarks/sysid_quad_budget.py --run-dir /tmp/budget \\
        --timesteps 6000000 --every 750000 env.action_rate_penalty=0.05 --json benchmarks/figures/F.json
    nice -n 15 .venv/bin/python benchmarks/sysid_quad_budget.py --evaluate RUN_DIR [RUN_DIR/snapshots/N.zip ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sim2real.emulators.quad_reality import load_quad_reality  # noqa: E402
from sim2real.io import atomic_write_json  # noqa: E402

SLOW = os.path.join(ROOT, "launch", "realities", "crazyflie_sysid_slow.yaml")


def profile_values(profile: str) -> dict[str, float]:
    """The ``quadrotor`` randomization values that reproduce reality profile ``profile`` (scales, s, m/s)."""
    r = load_quad_reality(profile)
    values = {"quadrotor.mass": r.mass_scale, "quadrotor.inertia": r.mass_scale, "quadrotor.kf": r.kf_scale,
              "quadrotor.km": r.kf_scale, "quadrotor.motor.time_constant": r.motor_time_constant_scale,
              "quadrotor.drag": r.drag_scale, "quadrotor.battery.sag": r.battery_sag, "quadrotor.latency": r.latency_s,
              "quadrotor.sensor.position_noise_std": r.position_noise_std,
              "quadrotor.sensor.velocity_noise_std": r.velocity_noise_std,
              "quadrotor.sensor.gyro_noise_std": r.gyro_noise_std, "quadrotor.wind.gust_std": r.gust_std,
              "quadrotor.wind.gust_tau": 1.0}
    values.update({f"quadrotor.motor{i}.thrust": 1.0 for i in range(4)})
    values.update({f"quadrotor.wind.{axis}": float(w) for axis, w in zip("xyz", r.wind)})
    return values


def fitted_launch(profile: str, launch: str, out: str) -> str:
    """``launch`` with the ranges a tight fit of ``profile`` gives (the range floor around the true values)."""
    from sim2real.launch.files import find_launch_file
    from sim2real.sysid.quadrotor import QUAD_PARAMETERS, QuadrotorModel
    from sim2real.sysid.ranges import apply_block, training_intervals

    r = load_quad_reality(profile)
    truth = {p.name: float(getattr(r, p.name)) for p in QUAD_PARAMETERS}
    block = QuadrotorModel(r.vehicle, 1 / 48).randomizer_block(training_intervals(QUAD_PARAMETERS, truth, {}))
    with open(find_launch_file(launch), encoding="utf-8") as handle:
        config = apply_block(yaml.safe_load(handle), block)
    with open(out, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return out


def train_with_snapshots(launch: str, run_dir: str, overrides: list[str]) -> list[dict]:
    """``sim2real train`` of ``launch`` into ``run_dir``, each checkpoint's model kept as snapshots/STEPS.zip."""
    import torch

    import sim2real.train as training
    from sim2real.launch import resolve

    torch.set_num_threads(1)
    original, started, kept = training.save_checkpoint, time.time(), []

    def keeping(model, folder, config, keep=2, curriculum=None):
        written = original(model, folder, config, keep, curriculum)
        target = os.path.join(folder, "snapshots", f"{model.num_timesteps}.zip")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(written, "model.zip"), target)
        kept.append({"timesteps": int(model.num_timesteps), "wall_s": round(time.time() - started, 1),
                     "load_average": os.getloadavg(), "model": target})
        print(json.dumps(kept[-1]), flush=True)
        return written

    training.save_checkpoint = keeping
    shutil.rmtree(run_dir, ignore_errors=True)
    training.train(resolve(launch, overrides), run_dir, progress=False)
    return kept


def hold(model_path: str, profile: str, vehicles: int, steps: int, seed: int) -> dict:
    """Fly the model at ``model_path`` (a run's final model or a snapshot) on ``vehicles`` batched vehicles with
    ``profile``'s parameters pinned; figures in the module docstring."""
    import torch

    from sim2real.env_factory import make_env_fn
    from sim2real.envs.batched_quadrotor_env import BatchedQuadrotorVecEnv
    from sim2real.launch import resolve
    from sim2real.sb3_safe_load import load_sb3_model

    torch.set_num_threads(1)
    run_dir = os.path.dirname(os.path.dirname(model_path))
    config = resolve(os.path.join(run_dir, "launch.yaml"))
    env = BatchedQuadrotorVecEnv(config["env"]["id"], vehicles, config["env"]["control_mode"], "dense", steps + 1,
                                 [{"group": "quadrotor"}], seed=seed)
    env.env_method("set_randomization_values", profile_values(profile))
    model_env = make_env_fn(config, rank=0)()
    model = load_sb3_model(config, model_path, model_env)
    model_env.close()
    obs, alive = env.reset(), np.ones(vehicles, bool)
    errors, limited = np.full((steps, vehicles), np.nan), np.zeros((steps, vehicles), bool)
    for k in range(steps):
        action = np.clip(model.predict(obs, deterministic=True)[0], -1.0, 1.0)
        limited[k] = (np.abs(action[:, 1:]) >= 0.999).any(axis=1)
        obs, _, done, infos = env.step(action)
        alive &= ~np.array([bool(done[i] and infos[i].get("termination")) for i in range(vehicles)])
        errors[k, alive] = np.linalg.norm(env.sim.position - env._reference.position, axis=1)[alive]
    if not alive.any():
        return {"model": model_path, "profile": os.path.basename(profile), "vehicles": vehicles, "crashes": vehicles}
    rms = np.sqrt(np.mean(errors[48:, alive] ** 2, axis=0))
    late = np.sqrt(np.mean(errors[steps // 2:, alive] ** 2))
    return {"model": model_path, "profile": os.path.basename(profile), "vehicles": vehicles,
            "crashes": int((~alive).sum()), "hold_rms_cm": {"mean": round(float(rms.mean()) * 100, 2),
                                                            "median": round(float(np.median(rms)) * 100, 2),
                                                            "p90": round(float(np.percentile(rms, 90)) * 100, 2)},
            "late_rms_cm": round(float(late) * 100, 2),
            "rate_limit_fraction": round(float(limited[:, alive].mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="launch-file overrides of the training, key=value")
    parser.add_argument("--profile", default=SLOW, help="reality profile (path)")
    parser.add_argument("--launch", default="crazyflie_hover_fast")
    parser.add_argument("--run-dir", default="/tmp/sysid-quad-budget")
    parser.add_argument("--timesteps", type=int, default=6_000_000)
    parser.add_argument("--every", type=int, default=750_000, help="steps between kept checkpoints")
    parser.add_argument("--evaluate", nargs="+", help="only fly these runs (their final model) or snapshot zips")
    parser.add_argument("--vehicles", type=int, default=64)
    parser.add_argument("--steps", type=int, default=480, help="control steps per flight (48 Hz)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    result: dict = {"args": vars(args)}
    if args.evaluate:
        models = [m if m.endswith(".zip") else os.path.join(m, "final", "model.zip") for m in args.evaluate]
        kept = [{"model": m} for m in models]
    else:
        os.makedirs(os.path.dirname(os.path.abspath(args.run_dir)), exist_ok=True)
        launch = fitted_launch(args.profile, args.launch, os.path.abspath(args.run_dir) + "_launch.yaml")
        overrides = [f"budget.total_timesteps={args.timesteps}", f"checkpoint.every_steps={args.every}",
                     f"eval.every_steps={10 * args.timesteps}", *args.overrides]
        kept = train_with_snapshots(launch, args.run_dir, overrides)
    result["rows"] = []
    for row in kept:
        result["rows"].append({**row, **hold(row["model"], args.profile, args.vehicles, args.steps, args.seed)})
        print(json.dumps(result["rows"][-1]), flush=True)
        if args.json:
            atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
