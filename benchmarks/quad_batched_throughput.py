"""Batched quadrotor throughput: env steps/s of ``BatchedQuadrotorVecEnv`` for N vehicles next to the PyBullet env,
measured side by side in one run (issue 23).

Every variant flies ``sim2real/CrazyflieHover-v0`` (48 Hz control, 240 Hz physics, motor lag + drag + ground
effect, CTBR through the rate PID + mixer) under the ``quadrotor`` randomization group at its default ranges, with
a constant hover action and resets included (the drifting vehicles leave the arena or crash and start again, with
fresh parameters). The PyBullet env is the registered env inside ``QuadrotorRandomizer``, one env per Python step.
Variants take turns in short chunks; each reports its median chunk rate in env steps per CPU-second of this
process (``time.process_time``: the machine is shared) and per wall-second.

    nice -n 5 .venv/bin/python benchmarks/quad_batched_throughput.py --seconds 6 \\
        --json benchmarks/figures/quad_batched_throughput.json
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import gymnasium as gym
import numpy as np

import sim2real.envs  # noqa: F401  (registers the ids)
from randomizers.quadrotor import QuadrotorRandomizer
from sim2real.envs.batched_quadrotor_env import BatchedQuadrotorVecEnv
from sim2real.io import atomic_write_json

HOVER = "sim2real/CrazyflieHover-v0"
HOVER_AVIARY = 4750.0  # env steps/s, gym-pybullet-drones HoverAviary, 30 Hz / 240 Hz, no resets (reference doc)


def pybullet_stepper(seed: int = 0) -> Callable[[], int]:
    """One PyBullet env step per call (reset when an episode ends); returns the env steps done (1)."""
    env = QuadrotorRandomizer(gym.make(HOVER))
    env.reset(seed=seed)
    action = np.zeros(4, dtype=np.float32)

    def step() -> int:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
        return 1

    return step


def batched_stepper(n: int, seed: int = 0) -> Callable[[], int]:
    """One batched step of ``n`` vehicles per call; returns the env steps done (n)."""
    venv = BatchedQuadrotorVecEnv(HOVER, n, randomizers=[{"group": "quadrotor"}], seed=seed)
    venv.reset()
    actions = np.zeros((n, 4), dtype=np.float32)

    def step() -> int:
        venv.step(actions)
        return n

    return step


def interleaved_rates(steppers: dict[str, Callable[[], int]], seconds: float, rounds: int) -> dict[str, dict]:
    """Median env steps per CPU-second and per wall-second of each stepper, taking turns in chunks."""
    cpu: dict[str, list[float]] = {name: [] for name in steppers}
    wall: dict[str, list[float]] = {name: [] for name in steppers}
    chunk = seconds / rounds
    for step in steppers.values():  # warm up
        for _ in range(5):
            step()
    for _ in range(rounds):
        for name, step in steppers.items():
            done, c0, w0 = 0, time.process_time(), time.perf_counter()
            while time.process_time() - c0 < chunk:
                done += step()
            cpu[name].append(done / (time.process_time() - c0))
            wall[name].append(done / (time.perf_counter() - w0))
    return {name: {"cpu_rate": float(np.median(cpu[name])), "wall_rate": float(np.median(wall[name]))}
            for name in steppers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="CPU seconds per variant")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--vehicles", default="1,64,1024", help="batch sizes N, comma-separated")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    sizes = [int(v) for v in args.vehicles.split(",")]
    steppers = {"pybullet": pybullet_stepper()}
    steppers.update({f"batched_{n}": batched_stepper(n) for n in sizes})
    load_before = os.getloadavg()
    rates = interleaved_rates(steppers, args.seconds, args.rounds)
    base = rates["pybullet"]
    result = {"rates": rates, "hover_aviary_reference": HOVER_AVIARY, "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "cpu_count": os.cpu_count()}
    print(f"{'variant':<14}{'steps/s (CPU)':>15}{'steps/s (wall)':>16}{'x PyBullet':>12}{'x HoverAviary':>15}")
    for name, r in rates.items():
        print(f"{name:<14}{r['cpu_rate']:>15.0f}{r['wall_rate']:>16.0f}{r['cpu_rate'] / base['cpu_rate']:>12.1f}"
              f"{r['cpu_rate'] / HOVER_AVIARY:>15.1f}")
    print(f"load average before {load_before}, after {result['load_average_after']}")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
