"""Arm loop closure: a Reach policy trained under the demo's mild randomization (``--policy``, e.g. a run of
``sim2real train demo_so101_reach``) is deployed on an emulated arm whose reality lies outside its training ranges
(heavier links, slower and weaker servos, latency), then ``sim2real sysid loop`` collects, fits, retrains from the
demo launch file with the fitted ranges and deploys again on the same emulator.

    nice -n 5 .venv/bin/python benchmarks/sysid_arm_loop.py --policy RUN_DIR [--episodes 10] [--timesteps N] \
        [--reality PROFILE.yaml] [--evaluations 250] [--factor 3] [--rate-limit 1] [--bus-watchdog 0] \
        [--rt-nice -10] [--out /tmp/sysid-loop]

Prints the loop's own lines (success before/after, wall time per stage). With ``--rt-nice`` (root only; a starved
emulator on a loaded machine trips the watchdog) the emulator runs at that niceness and the deploy/collect control
loops at ``--priority nice``; the fit and the training at this script's niceness. The collect runs at
``--rate-limit`` (default 1: the loaded swings); the servos' bus watchdog is off by default (``--bus-watchdog``:
a loaded machine's pauses trip it, as in the recovery benchmark).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import yaml

from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.emulators.process import stop_process

HARD = {"name": "hard", "mass_scale": 1.5, "position_gain": 0.055, "velocity_gain": 0.7, "strength": 0.65,
        "joint_damping": 0.12, "lateral_friction": 1.5, "latency_s": 0.02, "backlash_rad": 0.004,
        "deadband_ticks": 2, "sensor_noise_ticks": 1.0,
        "faults": {"drop_probability": 0.005, "corrupt_probability": 0.005}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--timesteps", type=int, help="training budget (default: the loop's rule)")
    parser.add_argument("--evaluations", type=int, default=250)
    parser.add_argument("--rt-nice", type=int, default=None)
    parser.add_argument("--factor", type=float, default=3.0, help="the replay gate's factor (default 3)")
    parser.add_argument("--rate-limit", type=float, default=1.0,
                        help="the excitation's rate limit, fraction of the joint speed limit (default 1)")
    parser.add_argument("--reality", help="reality profile YAML to serve instead of the built-in `hard` one")
    parser.add_argument("--bus-watchdog", type=float, default=0.0,
                        help="the servos' bus watchdog, s (default 0: off; a loaded machine's pauses trip it)")
    parser.add_argument("--out", default="/tmp/sysid-loop")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    reality = args.reality or os.path.join(args.out, "hard.yaml")
    if not args.reality:
        with open(reality, "w") as handle:
            yaml.safe_dump(HARD, handle)
    calibration = os.path.join(args.out, "calibration.json")
    with open(calibration, "w") as handle:
        handle.write(calibration_from_spec(so101_spec()).to_json())
    prefix = ["nice", "-n", str(args.rt_nice)] if args.rt_nice is not None else []
    emulator = subprocess.Popen(prefix + [sys.executable, "-m", "sim2real.cli", "emulate", "dynamixel", "--reality",
                                          reality], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = emulator.stdout.readline().split()[-1]
        command = [sys.executable, "-m", "sim2real.cli", "sysid", "loop", "--launch", "demo_so101_reach",
                   "--policy", args.policy, "--driver", "dynamixel", "--port", port, "--calibration", calibration,
                   "--out", args.out, "--episodes", str(args.episodes),
                   "--evaluations", str(args.evaluations), "--factor", str(args.factor),
                   "--rate-limit", str(args.rate_limit), "--overrun-periods", "25", "--stale-periods", "25",
                   "--latency-ms", "30", "--bus-watchdog", str(args.bus_watchdog)]
        command += ["--timesteps", str(args.timesteps)] if args.timesteps else []
        code = subprocess.call(command + (["--priority", "nice"] if args.rt_nice is not None else []))
    finally:
        stop_process(emulator)
    sys.exit(code)


if __name__ == "__main__":
    main()
