"""Quadrotor throughput: env steps/s next to the pure-PyBullet bound, measured in the same run.

For each control rate (48 Hz default, and 30 Hz = gym-pybullet-drones HoverAviary's rate) at 240 Hz physics:

* ``bare_step``: ``p.stepSimulation`` alone on the same scene (Crazyflie body over the ground plane);
* ``pybullet_bound``: the PyBullet work any PyBullet quadrotor needs per physics step when forces depend on the
  state (read pose and velocity, apply force and torque, step) with no Python model — the pure-physics bound;
* ``model``: our physics model (motor lag, rotor drag, ground effect) stepping at constant RPM;
* ``env_rpm`` / ``env_ctbr``: ``CrazyflieHover-v0`` env steps with a constant hover action, no resets (lag and
  drag on; CTBR runs the rate PID + mixer every physics step).

Env rates are env steps per CPU-second of this process (``time.process_time``: on a shared 2-core machine wall
clock mostly measures the neighbours); the other rows are converted to the env-step bound (physics steps/s ÷
substeps).

    nice -n 10 .venv/bin/python benchmarks/quad_throughput.py --seconds 4 --json benchmarks/figures/quad_throughput.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

import gymnasium as gym
import numpy as np
import pybullet as p

import sim2real.envs  # noqa: F401
from robots.quadrotor import crazyflie_spec
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig, QuadrotorPhysics

HOVER_AVIARY = 4750.0  # env steps/s, gym-pybullet-drones HoverAviary at 30 Hz / 240 Hz, no resets (reference doc)


def _interleaved(fns: dict, seconds: float, rounds: int = 15) -> dict[str, float]:
    """Calls per CPU-second of each ``fn(n)`` (process CPU time, so other processes on a shared machine do not
    count against us), the variants taking turns in short chunks; each reports its median chunk rate."""
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn(50)
    chunk = seconds / rounds
    for _ in range(rounds):
        for name, fn in fns.items():
            count, start = 0, time.process_time()
            while time.process_time() - start < chunk:
                fn(100)
                count += 100
            rates[name].append(count / (time.process_time() - start))
    return {name: float(np.median(r)) for name, r in rates.items()}


def measure(control_hz: float, seconds: float) -> dict[str, float]:
    spec = crazyflie_spec()
    config = QuadPhysicsConfig(control_hz=control_hz)
    model = QuadrotorPhysics(spec, config)
    model.reset((0, 0, 1), rpm=spec.hover_rpm)
    c, body = model.client, model.body
    force, torque = (0.0, 0.0, spec.weight), (0.0, 0.0, 0.0)

    def bare(n: int) -> None:
        for _ in range(n):
            p.stepSimulation(physicsClientId=c)

    def bound(n: int) -> None:
        for _ in range(n):
            pos, _ = p.getBasePositionAndOrientation(body, physicsClientId=c)
            p.getBaseVelocity(body, physicsClientId=c)
            p.applyExternalForce(body, -1, force, pos, p.WORLD_FRAME, physicsClientId=c)
            p.applyExternalTorque(body, -1, torque, p.WORLD_FRAME, physicsClientId=c)
            p.stepSimulation(physicsClientId=c)

    hover = [spec.hover_rpm] * 4

    def physics_model(n: int) -> None:
        for _ in range(n):
            model.step(hover)

    substeps = config.substeps
    fns = {"bare_step": bare, "pybullet_bound": bound, "model": physics_model}
    envs = []
    for mode in ("rpm", "ctbr"):
        env = gym.make("sim2real/CrazyflieHover-v0", action_mode=mode, physics={"control_hz": control_hz},
                       max_episode_steps=10**9).unwrapped
        env.reset(seed=0)
        envs.append(env)

        def env_steps(n: int, env=env, action=np.zeros(4, dtype=np.float32)) -> None:
            for _ in range(n):
                if env.step(action)[2]:
                    env.reset()

        fns[f"env_{mode}"] = env_steps
    rates = _interleaved(fns, seconds * len(fns))
    out = {"control_hz": control_hz, "substeps": substeps}
    for name, rate in rates.items():
        out[name] = rate if name.startswith("env_") else rate / substeps
    model.close()
    for env in envs:
        env.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per measurement")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [measure(hz, args.seconds) for hz in (48.0, 30.0)]
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print("| control Hz | bare step bound | PyBullet bound | model | env rpm | env ctbr | rpm / bound | ctbr / bound "
          "| rpm / HoverAviary |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['control_hz']:.0f} | {r['bare_step']:.0f} | {r['pybullet_bound']:.0f} | {r['model']:.0f} "
              f"| {r['env_rpm']:.0f} | {r['env_ctbr']:.0f} | {r['env_rpm'] / r['pybullet_bound']:.2f} "
              f"| {r['env_ctbr'] / r['pybullet_bound']:.2f} | {r['env_rpm'] / HOVER_AVIARY:.2f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"rows": rows, "hover_aviary_reference": HOVER_AVIARY, "load_average": os.getloadavg()},
                      handle, indent=2)


if __name__ == "__main__":
    main()
