"""RL² training throughput with the trial envs in 1 vs 2 worker processes, next to SB3's SubprocVecEnv, in one run.

On the launch file's env (randomizers included) and for each ``--n-envs``:

* ``rl2_train_w{0,1,2}``: :func:`policies.ppo.train_rl2` env steps per wall second, rollouts and PPO updates
  included (``steps_per_s`` of its last iteration; worker start-up excluded), with ``rl2.workers`` 0 (every env in
  the trainer's process), 1 and 2;
* ``rl2_step_w{1,2}``: :class:`policies.subproc.SubprocTrialVecEnv` alone, random actions (what the workers can give);
* ``sb3_subproc_{1,2}``: SB3 ``SubprocVecEnv`` of 1 env vs 2 envs (one process each), random actions, the same env
  (without the trial wrapper): the reference for what two worker processes reach on this machine.

The variants take turns (``--repeats`` rounds) and medians are reported, so a neighbour's load hits all of them.
Then, in this process alone (``rl2.workers`` 0, CPU time of this process, which neighbours disturb far less than wall
time), where a training step's CPU goes: env stepping, the learner's work during the rollout (policy forward, sampling,
bookkeeping) and the PPO update. Only the first can move to workers, so ``(env + learner + update) / (env / 2 +
learner + update)`` is the ceiling of the 2-vs-1-worker training ratio on two free cores (Amdahl).

    .venv/bin/python benchmarks/rl2_workers.py --launch launch/panda_reach_rl2.yaml --n-envs 2,4,8 --repeats 3 \\
        --out benchmarks/results/rl2_workers.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any, Callable

import numpy as np
import torch
from env_throughput import vec_rate  # benchmarks/ is on sys.path when this script runs


def _config(launch: str, n_envs: int) -> dict[str, Any]:
    from sim2real.launch import resolve

    return resolve(launch, [f"n_envs={n_envs}"])


def rl2_train_rate(config: dict[str, Any], workers: int, iterations: int) -> float:
    """Env steps/s of ``iterations`` RL² iterations (rollout + update), measured from the first step."""
    from policies.ppo import train_rl2
    from sim2real.launch.loader import rl2_settings
    from sim2real.train import make_env_fn

    settings = rl2_settings(config)
    rollout = settings.get("rollout_steps", 256)
    settings.update(workers=workers, total_steps=iterations * rollout * config["n_envs"], checkpoint_every=10**6)
    fns = [make_env_fn(config, rank) for rank in range(config["n_envs"])]
    with tempfile.TemporaryDirectory() as run_dir:
        result = train_rl2(settings, fns, run_dir, resume=False, tensorboard=False)
    return float(result.stats["steps_per_s"])


def _random_actions(space: Any, steps: int, n: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (steps, n, *space.shape)).astype(np.float32)


def rl2_step_rate(config: dict[str, Any], workers: int, steps: int) -> float:
    """Env steps/s of the worker vec env alone (random actions, trials of ``rl2.episodes_per_trial`` episodes)."""
    from policies.config import RL2Config
    from policies.ppo import make_vec_env
    from sim2real.launch.loader import rl2_settings
    from sim2real.train import make_env_fn

    cfg = RL2Config.from_dict({**rl2_settings(config), "workers": workers})
    vec = make_vec_env(cfg, [make_env_fn(config, rank) for rank in range(config["n_envs"])])
    try:
        vec.reset(seed=0)
        actions = torch.as_tensor(_random_actions(vec.action_space, steps, vec.num_envs))
        vec.step(actions[0])
        start = time.perf_counter()
        for action in actions:
            vec.step(action)
        return steps * vec.num_envs / (time.perf_counter() - start)
    finally:
        vec.close()


def cpu_shares(config: dict[str, Any], iterations: int) -> dict[str, float]:
    """CPU seconds per 1000 env steps of env stepping, the learner's rollout work and the PPO update (in-process)."""
    import policies.ppo as ppo
    from policies.vec import SyncTrialVecEnv
    from sim2real.launch.loader import rl2_settings
    from sim2real.train import make_env_fn

    settings = rl2_settings(config)
    steps = iterations * settings.get("rollout_steps", 256) * config["n_envs"]
    settings.update(workers=0, total_steps=steps, checkpoint_every=10**6)
    spent = {"env": 0.0, "collect": 0.0, "update": 0.0}
    originals = {"env": SyncTrialVecEnv.step, "collect": ppo.collect, "update": ppo.ppo_update}

    def timed(key: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return originals[key](*args, **kwargs)
            finally:
                spent[key] += time.process_time() - start
        return call

    SyncTrialVecEnv.step, ppo.collect, ppo.ppo_update = timed("env"), timed("collect"), timed("update")
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            ppo.train_rl2(settings, [make_env_fn(config, rank) for rank in range(config["n_envs"])], run_dir,
                          resume=False, tensorboard=False)
    finally:
        SyncTrialVecEnv.step, ppo.collect, ppo.ppo_update = originals["env"], originals["collect"], originals["update"]
    env, learner, update = spent["env"], spent["collect"] - spent["env"], spent["update"]
    per = 1000.0 / steps
    return {"env_s": env * per, "learner_s": learner * per, "update_s": update * per,
            "env_share": env / (env + learner + update),
            "two_worker_ceiling": (env + learner + update) / (env / 2 + learner + update)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launch", default="launch/panda_reach_rl2.yaml")
    parser.add_argument("--n-envs", default="2,4", help="comma-separated env counts for the RL² rows")
    parser.add_argument("--iterations", type=int, default=4, help="RL² iterations per training measurement")
    parser.add_argument("--steps", type=int, default=600, help="vec-env steps per stepping measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/rl2_workers.json")
    args = parser.parse_args()
    counts = [int(n) for n in args.n_envs.split(",")]
    base = _config(args.launch, 2)
    load_before = os.getloadavg()
    samples: dict[str, list[float]] = {}

    def record(key: str, fn: Callable[[], float]) -> None:
        samples.setdefault(key, []).append(fn())
        print(f"  {key}: {samples[key][-1]:.0f} steps/s", flush=True)

    for round_ in range(args.repeats):
        print(f"round {round_ + 1}/{args.repeats}", flush=True)
        for n in counts:
            config = _config(args.launch, n)
            for workers in (0, 1, 2):
                record(f"n{n}/rl2_train_w{workers}", lambda: rl2_train_rate(config, workers, args.iterations))
            for workers in (1, 2):
                record(f"n{n}/rl2_step_w{workers}", lambda: rl2_step_rate(config, workers, args.steps))
        for procs in (1, 2):
            record(f"sb3_subproc_{procs}", lambda: vec_rate(procs, args.steps, base))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    ratios = {f"n{n}/rl2_train_2_vs_1": medians[f"n{n}/rl2_train_w2"] / medians[f"n{n}/rl2_train_w1"] for n in counts}
    ratios.update({f"n{n}/rl2_step_2_vs_1": medians[f"n{n}/rl2_step_w2"] / medians[f"n{n}/rl2_step_w1"]
                   for n in counts})
    ratios["sb3_subproc_2_vs_1"] = medians["sb3_subproc_2"] / medians["sb3_subproc_1"]
    print(f"\n{'n_envs':>6s} {'train w0':>9s} {'train w1':>9s} {'train w2':>9s} {'w2/w1':>6s} "
          f"{'step w1':>8s} {'step w2':>8s} {'w2/w1':>6s}")
    for n in counts:
        m = {k.split("/", 1)[1]: v for k, v in medians.items() if k.startswith(f"n{n}/")}
        print(f"{n:6d} {m['rl2_train_w0']:9.0f} {m['rl2_train_w1']:9.0f} {m['rl2_train_w2']:9.0f} "
              f"{ratios[f'n{n}/rl2_train_2_vs_1']:6.2f} {m['rl2_step_w1']:8.0f} {m['rl2_step_w2']:8.0f} "
              f"{ratios[f'n{n}/rl2_step_2_vs_1']:6.2f}")
    print(f"SB3 SubprocVecEnv: 1 process {medians['sb3_subproc_1']:.0f} steps/s, 2 processes "
          f"{medians['sb3_subproc_2']:.0f} steps/s, ratio {ratios['sb3_subproc_2_vs_1']:.2f}")
    shares = {n: cpu_shares(_config(args.launch, n), args.iterations) for n in counts}
    for n, share in shares.items():
        print(f"n_envs {n}: CPU s per 1000 env steps: env {share['env_s']:.2f}, learner in rollout "
              f"{share['learner_s']:.2f}, PPO update {share['update_s']:.2f}; env share {share['env_share']:.0%}; "
              f"2-worker training ceiling {share['two_worker_ceiling']:.2f}x")
    load = {"before": list(load_before), "after": list(os.getloadavg()), "cpus": os.cpu_count()}
    print(f"load average before {load_before[0]:.1f}, after {load['after'][0]:.1f} on {os.cpu_count()} CPUs")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"launch": args.launch, "n_envs": counts, "iterations": args.iterations, "steps": args.steps,
                   "repeats": args.repeats, "load_average": load, "medians": medians, "ratios": ratios,
                   "cpu_shares": shares,
                   "samples": samples}, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
