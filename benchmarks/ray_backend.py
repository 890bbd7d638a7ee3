"""Ray backend throughput next to the local backend, side by side in one run, and a scaling projection.

Measured on the launch file's env (default ``so101_reach``, 2 envs), in a private Ray instance on this machine
(2 logical CPUs, one actor per env unless said), the variants taking turns for ``--repeats`` rounds (medians):

* ``vec_step_*``: random-action env steps/s of SB3's ``SubprocVecEnv`` (one process per env), of
  :class:`~sim2real.ray_backend.vec_env.RayVecEnv` with 2 actors x 1 env and with 1 actor x 2 envs;
* ``sac_*`` / ``ppo_*``: stable-baselines3 ``learn`` steps/s (updates included) on a ``SubprocVecEnv`` vs a
  ``RayVecEnv`` (same config, same seed);
* ``rl2_*``: RL² ``train_rl2`` steps/s with ``workers: 2`` (:class:`~policies.subproc.SubprocTrialVecEnv`) vs
  :class:`~sim2real.ray_backend.trial_vec_env.RayTrialVecEnv` (2 actors);
* ``many_*`` (``--many N``): N envs in 2 Ray actors (N/2 envs each) against N ``SubprocVecEnv`` processes (PPO,
  stepping) and RL² with 2 local workers vs 2 actors: several envs per actor amortize the actor call;
* ``ray_rtt_ms``: round trip of a no-op actor call; ``env_step_ms``: one env step in this process.

The time-per-step ratio Ray / local is printed for each. The projection to N machines is a model, printed with its
assumptions (see BENCHMARKS.md "Ray backend (issue 22)").

    .venv/bin/python benchmarks/ray_backend.py --repeats 2 --many 16 --out benchmarks/results/ray_backend.json
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


def _config(launch: str, overrides: list[str]) -> dict[str, Any]:
    from sim2real.launch import resolve

    return resolve(launch, overrides)


def _vec_rate(vec: Any, steps: int) -> float:
    vec.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, vec.num_envs, *vec.action_space.shape))
    vec.step(actions[0].astype(np.float32))
    start = time.perf_counter()
    for action in actions.astype(np.float32):
        vec.step(action)
    return steps * vec.num_envs / (time.perf_counter() - start)


def _local_vec(config: dict[str, Any]) -> Any:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from sim2real.env_factory import make_env_fn

    vec = SubprocVecEnv([make_env_fn(config, rank) for rank in range(config["n_envs"])])
    vec.seed(config["seed"])
    return vec


def _ray_vec(config: dict[str, Any], actors: int) -> Any:
    from sim2real.env_factory import make_env_fn
    from sim2real.ray_backend.vec_env import RayVecEnv

    vec = RayVecEnv([make_env_fn(config, rank) for rank in range(config["n_envs"])], actors)
    vec.seed(config["seed"])
    return vec


def vec_step(config: dict[str, Any], kind: str, steps: int, actors: int = 2) -> float:
    """Random-action steps/s: ``subproc``, ``ray_2x1`` / ``ray_1x2`` (2 envs) or ``ray`` (``actors`` actors)."""
    actors = {"ray_2x1": 2, "ray_1x2": 1}.get(kind, actors)
    vec = _local_vec(config) if kind == "subproc" else _ray_vec(config, actors)
    try:
        return _vec_rate(vec, steps)
    finally:
        vec.close()


def learn_rate(config: dict[str, Any], kind: str, steps: int, actors: int | None = None) -> float:
    """SB3 ``learn`` env steps/s (after the model is built: rollouts and updates); Ray: ``actors`` actors (default
    one per env)."""
    from sim2real.train import build_model

    vec = _local_vec(config) if kind == "local" else _ray_vec(config, actors or config["n_envs"])
    try:
        model = build_model(config, vec, None)
        start = time.perf_counter()
        model.learn(steps)
        return model.num_timesteps / (time.perf_counter() - start)
    finally:
        vec.close()


def rl2_rate(config: dict[str, Any], kind: str, iterations: int, processes: int | None = None) -> float:
    """RL² training steps/s (``steps_per_s`` of the last iteration: rollout + update) with ``processes`` local
    workers or Ray actors (default one per env)."""
    processes = processes or config["n_envs"]
    from policies.config import RL2Config
    from policies.ppo import train_rl2
    from sim2real.env_factory import make_env_fn
    from sim2real.launch.loader import rl2_settings
    from sim2real.ray_backend.trial_vec_env import RayTrialVecEnv, _in_trials
    from policies.trial import TrialWrapper

    settings = rl2_settings(config)
    cfg = RL2Config.from_dict(settings)
    settings.update(total_steps=iterations * cfg.rollout_steps * config["n_envs"], checkpoint_every=10**6)
    fns = [make_env_fn(config, rank) for rank in range(config["n_envs"])]
    with tempfile.TemporaryDirectory() as run_dir:
        if kind == "local":
            result = train_rl2({**settings, "workers": processes}, fns, run_dir, resume=False,
                               tensorboard=False)
        else:
            vec = RayTrialVecEnv([_in_trials(fn, TrialWrapper, cfg.episodes_per_trial) for fn in fns],
                                 processes)
            try:
                result = train_rl2(settings, None, run_dir, vec_env=vec, resume=False, tensorboard=False)
            finally:
                vec.close()
    return float(result.stats["steps_per_s"])


def ray_rtt_ms(calls: int = 300) -> float:
    """Median round trip (ms) of a no-op call to an actor (ray.get of one method call)."""
    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        def ping(self) -> int:
            return 0

    actor = Echo.remote()
    ray.get(actor.ping.remote())
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        ray.get(actor.ping.remote())
        times.append(time.perf_counter() - start)
    ray.kill(actor)
    return 1e3 * statistics.median(times)


def env_step_ms(config: dict[str, Any], steps: int) -> float:
    from sim2real.env_factory import make_env_fn

    env = make_env_fn(config, 0)()
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
    return 1e3 * (time.perf_counter() - start) / steps


def projection(env_ms: float, rtt_ms: float, learner_ms_per_step: float, envs_per_actor: int,
               actors_per_machine: int, machines: list[int]) -> list[dict[str, float]]:
    """Synchronous-step model: one vec step takes ``envs_per_actor * env_ms + rtt_ms`` (all actors step at once,
    the slowest sets the pace) plus the learner's work for the batch; throughput = batch / step time."""
    rows = []
    for n in machines:
        batch = n * actors_per_machine * envs_per_actor
        step_ms = envs_per_actor * env_ms + rtt_ms + learner_ms_per_step * batch
        rows.append({"machines": n, "envs": batch, "steps_per_s": 1e3 * batch / step_ms,
                     "learner_bound_steps_per_s": 1e3 / learner_ms_per_step if learner_ms_per_step else float("inf")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launch", default="so101_reach")
    parser.add_argument("--rl2-launch", default="panda_reach_rl2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vec-steps", type=int, default=1000)
    parser.add_argument("--sac-steps", type=int, default=1000)
    parser.add_argument("--ppo-steps", type=int, default=2048)
    parser.add_argument("--rl2-iterations", type=int, default=2)
    parser.add_argument("--many", type=int, default=0,
                        help="also measure N envs in 2 actors (N/2 envs per actor) against N SubprocVecEnv "
                             "processes (PPO, stepping) and 2 local RL² workers (default 0: not measured)")
    parser.add_argument("--only", help="comma-separated variant names to run (default: all)")
    parser.add_argument("--out", default="benchmarks/results/ray_backend.json")
    args = parser.parse_args()

    import torch

    from sim2real.ray_backend.cluster import connect

    torch.set_num_threads(1)
    connection = connect(None, num_cpus=2)
    sac = _config(args.launch, ["n_envs=2", "algo.learning_starts=200"])
    ppo = _config(args.launch, ["n_envs=2", "algo.name=ppo", "algo.n_steps=512", "algo.batch_size=256"])
    rl2 = _config(args.rl2_launch, ["n_envs=2"])
    variants: dict[str, Callable[[], float]] = {
        "vec_step_subproc": lambda: vec_step(sac, "subproc", args.vec_steps),
        "vec_step_ray_2x1": lambda: vec_step(sac, "ray_2x1", args.vec_steps),
        "vec_step_ray_1x2": lambda: vec_step(sac, "ray_1x2", args.vec_steps),
        "sac_local": lambda: learn_rate(sac, "local", args.sac_steps),
        "sac_ray": lambda: learn_rate(sac, "ray", args.sac_steps),
        "ppo_local": lambda: learn_rate(ppo, "local", args.ppo_steps),
        "ppo_ray": lambda: learn_rate(ppo, "ray", args.ppo_steps),
        "rl2_local": lambda: rl2_rate(rl2, "local", args.rl2_iterations),
        "rl2_ray": lambda: rl2_rate(rl2, "ray", args.rl2_iterations),
    }
    if args.many:
        many = [f"n_envs={args.many}"]
        ppo_many = _config(args.launch, [*many, "algo.name=ppo", "algo.n_steps=128", "algo.batch_size=256"])
        rl2_many = _config(args.rl2_launch, many)
        variants.update({
            "many_vec_step_subproc": lambda: vec_step(ppo_many, "subproc", args.vec_steps // 4),
            "many_vec_step_ray": lambda: vec_step(ppo_many, "ray", args.vec_steps // 4, actors=2),
            "many_ppo_local": lambda: learn_rate(ppo_many, "local", 4 * args.ppo_steps),
            "many_ppo_ray": lambda: learn_rate(ppo_many, "ray", 4 * args.ppo_steps, actors=2),
            "many_rl2_local": lambda: rl2_rate(rl2_many, "local", args.rl2_iterations, processes=2),
            "many_rl2_ray": lambda: rl2_rate(rl2_many, "ray", args.rl2_iterations, processes=2),
        })
    if args.only:
        unknown = set(args.only.split(",")) - set(variants)
        if unknown:
            parser.error(f"--only: unknown variants {sorted(unknown)} (known: {', '.join(variants)})")
        variants = {name: run for name, run in variants.items() if name in args.only.split(",")}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_index in range(args.repeats):
            for name, run in variants.items():
                samples[name].append(run())
                print(f"round {round_index + 1}: {name} {samples[name][-1]:.0f} steps/s", flush=True)
        rtt = ray_rtt_ms()
    finally:
        connection.release()
    env_ms = env_step_ms(sac, 500)
    rates = {name: statistics.median(values) for name, values in samples.items()}
    pairs = {f"{kind}_time_ratio_ray_vs_local": (f"{kind}_local", f"{kind}_ray")
             for kind in ("sac", "ppo", "rl2", "many_ppo", "many_rl2")}
    pairs.update({f"vec_step_time_ratio_ray_{shape}_vs_subproc": ("vec_step_subproc", f"vec_step_ray_{shape}")
                  for shape in ("2x1", "1x2")})
    pairs["many_vec_step_time_ratio_ray_vs_subproc"] = ("many_vec_step_subproc", "many_vec_step_ray")
    ratios = {name: rates[local] / rates[ray] for name, (local, ray) in pairs.items() if {local, ray} <= rates.keys()}
    model: dict[str, Any] = {"env_step_ms": env_ms, "ray_rtt_ms": rtt}
    if {"ppo_local", "vec_step_subproc"} <= rates.keys():
        ppo_learner_ms = max(0.0, 1e3 / rates["ppo_local"] - 1e3 / rates["vec_step_subproc"])  # per env step
        model.update(ppo_learner_ms_per_step=ppo_learner_ms, envs_per_actor=4, actors_per_machine=8,
                     rows=projection(env_ms, rtt, ppo_learner_ms, 4, 8, [1, 2, 4, 8, 16]))
    result = {"launch": args.launch, "rl2_launch": args.rl2_launch, "repeats": args.repeats, "many": args.many,
              "cpus": os.cpu_count(),
              "steps_per_s": rates, "samples": samples, **ratios, "projection": model}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples",)}, indent=2))


if __name__ == "__main__":
    main()
