"""Quadcopter loop closure (issue 20, item 5b): a hover policy trained without the fit, on a harsh emulated Crazyflie;
excitation log → fit (vehicle weighed) → the policy's launch file with the fitted ranges → retrain → the same
emulated vehicle again. Every stage's wall time is recorded. Flights go through ``sim2real emulate crazyflie`` and
cflib (``sim2real deploy`` for the policies, :func:`sim2real.sysid.excitation_quad.collect_quadrotor` for the
excitation); training is ``sim2real train`` (niced).

The harsh reality (:data:`HARSH`) lies inside the issue's envelope: mass ×1.15, kf ×0.9, motors 2× slower, 30 ms
command latency, drag ×1.3, the lab's sensor noise, breeze and gusts, 0.5 % of datagrams dropped.

    nice -n 5 .venv/bin/python benchmarks/sysid_quad_loop.py --timesteps 400000 --json benchmarks/figures/sysid_quad_loop.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sysid_quad import ROOT, QuadEmulator, fit_log, fly  # noqa: E402

from robots.quadrotor import get_quadrotor_spec  # noqa: E402
from sim2real.deploy.log import read_log  # noqa: E402
from sim2real.sysid.identify import Pinned  # noqa: E402
from sim2real.sysid.quadrotor import quadrotor_model  # noqa: E402
from sim2real.sysid.ranges import apply_block, training_intervals  # noqa: E402
from sim2real.user_files import read_yaml_mapping  # noqa: E402

SHIPPED = os.path.join(ROOT, "tests", "quad_deploy", "data", "crazyflie_hover_ppo")
HARSH = {"name": "harsh", "seed": 3, "vehicle": "crazyflie", "mass_scale": 1.15, "kf_scale": 0.9,
         "motor_time_constant_scale": 2.0, "drag_scale": 1.3, "battery_sag": 0.002, "wind": [0.1, 0.0, 0.0],
         "gust_std": 0.05, "latency_s": 0.03, "position_noise_std": 0.002, "velocity_noise_std": 0.01,
         "gyro_noise_std": 0.01, "faults": {"drop_probability": 0.005}}


def hover(model: str, launch: str, reality: str, log: str, episodes: int) -> dict:
    """``sim2real deploy`` of a hover policy through the emulated Crazyflie: per-episode RMS after 1 s (m) and the
    stop record (a tilt or geofence trip ends the flight)."""
    emulator = QuadEmulator("crazyflie", reality, None)
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "sim2real.cli", "deploy", model, "--launch", launch, "--driver",
                        "crazyflie", "--uri", emulator.uri, "--episodes", str(episodes), "--steps", "480", "--log",
                        log, "--stale-periods", "12", "--overrun-periods", "12"], cwd=ROOT, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        emulator.stop()
    records = read_log(log)
    episodes_done = [r for r in records if r.get("type") == "episode"]
    summary = next((r for r in records if r.get("type") == "summary"), {})
    rms = [r["rms_distance"] for r in episodes_done]
    return {"wall_s": time.perf_counter() - started, "rms_m": rms, "episodes": len(rms),
            "stopped": summary.get("stopped"), "mean_rms_m": float(np.mean(rms)) if rms else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=400000, help="retraining budget (env steps)")
    parser.add_argument("--evaluations", type=int, default=300, help="fit budget (replays of the training set)")
    parser.add_argument("--episodes", type=int, default=3, help="10 s hover episodes per evaluation")
    parser.add_argument("--work", default=None, help="folder for logs, launch file and run (default: a temp dir)")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="sysid_quad_loop_")
    os.makedirs(work, exist_ok=True)
    reality = os.path.join(work, "harsh.yaml")
    with open(reality, "w", encoding="utf-8") as handle:
        yaml.safe_dump(HARSH, handle)
    out: dict = {"reality": HARSH, "timesteps": args.timesteps}
    shipped_launch = os.path.join(SHIPPED, "launch.yaml")
    out["before"] = hover(os.path.join(SHIPPED, "model.zip"), shipped_launch, reality,
                          os.path.join(work, "before.jsonl"), args.episodes)
    print("before", json.dumps(out["before"]), flush=True)

    log = os.path.join(work, "excitation.jsonl")
    out["collect"] = fly(reality, log, 4, 0)
    spec = get_quadrotor_spec("crazyflie")
    weighed = round(spec.mass * HARSH["mass_scale"] * 1e4) / 1e4 / spec.mass
    fitted = fit_log(log, {"mass_scale": weighed}, args.evaluations, 2.0)
    out["fit"] = fitted
    print("fit", json.dumps(fitted, default=float), flush=True)

    model = Pinned(quadrotor_model({"vehicle": "crazyflie", "rate_hz": 50.0}), {"mass_scale": weighed})
    ranges = training_intervals(model.parameters, fitted["values"], fitted["intervals"])
    block = model.randomizer_block(ranges)
    launch = apply_block(read_yaml_mapping(shipped_launch, "launch file"), block)
    launch.update({"name": "crazyflie_hover_fitted", "output_dir": work})
    launch["budget"] = {"total_timesteps": args.timesteps}
    launch["checkpoint"] = {"every_steps": max(args.timesteps // 4, 1000)}
    fitted_launch = os.path.join(work, "crazyflie_hover_fitted.yaml")
    with open(fitted_launch, "w", encoding="utf-8") as handle:
        yaml.safe_dump(launch, handle, sort_keys=False)
    out["randomizers"] = block
    run_dir = os.path.join(work, "run")
    started = time.perf_counter()
    subprocess.run(["nice", "-n", "5", sys.executable, "-m", "sim2real.cli", "train", fitted_launch, "--run-dir",
                    run_dir], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    out["train_s"] = time.perf_counter() - started
    out["after"] = hover(os.path.join(run_dir, "final", "model.zip"), fitted_launch, reality,
                         os.path.join(work, "after.jsonl"), args.episodes)
    print("after", json.dumps(out["after"]), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=1, default=float)


if __name__ == "__main__":
    main()
