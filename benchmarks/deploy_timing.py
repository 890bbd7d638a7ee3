"""Deployment timing through the bus emulators: sync-read RTT of 6 servos, loop period/jitter at 50 and 100 Hz,
and policy + safety compute per step.

    nice .venv/bin/python benchmarks/deploy_timing.py --policy RUN_DIR [--reads 500] [--steps 200]

RUN_DIR is a trained SO-101 Reach run (``sim2real train launch/so101_reach.yaml``). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog, read_log
from sim2real.deploy.arm import DeploymentLoop
from sim2real.deploy.loop import LoopConfig
from sim2real.policy_files import load_policy
from sim2real.deploy.report import timing
from sim2real.hal.dynamixel import DynamixelBus
from sim2real.hal.feetech import FeetechBus
from sim2real.hal.lab_scene import LabScene
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.servo_arm import ServoArm
from sim2real.tasks import make_controller, make_task

LAB = os.path.join(os.path.dirname(__file__), "..", "launch", "realities", "lab.yaml")


def _emulator(protocol: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "emulate", protocol, "--reality", LAB],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return process, process.stdout.readline().split()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    spec = so101_spec()
    cal = calibration_from_spec(spec)
    task = make_task("reach", spec)
    base = task.layout.robot_base
    policy, config = load_policy(args.policy, None)
    controller = make_controller(config["env"]["control_mode"], spec, task.uses_gripper, base)
    print("| bus | sync read 6 servos p50 / p99 (ms) | rate (Hz) | period p50 / p99 (ms) | jitter p50 / p99 (ms) "
          "| policy + safety p50 / p99 (ms) | watchdog trips |")
    print("|---|---|---|---|---|---|---|")
    for protocol, bus_class in (("dynamixel", DynamixelBus), ("feetech", FeetechBus)):
        process, port = _emulator(protocol)
        try:
            robot = ServoArm(spec, bus_class(port, cal.ids), cal, base)
            with robot:
                rtt = []
                for _ in range(args.reads):
                    start = time.perf_counter()
                    robot.bus.read()
                    rtt.append(time.perf_counter() - start)
                rtt_ms = np.array(rtt) * 1e3
                for rate in (50.0, 100.0):
                    scene = LabScene()
                    task.setup(scene)
                    with tempfile.TemporaryDirectory() as tmp:
                        log = DeploymentLog(os.path.join(tmp, "log.jsonl"))
                        safety = SafetyLayer(SafetyConfig.from_spec(spec, base), robot.model, 1.0 / rate)
                        loop = DeploymentLoop(robot, task, controller, policy, scene, GoalSource(), safety, log,
                                              LoopConfig(rate, 1, args.steps, seed=1))
                        result = loop.run()
                        log.close()
                        records = read_log(os.path.join(tmp, "log.jsonl"))
                    stats = timing(records)
                    compute = np.array([r["compute"] for r in records
                                        if r["type"] == "step" and r["phase"] == "policy"]) * 1e3
                    trips = "none" if result.stopped is None else result.stopped["reason"]
                    print(f"| {protocol} | {np.median(rtt_ms):.2f} / {np.percentile(rtt_ms, 99):.2f} | {rate:g} | "
                          f"{stats['period_p50_ms']:.2f} / {stats['period_p99_ms']:.2f} | "
                          f"{stats['jitter_p50_ms']:.2f} / {stats['jitter_p99_ms']:.2f} | "
                          f"{np.median(compute):.2f} / {np.percentile(compute, 99):.2f} | {trips} |", flush=True)
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
