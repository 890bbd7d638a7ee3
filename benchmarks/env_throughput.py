"""Arm environment throughput next to the pure-physics bound and panda-gym, measured side by side in one run.

For every registered arm task:
  * ``no_reset``: env steps/s stepping the unwrapped env with pre-drawn random actions (no resets);
  * ``with_reset``: the registered env (TimeLimit 50 steps) with a reset at every episode end;
  * ``bound``: the same scene stepped with ``stepSimulation`` only, divided by the substeps per env step;
  * ``physics_share``: fraction of an env step spent inside ``stepSimulation`` when the arm moves.
panda-gym's PandaReach-v3 / PandaPush-v3 are measured the same way when installed (``pip install -e .[bench]``).
Finally SubprocVecEnv with 2 workers vs 1 worker. Repeats are interleaved and medians reported.

    python benchmarks/env_throughput.py [--steps 1500] [--repeats 3] [--out benchmarks/results/env_throughput.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable

import gymnasium as gym
import numpy as np
import pybullet as p

import sim2real
from sim2real.envs import ARM_ENVS

PANDA_GYM = {"sim2real/PandaReach-v0": "PandaReach-v3", "sim2real/PandaPush-v0": "PandaPush-v3"}


def _actions(env: gym.Env, n: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


def rate_no_reset(env: gym.Env, steps: int) -> float:
    raw = env.unwrapped
    actions = _actions(env, steps)
    raw.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        raw.step(action)
    return steps / (time.perf_counter() - start)


def rate_with_reset(env: gym.Env, steps: int, seed: int = 0, clock=time.perf_counter) -> float:
    """Steps per second of ``clock`` (wall time by default; ``time.thread_time`` counts only this thread's CPU,
    which a loaded machine disturbs far less) with random actions, resetting at episode ends from ``seed``."""
    actions = _actions(env, steps)
    env.reset(seed=seed)
    start = clock()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (clock() - start)


def physics_bound(client: int, substeps: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps * substeps):
        p.stepSimulation(physicsClientId=client)
    return steps / (time.perf_counter() - start)


def physics_share(env: gym.Env, steps: int) -> float:
    """Fraction of wall time spent in stepSimulation while the env runs random actions."""
    raw = env.unwrapped
    world = raw.world
    inner = world.step
    spent = [0.0]

    def timed(substeps=None):
        t0 = time.perf_counter()
        inner(substeps)
        spent[0] += time.perf_counter() - t0

    world.step = timed
    try:
        actions = _actions(env, steps)
        raw.reset(seed=0)
        start = time.perf_counter()
        for action in actions:
            raw.step(action)
        return spent[0] / (time.perf_counter() - start)
    finally:
        del world.step


def panda_gym_bound(env: gym.Env, steps: int) -> float:
    sim = env.unwrapped.sim
    return physics_bound(sim.physics_client._client, sim.n_substeps, steps)


def vec_rate(n_envs: int, steps: int, config: dict | None = None) -> float:
    """Env steps/s of SB3's SubprocVecEnv (one process per env) on ``config``'s env (default launch file)."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from sim2real.train import make_env_fn
    from sim2real.launch import resolve

    config = config or resolve(None)
    vec = SubprocVecEnv([make_env_fn(config, rank) for rank in range(n_envs)])
    try:
        vec.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (steps, n_envs, *vec.action_space.shape)).astype(np.float32)
        vec.step(actions[0])
        start = time.perf_counter()
        for action in actions:
            vec.step(action)
        return steps * n_envs / (time.perf_counter() - start)
    finally:
        vec.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/env_throughput.json")
    args = parser.parse_args()
    try:
        import panda_gym  # noqa: F401
        have_panda_gym = True
    except ImportError:
        have_panda_gym = False

    envs = {eid: gym.make(eid) for eid in sorted(ARM_ENVS)}
    references = {eid: gym.make(ref) for eid, ref in PANDA_GYM.items()} if have_panda_gym else {}
    samples: dict[str, dict[str, list[float]]] = {}

    def record(key: str, metric: str, fn: Callable[[], float]) -> None:
        samples.setdefault(key, {}).setdefault(metric, []).append(fn())

    for _ in range(args.repeats):
        for eid, env in envs.items():
            raw = env.unwrapped
            record(eid, "no_reset", lambda: rate_no_reset(env, args.steps))
            record(eid, "with_reset", lambda: rate_with_reset(env, args.steps))
            record(eid, "bound", lambda: physics_bound(raw.world.client, raw.world.physics.substeps, args.steps))
            record(eid, "physics_share", lambda: physics_share(env, args.steps // 2))
            if eid in references:
                ref = references[eid]
                record(eid, "panda_gym_no_reset", lambda: rate_no_reset(ref, args.steps))
                record(eid, "panda_gym_with_reset", lambda: rate_with_reset(ref, args.steps))
                record(eid, "panda_gym_bound", lambda: panda_gym_bound(ref, args.steps))
        record("SubprocVecEnv", "one_worker", lambda: vec_rate(1, args.steps // 2))
        record("SubprocVecEnv", "two_workers", lambda: vec_rate(2, args.steps // 2))

    medians = {k: {m: statistics.median(v) for m, v in metrics.items()} for k, metrics in samples.items()}
    print(f"{'task':32s} {'no reset':>9s} {'w/ reset':>9s} {'bound':>8s} {'ratio':>6s} {'phys%':>6s} "
          f"{'panda-gym':>9s} {'pg bound':>9s} {'vs pg':>6s}")
    for eid in envs:
        m = medians[eid]
        ratio = m["no_reset"] / m["bound"]
        row = f"{eid:32s} {m['no_reset']:9.0f} {m['with_reset']:9.0f} {m['bound']:8.0f} {ratio:6.2f} " \
              f"{100 * m['physics_share']:5.0f}%"
        if "panda_gym_no_reset" in m:
            row += f" {m['panda_gym_no_reset']:9.0f} {m['panda_gym_bound']:9.0f} {m['no_reset'] / m['panda_gym_no_reset']:6.2f}"
        print(row)
    vec = medians["SubprocVecEnv"]
    print(f"SubprocVecEnv: 1 worker {vec['one_worker']:.0f} steps/s, 2 workers {vec['two_workers']:.0f} steps/s, "
          f"ratio {vec['two_workers'] / vec['one_worker']:.2f}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"steps": args.steps, "repeats": args.repeats, "medians": medians, "samples": samples}, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
