"""A hover policy flown through both quadcopter emulators (issue 23): ``sim2real deploy --driver crazyflie|mavlink``
against ``sim2real emulate crazyflie|mavlink --reality R`` (real cflib / pymavlink over UDP on 127.0.0.1), one
emulator process per flight.

Per reality and driver: the episodes' hold RMS and max error after the first second (the deploy log's episode
records), the fraction of policy steps that command a body rate at its limit (|normalized rate action| ≥ 0.999 on
any axis: a bang-bang rate policy rides the limit), whether the vehicle landed, and the deploy exit code. On a
shared machine the loop allows 10 periods of lateness and 6 of state age by default (as tests/quad_deploy does;
``--stale-periods`` / ``--overrun-periods`` to loosen them further under heavy load).

    nice -n 5 .venv/bin/python benchmarks/quad_batched_deploy.py runs/quad_batched_train \\
        --realities crazyflie_lab,launch/realities/crazyflie_harsh.yaml --stale-periods 15 --overrun-periods 20 \\
        --json benchmarks/figures/quad_batched_deploy.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from quad_deploy_timing import start_emulator  # noqa: E402  (the emulator-process helper of issue 8)

from sim2real.deploy.log import read_log  # noqa: E402
from sim2real.io import atomic_write_json  # noqa: E402

PORTS = {"crazyflie": 19870, "mavlink": 14570}


def fly(policy: str, driver: str, reality: str, episodes: int, steps: int, log: str, stale: float = 6,
        overrun: float = 10) -> dict:
    """One deployment of ``policy`` through ``driver``'s emulator under ``reality``; figures from its log."""
    port = PORTS[driver]
    emulator = start_emulator("crazyflie" if driver == "crazyflie" else "mavlink", port, ["--reality", reality])
    link = ["--uri", f"udp://127.0.0.1:{port}"] if driver == "crazyflie" else ["--url", f"udpout:127.0.0.1:{port}"]
    try:
        code = subprocess.run([sys.executable, "-m", "sim2real.cli", "deploy", policy, "--driver", driver, *link,
                               "--episodes", str(episodes), "--steps", str(steps), "--log", log,
                               "--overrun-periods", str(overrun), "--stale-periods", str(stale)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    return {"driver": driver, "reality": reality, "exit_code": code.returncode, **figures(log)}


def figures(log: str) -> dict:
    """Hold, rate-limit and landing figures of one deploy log."""
    records = read_log(log)
    policy_steps = [r for r in records if r["type"] == "step" and r.get("phase") == "policy"]
    actions = np.array([r["action"] for r in policy_steps], dtype=float).reshape(-1, 4)
    at_limit = float(np.mean(np.abs(actions[:, 1:]).max(axis=1) >= 0.999)) if len(actions) else float("nan")
    ends = [r for r in records if r["type"] == "episode"]
    events = [r for r in records if r["type"] == "event"]
    return {"events": [{k: v for k, v in e.items() if k in ("kind", "reason", "t")} for e in events],
            "rms_m": [round(e["rms_distance"], 4) for e in ends],
            "max_after_1s_m": [round(e["max_distance_after_1s"], 4) for e in ends],
            "final_m": [round(e["final_distance"], 4) for e in ends],
            "rate_limit_fraction": round(at_limit, 4), "policy_steps": len(policy_steps),
            "landed": [bool(e["landed"]) for e in events if "landed" in e]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", help="run directory or model.zip (anything sim2real deploy takes)")
    parser.add_argument("--realities", default="crazyflie_lab,launch/realities/crazyflie_harsh.yaml")
    parser.add_argument("--drivers", default="crazyflie,mavlink")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=480, help="policy steps per episode (48 Hz)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--stale-periods", type=float, default=6)
    parser.add_argument("--overrun-periods", type=float, default=10)
    parser.add_argument("--logs", default=None, help="keep the deploy logs in this folder (default: discard)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.logs or scratch
        os.makedirs(folder, exist_ok=True)
        for reality in args.realities.split(","):
            for driver in args.drivers.split(","):
                log = os.path.join(folder, f"{driver}-{os.path.basename(reality)}.jsonl")
                result = fly(args.policy, driver, reality, args.episodes, args.steps, log, args.stale_periods,
                             args.overrun_periods)
                print(json.dumps(result), flush=True)
                results.append(result)
    if args.json:
        atomic_write_json(args.json, {"policy": args.policy, "flights": results, "stale_periods": args.stale_periods,
                                      "overrun_periods": args.overrun_periods, "load_average": os.getloadavg()})


if __name__ == "__main__":
    main()
