"""RL² training throughput with the trial envs in 0, 1 and 2 worker processes, side by side in one run.

On the launch file's env (randomizers included) and for each ``--n-envs``: :func:`policies.ppo.train_rl2` env steps
per wall second, rollouts and PPO updates included (worker start-up excluded), with ``rl2.workers`` 0 (every env in
the trainer's process), 1 and 2. With 2 workers the rollout is pipelined: the trainer computes one half's actions
while the other half steps. The variants take turns (``--repeats`` rounds) and medians are reported, so a
neighbour's load hits all of them; SB3's ``SubprocVecEnv`` (1 vs 2 processes, random actions, the same env) runs in
the same rounds as the reference for what two processes reach on this machine at that moment.

CPU time (which neighbours disturb less than wall time) is read for the trainer (``time.process_time``; its PPO
updates apart) and for each worker (``/proc/<pid>/stat``), per 1000 env steps: it shows where the time goes, and
``(trainer + workers) / wall`` how many cores a variant kept busy. ``2-core estimate`` is the 2-vs-1 ratio these CPU
times give on two free cores: with 1 worker the trainer and the worker take turns (``trainer + workers``); with 2 the
rollout's CPU (trainer's rollout work + workers) is shared by the two cores and the PPO update runs alone
(``update + (rollout trainer + workers) / 2``).

    nice -n 5 .venv/bin/python benchmarks/rl2_workers.py --n-envs 8,16 --iterations 2 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

from env_throughput import vec_rate  # benchmarks/ is on sys.path when this script runs

from sim2real.io import atomic_write_json

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _config(launch: str, n_envs: int) -> dict[str, Any]:
    from sim2real.launch import resolve

    return resolve(launch, [f"n_envs={n_envs}"])


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15 of stat)


def rl2_train(config: dict[str, Any], workers: int, iterations: int) -> dict[str, float]:
    """One :func:`train_rl2` run of ``iterations`` iterations: steps/s and CPU-s per 1000 env steps."""
    import policies.ppo as ppo
    from policies.config import RL2Config
    from policies.ppo import make_vec_env, train_rl2
    from sim2real.launch.loader import rl2_settings
    from sim2real.train import make_env_fn

    settings = rl2_settings(config)
    rollout = settings.get("rollout_steps", 256)
    steps = iterations * rollout * config["n_envs"]
    settings.update(workers=workers, total_steps=steps, checkpoint_every=10**6)
    vec = make_vec_env(RL2Config.from_dict(settings), [make_env_fn(config, rank) for rank in range(config["n_envs"])])
    pids = [p.pid for p in getattr(vec, "processes", [])]
    update_cpu = [0.0]
    update = ppo.ppo_update

    def timed_update(*args: Any, **kwargs: Any) -> dict[str, float]:
        start = time.process_time()
        try:
            return update(*args, **kwargs)
        finally:
            update_cpu[0] += time.process_time() - start

    ppo.ppo_update = timed_update
    try:
        workers_before = sum(_process_cpu_s(pid) for pid in pids)
        learner_before = time.process_time()
        with tempfile.TemporaryDirectory() as run_dir:
            result = train_rl2(settings, None, run_dir, vec_env=vec, resume=False, tensorboard=False)
        learner = time.process_time() - learner_before
        workers_cpu = sum(_process_cpu_s(pid) for pid in pids) - workers_before
    finally:
        ppo.ppo_update = update
        vec.close()
    per = 1000.0 / steps
    wall = steps / float(result.stats["steps_per_s"])
    return {"steps_per_s": float(result.stats["steps_per_s"]), "learner_cpu_s": learner * per,
            "update_cpu_s": update_cpu[0] * per, "workers_cpu_s": workers_cpu * per,
            "cores_busy": (learner + workers_cpu) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launch", default="launch/panda_reach_rl2.yaml")
    parser.add_argument("--n-envs", default="8,16", help="comma-separated env counts")
    parser.add_argument("--iterations", type=int, default=2, help="RL² iterations per training measurement")
    parser.add_argument("--sb3-steps", type=int, default=400, help="vec-env steps per SB3 SubprocVecEnv measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/rl2_workers.json")
    args = parser.parse_args()
    counts = [int(n) for n in args.n_envs.split(",")]
    load_before = os.getloadavg()
    started = time.perf_counter()
    samples: dict[str, list[dict[str, float]]] = {}
    for round_ in range(args.repeats):
        print(f"round {round_ + 1}/{args.repeats} (load average {os.getloadavg()[0]:.1f})", flush=True)
        for n in counts:
            config = _config(args.launch, n)
            for workers in (0, 1, 2):
                sample = rl2_train(config, workers, args.iterations)
                samples.setdefault(f"n{n}/w{workers}", []).append(sample)
                print(f"  n_envs {n}, {workers} workers: {sample['steps_per_s']:.0f} steps/s, CPU-s per 1000 steps: "
                      f"trainer {sample['learner_cpu_s']:.2f} (update {sample['update_cpu_s']:.2f}), "
                      f"workers {sample['workers_cpu_s']:.2f}; "
                      f"cores busy {sample['cores_busy']:.2f}", flush=True)
        for procs in (1, 2):
            rate = vec_rate(procs, args.sb3_steps, _config(args.launch, 2))
            samples.setdefault(f"sb3_subproc_{procs}", []).append({"steps_per_s": rate})
            print(f"  SB3 SubprocVecEnv, {procs} processes: {rate:.0f} steps/s", flush=True)
    medians = {key: {m: statistics.median(s[m] for s in runs) for m in runs[0]} for key, runs in samples.items()}
    ratios: dict[str, float] = {}
    print(f"\n{'n_envs':>6s} {'w0 steps/s':>10s} {'w1 steps/s':>10s} {'w2 steps/s':>10s} {'w2/w1':>6s} {'w2/w0':>6s} "
          f"{'cpu w1':>7s} {'cpu w2':>7s} {'2-core estimate':>15s}")
    for n in counts:
        w0, w1, w2 = (medians[f"n{n}/w{k}"] for k in (0, 1, 2))
        cpu1 = w1["learner_cpu_s"] + w1["workers_cpu_s"]
        cpu2 = w2["learner_cpu_s"] + w2["workers_cpu_s"]
        two_cores = w2["update_cpu_s"] + (cpu2 - w2["update_cpu_s"]) / 2
        ratios.update({f"n{n}/train_2_vs_1": w2["steps_per_s"] / w1["steps_per_s"],
                       f"n{n}/train_2_vs_0": w2["steps_per_s"] / w0["steps_per_s"],
                       f"n{n}/cpu_estimate_2_vs_1": cpu1 / two_cores})
        print(f"{n:6d} {w0['steps_per_s']:10.0f} {w1['steps_per_s']:10.0f} {w2['steps_per_s']:10.0f} "
              f"{ratios[f'n{n}/train_2_vs_1']:6.2f} {ratios[f'n{n}/train_2_vs_0']:6.2f} {cpu1:7.2f} {cpu2:7.2f} "
              f"{ratios[f'n{n}/cpu_estimate_2_vs_1']:15.2f}")
    ratios["sb3_subproc_2_vs_1"] = medians["sb3_subproc_2"]["steps_per_s"] / medians["sb3_subproc_1"]["steps_per_s"]
    print(f"SB3 SubprocVecEnv (reference, same rounds): 1 process {medians['sb3_subproc_1']['steps_per_s']:.0f} "
          f"steps/s, 2 processes {medians['sb3_subproc_2']['steps_per_s']:.0f} steps/s, "
          f"ratio {ratios['sb3_subproc_2_vs_1']:.2f}")
    load = {"before": list(load_before), "after": list(os.getloadavg()), "cpus": os.cpu_count()}
    print(f"load average before {load_before[0]:.1f}, after {load['after'][0]:.1f} on {os.cpu_count()} CPUs; "
          f"{time.perf_counter() - started:.0f} s")
    for n in counts:
        print(f"RL² TRAINING, n_envs {n}: 2 workers vs 1 = {ratios[f'n{n}/train_2_vs_1']:.2f}x "
              f"(target >= 1.6x); vs 0 workers = {ratios[f'n{n}/train_2_vs_0']:.2f}x; "
              f"2-core estimate from CPU times {ratios[f'n{n}/cpu_estimate_2_vs_1']:.2f}x")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, {"launch": args.launch, "n_envs": counts, "iterations": args.iterations,
                                 "repeats": args.repeats, "load_average": load, "medians": medians, "ratios": ratios,
                                 "samples": samples})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
