"""What the Dynamixel bus-watchdog check costs on the bus: round-trip time of the state sync read (position,
velocity, current of 6 servos) and of the check (one sync read of Bus_Watchdog from 6 servos), interleaved, through
the bus emulator and the stock ``dynamixel_sdk``.

    nice .venv/bin/python benchmarks/bus_watchdog_check.py [--reads 500]

Prints a Markdown table (ms). The check runs only after a silence near the watchdog time and once per loop start
(:mod:`sim2real.hal.servo_bus`), so this is its cost in those periods, not in every one.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.emulators.process import stop_process
from sim2real.hal.dynamixel import DynamixelBus
from sim2real.hal.servo_arm import ServoArm

LAB = os.path.join(os.path.dirname(__file__), "..", "launch", "realities", "lab.yaml")


def _ms(samples: list[float]) -> str:
    return f"{np.percentile(samples, 50) * 1e3:.2f} / {np.percentile(samples, 99) * 1e3:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=500)
    args = parser.parse_args()
    process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "emulate", "dynamixel", "--reality", LAB],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = process.stdout.readline().split()[-1]
        spec = so101_spec()
        calibration = calibration_from_spec(spec)
        arm = ServoArm(spec, DynamixelBus(port, calibration.ids, 1_000_000), calibration)
        arm.connect()
        reads, checks, expired = [], [], 0
        try:
            for _ in range(args.reads):
                started = time.perf_counter()
                arm.bus.read()
                reads.append(time.perf_counter() - started)
                started = time.perf_counter()
                found = arm.bus.watchdog_tripped()
                checks.append(time.perf_counter() - started)
                if found:  # a scheduling stall on a loaded machine outlasted the 0.1 s watchdog
                    expired += 1
                    arm.take_control()
        finally:
            arm.disconnect()
    finally:
        stop_process(process)
    print("| sync read of the state, 6 servos, p50 / p99 (ms) | Bus_Watchdog check, 6 servos, p50 / p99 (ms) "
          "| watchdog found expired |")
    print("|---|---|---|")
    print(f"| {_ms(reads)} | {_ms(checks)} | {expired} of {args.reads} checks |")


if __name__ == "__main__":
    main()
