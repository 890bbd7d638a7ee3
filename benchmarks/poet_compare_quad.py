"""POET against uniform DR, ADR, a direct linear curriculum and training on the target, on Crazyflie hover.

Second POET comparison of issue 24 (the first, ``benchmarks/poet_compare.py``, is SO-101 Reach). Environments are
points (L, g) of (``quadrotor.latency`` s, ``quadrotor.wind.gust_std`` m/s); every other quadrotor Param is
randomized as in ``launch/crazyflie_hover_fast.yaml``. All methods train PPO (the fast hover recipe,
``launch/crazyflie_hover_poet.yaml``) on 256 vehicles of the batched numpy model for the same number of training
env steps (``--steps``; POET: all its agents together) from the start environment S = (0 s, 1 m/s) towards the
target T = (0.1 s, 0 m/s):

- ``poet``: :mod:`randomizers.curricula.poet` through ``sim2real train`` (``curriculum: poet``, root S). Its
  evaluation episodes (64 vehicles per score) are extra and reported.
- ``uniform``: (L, g) ~ U of the box S and T span, [0, 0.1] × [0, 1], every episode.
- ``adr``: ADR over both dims from the point range S (Δ 0.01 s / 0.25 m/s, p_b 0.5, buffer 20, t_H 0.8, t_L 0.4).
- ``linear``: (L, g) = S + f (T − S), f rising linearly from 0 to 1 over the first 80 % of the budget's episodes
  (counted at 240 steps each; crashed episodes are shorter, so f reaches 1 somewhat earlier), then T.
- ``direct``: T from the first episode.

Evaluation: the deterministic policy on 100 vehicles of the batched model (same starts and draws for every method,
seed offset 500 000) at each point S + f (T − S), f = 0, 0.2, …, 1; success = within 5 cm of the hover point at the
end of the 5 s episode (the task's own success). POET is evaluated with the agent of its final population's niche
nearest (normalized distance) to the point, chosen by environment, not by outcome.

From fresh weights (POET: 65 536 steps per agent and generation):

    nice -n 5 .venv/bin/python benchmarks/poet_compare_quad.py --steps 1500000 --seeds 0 1 --jobs 2 \\
        --out-dir runs/poet_compare_quad
    .venv/bin/python benchmarks/poet_compare_quad.py --report-only --seeds 0 1 --out-dir runs/poet_compare_quad

From the fast hover policy (``--init``: every method, and POET's root, start from it; its row is reported too):

    .venv/bin/sim2real train crazyflie_hover_fast --run-dir runs/hover_fast_s0
    nice -n 5 .venv/bin/python benchmarks/poet_compare_quad.py --steps 1500000 --generation-steps 49152 \\
        --init runs/hover_fast_s0/final/model.zip --seeds 0 1 --jobs 2 --out-dir runs/poet_compare_quad_warm
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Any

import numpy as np

from poet_compare import hardest_solved, read_results, run_all  # benchmarks/poet_compare.py: the SO-101 comparison
from randomizers.curricula.base import Task, Teacher
from randomizers.params import ParamSpace

LAUNCH = "launch/crazyflie_hover_poet.yaml"
LATENCY, GUST = "quadrotor.latency", "quadrotor.wind.gust_std"
START = {LATENCY: 0.0, GUST: 1.0}
TARGET = {LATENCY: 0.1, GUST: 0.0}
METHODS = ("poet", "uniform", "adr", "linear", "direct")
FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
EVAL_VEHICLES, EVAL_OFFSET = 100, 500_000


def on_path(f: float) -> dict[str, float]:
    """The point S + f (T − S)."""
    return {k: START[k] + f * (TARGET[k] - START[k]) for k in START}


def base_config(steps: int, seed: int, out_dir: str, method: str, generation_steps: int,
                init: str | None = None) -> dict[str, Any]:
    """The launch file every method shares; ``generation_steps``: POET's training steps per agent and generation;
    ``init``: a model.zip every method starts from (POET: its root agent)."""
    from sim2real.launch import resolve

    overrides = [f"budget.total_timesteps={steps}", f"seed={seed}", f"output_dir={out_dir}",
                 f"checkpoint.every_steps={steps}", f"name=poet_compare_quad_{method}",
                 f"curriculum_options.steps_per_generation={generation_steps}"]
    config = resolve(LAUNCH, overrides)
    if init is not None:
        config["curriculum_options"]["root_agent"] = init
    return config


class LinearPath(Teacher):
    """(L, g) = S + f (T − S) with f = min(1, episodes / horizon) (horizon 0: T from the first episode); the other
    Params drawn from their ranges."""

    name = "linear_path"

    def __init__(self, space: ParamSpace, horizon: int, seed: int) -> None:
        super().__init__(space, seed)
        self.horizon = int(horizon)

    def sample(self, env_index: int = 0) -> Task:
        f = min(1.0, self.episodes / self.horizon) if self.horizon > 0 else 1.0
        return Task(self.space.sample(self.rng, fixed=on_path(f)))


def single_teacher(method: str, space: ParamSpace, steps: int, config: dict[str, Any]) -> Teacher:
    """The teacher of a single-agent method over ``space`` (its POET dims at S)."""
    from randomizers.curricula import build_teacher

    seed = config["seed"]
    if method == "uniform":
        for k in START:
            space.set_range(k, min(START[k], TARGET[k]), max(START[k], TARGET[k]))
        return build_teacher("uniform", space, config["n_envs"], seed)
    if method == "adr":
        return build_teacher({"name": "adr", "params": [LATENCY, GUST], "start": "ranges", "p_b": 0.5,
                              "buffer_size": 20, "t_high": 0.8, "t_low": 0.4,
                              "delta": {LATENCY: 0.01, GUST: 0.25}}, space, config["n_envs"], seed)
    horizon = int(0.8 * steps / config["env"]["max_episode_steps"]) if method == "linear" else 0
    return LinearPath(space, horizon, seed)


def train_single(method: str, config: dict[str, Any], run_dir: str, init: str | None = None) -> None:
    """One PPO agent on the batched model under ``method``'s teacher for the budget (from ``init``'s weights)."""
    import torch

    from randomizers.curricula.sb3 import CurriculumCallback
    from sim2real.env_factory import make_batched_vec_env
    from sim2real.sb3_safe_load import build_model, load_sb3_model

    torch.set_num_threads(1)
    config = dict(config, curriculum=None, curriculum_options=None)
    env = make_batched_vec_env(config, 0)
    space = ParamSpace.from_dict(env.env_method("get_randomization_space", indices=[0])[0])
    steps = int(config["budget"]["total_timesteps"])
    model = build_model(config, env, None) if init is None else load_sb3_model(config, init, env)
    teacher = single_teacher(method, space, steps, config)
    model.learn(steps, reset_num_timesteps=True, callback=CurriculumCallback(teacher, run_dir=run_dir))
    model.save(os.path.join(run_dir, "model.zip"))


def nearest_agent(agents: list[tuple[dict[str, float], str]], point: dict[str, float]) -> str:
    """The model path of the agent whose environment is nearest ``point`` (coordinates scaled by the S–T span)."""
    scale = {k: abs(TARGET[k] - START[k]) or 1.0 for k in START}

    def distance(values: dict[str, float]) -> float:
        return math.sqrt(sum(((values[k] - point[k]) / scale[k]) ** 2 for k in START))

    return min(agents, key=lambda a: (distance(a[0]), a[1]))[1]


def evaluate_path(config: dict[str, Any], agents: list[tuple[dict[str, float], str]]) -> dict[str, list[bool]]:
    """Success per vehicle at each path point, each point flown by the nearest agent."""
    from sim2real.poet_train import batched_successes, pinned_batched_env
    from sim2real.sb3_safe_load import load_sb3_model

    config = dict(config, curriculum=None, curriculum_options=None)
    models: dict[str, Any] = {}
    out = {}
    for f in FRACTIONS:
        path = nearest_agent(agents, on_path(f))
        if path not in models:
            models[path] = load_sb3_model(config, path, pinned_batched_env(config, {}, EVAL_OFFSET, 1))
        out[f"{f:.1f}"] = batched_successes(config, models[path], on_path(f), EVAL_VEHICLES, EVAL_OFFSET)
    return out


def run_one(method: str, seed: int, steps: int, out_dir: str, generation_steps: int,
            init: str | None = None) -> dict[str, Any]:
    from sim2real.train import train

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_dir = os.path.join(out_dir, f"{method}-s{seed}")
    os.makedirs(run_dir, exist_ok=True)
    config = base_config(steps, seed, out_dir, method, generation_steps, init)
    t0, c0 = time.time(), time.process_time()
    extra: dict[str, Any] = {}
    if method == "poet":
        train(config, run_dir=run_dir, progress=False)
        with open(os.path.join(run_dir, "final", "poet.json"), encoding="utf-8") as handle:
            final = json.load(handle)
        ckpt = os.path.join(run_dir, "checkpoints", f"step-{final['timesteps']}", "agents")
        agents = [(n["values"], os.path.join(ckpt, f"niche-{n['id']}", "model.zip")) for n in final["population"]]
        extra = {"solved": [s["values"] for s in final["solved"]],
                 "population": [n["values"] for n in final["population"]],
                 "archived": len(final["archive"]), "generations": final["generations"],
                 "evaluation_episodes": final["evaluation_episodes"]}
    else:
        train_single(method, config, run_dir, init)
        agents = [(START, os.path.join(run_dir, "model.zip"))]
    result = {"method": method, "seed": seed, "steps": steps, "init": init, "train_s": time.time() - t0,
              "train_cpu_s": time.process_time() - c0, "path": evaluate_path(config, agents), **extra}
    with open(os.path.join(run_dir, "result.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    print(f"{method} seed {seed}: " + ", ".join(f"{k}: {np.mean(v):.0%}" for k, v in result["path"].items())
          + f" ({result['train_s']:.0f} s wall, {result['train_cpu_s']:.0f} CPU-s)", flush=True)
    return result


def start_model_row(init: str, out_dir: str) -> dict[str, Any]:
    """The path evaluation of model ``init`` without further training (cached in ``OUT_DIR/start-model.json``)."""
    path = os.path.join(out_dir, "start-model.json")
    if not os.path.isfile(path):
        config = base_config(1, 0, out_dir, "start", 1)
        os.makedirs(out_dir, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"method": "start model", "seed": 0, "path": evaluate_path(config, [(START, init)])}, handle)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def report(results: list[dict[str, Any]]) -> str:
    """The comparison table (Wilson 95 % intervals over pooled vehicles) and POET's run summaries."""
    from sim2real.evaluation.stats import bootstrap_ci, wilson_ci

    head = " | ".join(f"f = {f:.1f}" for f in FRACTIONS)
    rows = [f"| method | {head} | success at T (95 % CI) | hardest solved f per seed | seeds |",
            "|---" * (len(FRACTIONS) + 4) + "|"]
    for method in ("start model", *METHODS):
        rs = sorted((r for r in results if r["method"] == method), key=lambda r: r["seed"])
        if not rs:
            continue
        cells = [f"{np.mean([x for r in rs for x in r['path'][f'{f:.1f}']]):.0%}" for f in FRACTIONS]
        at_target = [x for r in rs for x in r["path"]["1.0"]]
        w = wilson_ci(int(sum(at_target)), len(at_target))
        hardest = ", ".join("–" if math.isnan(h) else f"{h:.1f}" for h in (hardest_solved(r["path"]) for r in rs))
        rows.append(f"| {method} | {' | '.join(cells)} | {w.value:.0%} [{w.low:.0%}, {w.high:.0%}] | {hardest} | "
                    f"{len(rs)} |")
    rows.append("")
    rng = np.random.default_rng(0)
    for method in METHODS:
        rs = [r for r in results if r["method"] == method]
        if len(rs) > 1:
            per_seed = [float(np.mean(r["path"]["1.0"])) for r in rs]
            e = bootstrap_ci(per_seed, rng)
            rows.append(f"{method}: success at T per seed {', '.join(f'{v:.0%}' for v in per_seed)}; mean "
                        f"{e.value:.0%} [{e.low:.0%}, {e.high:.0%}] (bootstrap over seeds)")
    for r in results:
        if r["method"] == "poet":
            pop = "; ".join(f"({v[LATENCY]:.3f} s, {v[GUST]:.2f} m/s)" for v in r["population"])
            top = max((v[LATENCY] for v in r["solved"]), default=float("nan"))
            rows.append(f"poet seed {r['seed']}: {r['generations']} generations, {len(r['solved'])} environments "
                        f"solved (largest latency solved {top:.3f} s), final population {pop}, {r['archived']} "
                        f"archived, {r['evaluation_episodes']} evaluation episodes")
    rows += [f"{r['method']} seed {r['seed']}: {r['train_s']:.0f} s wall, {r['train_cpu_s']:.0f} CPU-s"
             for r in results if "train_s" in r]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_500_000)
    parser.add_argument("--generation-steps", type=int, default=65_536,
                        help="POET: training steps per agent and generation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--init", default=None, help="model.zip every method starts from (default: fresh weights)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out-dir", default="runs/poet_compare_quad")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.report_only:
        run_all(run_one, args.methods, args.seeds, args.jobs, args.steps, args.out_dir, args.generation_steps,
                args.init)
    results = []
    if args.init is not None:  # the start model itself, untrained further: the row every method starts from
        results.append(start_model_row(args.init, args.out_dir))
    print(report(results + read_results(args.out_dir, METHODS, args.seeds)))


if __name__ == "__main__":
    main()
