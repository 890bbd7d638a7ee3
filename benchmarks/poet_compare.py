"""POET vs uniform DR, ADR, a direct linear curriculum and training on the target alone (issue 24, item 3).

Task: SO-101 Reach (SAC + HER, 30-step episodes) whose commanded end-effector displacement is rotated by
θ = ``actuation.action_rotation`` about the vertical axis (a miscalibrated command frame). The policy never sees θ,
so one memoryless policy cannot serve every θ at once; the target environment is θ* = ``--target`` rad (default
2.5 rad, 143°: a nominal policy drives the tool away from the goal there). Every method gets the same number of
training env steps (``--steps``, all agents together for POET) and the same learner settings:

- ``poet``: :mod:`randomizers.curricula.poet` through ``sim2real train`` (``curriculum: poet``, θ in [0, π], root
  θ = 0, mutation std 0.15 × π); ``poet_wide`` the same with mutation std 0.35 × π. Their evaluation episodes are
  extra and reported.
- ``uniform``: θ ~ U(0, π) every episode.
- ``adr``: θ range starts at [0, 0], moves by Δ = 0.2 rad (p_b 0.5, buffer 5, t_H 0.8, t_L 0.4) within [0, π].
- ``linear``: θ = f θ* with f rising linearly from 0 to 1 over the first 80 % of the budget's episodes, then θ*.
- ``direct``: θ = θ* from the start.

Evaluation (deterministic policy): 10 episodes (goal seeds 50 000 + j) at each θ on the path f θ*, f = 0, 0.2, …, 1.
A single-agent method is evaluated with its agent; POET with the agent of the population niche nearest to that θ
(chosen by environment, not by evaluation results). "Hardest solved" = the largest f with success >= 80 %.

    nice -n 5 .venv/bin/python benchmarks/poet_compare.py --steps 6000 --seeds 0 1 --methods poet uniform adr linear \
        --jobs 2 --out-dir runs/poet_compare
    nice -n 10 .venv/bin/python benchmarks/poet_compare.py --steps 6000 --seeds 0 --methods poet_wide \
        --out-dir runs/poet_compare
    .venv/bin/python benchmarks/poet_compare.py --report-only --seeds 0 1 --out-dir runs/poet_compare
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from randomizers.curricula.base import Task, Teacher
from randomizers.params import ParamSpace

METHODS = ("poet", "poet_wide", "uniform", "adr", "linear", "direct")
POET_MUTATION = {"poet": 0.15, "poet_wide": 0.35}  # std of a mutation, fraction of [0, π]
PARAM = "actuation.action_rotation"
FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
EVAL_EPISODES, EVAL_SEED = 10, 50_000
SOLVED = 0.8
LEARNER = ["eval.every_steps=1000000000", "eval.episodes=1"]  # SAC + HER as in launch/so101_reach_poet.yaml
POET_OPTIONS = {"params": [PARAM], "population_size": 3, "mutation_scale": 0.15, "candidates": 3,
                "max_admitted": 1, "mc_low": 0.2, "mc_high": 0.8, "solved_threshold": SOLVED,
                "steps_per_generation": 500, "eval_episodes": 10, "reproduce_every": 1, "transfer_every": 2}


def base_config(steps: int, seed: int, out_dir: str, method: str) -> dict[str, Any]:
    """The launch file every method shares (launch/so101_reach_poet.yaml with θ the only POET param)."""
    from sim2real.launch import resolve

    overrides = [f"budget.total_timesteps={steps}", f"seed={seed}", f"output_dir={out_dir}",
                 f"checkpoint.every_steps={steps}", f"name=poet_compare_{method}", *LEARNER]
    config = resolve("launch/so101_reach_poet.yaml", overrides)
    config["curriculum_options"] = dict(POET_OPTIONS, mutation_scale=POET_MUTATION.get(method, 0.15))
    return config


class LinearPath(Teacher):
    """θ = f θ* with f = min(1, episodes / horizon): the direct linear curriculum (a moving point); horizon 0 is
    the target from the first episode."""

    name = "linear_path"

    def __init__(self, space: ParamSpace, target: float, horizon: int, seed: int) -> None:
        super().__init__(space, seed)
        self.target, self.horizon = float(target), int(horizon)

    def sample(self, env_index: int = 0) -> Task:
        f = min(1.0, self.episodes / self.horizon) if self.horizon > 0 else 1.0
        return Task(self.space.sample(self.rng, fixed={PARAM: f * self.target}))


def train_single(method: str, config: dict[str, Any], run_dir: str, target: float) -> None:
    """One SAC + HER agent under ``method``'s teacher (uniform, adr, linear, direct) for the budget."""
    import torch

    from randomizers.curricula import build_teacher
    from randomizers.curricula.sb3 import CurriculumCallback
    from sim2real.train import build_model, make_vec_env

    torch.set_num_threads(1)
    config = dict(config, curriculum=None, curriculum_options=None)
    env = make_vec_env(config, 1)
    space = ParamSpace.from_dict(env.env_method("get_randomization_space", indices=[0])[0])
    steps, seed = config["budget"]["total_timesteps"], config["seed"]
    if method == "uniform":
        space.set_range(PARAM, *space[PARAM].limits)  # [0, π]
        teacher = build_teacher("uniform", space, 1, seed)
    elif method == "adr":
        teacher = build_teacher({"name": "adr", "params": [PARAM], "p_b": 0.5, "buffer_size": 5, "t_high": 0.8,
                                 "t_low": 0.4, "delta": 0.2}, space, 1, seed)
    elif method == "linear":
        teacher = LinearPath(space, target, horizon=int(0.8 * steps / config["env"]["max_episode_steps"]), seed=seed)
    else:
        teacher = LinearPath(space, target, horizon=0, seed=seed)  # f = 1 from the first episode
    model = build_model(config, env, None)
    model.learn(steps, callback=CurriculumCallback(teacher, run_dir=run_dir))
    model.save(os.path.join(run_dir, "model.zip"))
    env.close()


def evaluate_path(config: dict[str, Any], agents: list[tuple[float, str]], target: float) -> dict[str, list[bool]]:
    """Success per episode at each path point f θ*, each point run by the agent whose θ is nearest."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sim2real.agents import Sb3Policy
    from sim2real.evaluation.simulated import run_episodes
    from sim2real.poet_train import PinnedEnv
    from sim2real.sb3_safe_load import load_sb3_model

    config = dict(config, curriculum=None, curriculum_options=None)
    models: dict[str, Any] = {}
    out = {}
    for f in FRACTIONS:
        theta = f * target
        path = min(agents, key=lambda a: (abs(a[0] - theta), a[1]))[1]
        if path not in models:
            models[path] = load_sb3_model(config, path, DummyVecEnv([PinnedEnv(config, {}, 0)]))
        env = PinnedEnv(config, {PARAM: theta}, 0, 200_000)
        seeds = [EVAL_SEED + j for j in range(EVAL_EPISODES)]
        out[f"{f:.1f}"] = [e.success for e in run_episodes(lambda _i: env(), Sb3Policy(models[path]), seeds, 1)]
    return out


def run_one(method: str, seed: int, steps: int, out_dir: str, target: float) -> dict[str, Any]:
    from sim2real.train import train

    run_dir = os.path.join(out_dir, f"{method}-s{seed}")
    os.makedirs(run_dir, exist_ok=True)
    config = base_config(steps, seed, out_dir, method)
    t0 = time.time()
    extra: dict[str, Any] = {}
    if method in POET_MUTATION:
        train(config, run_dir=run_dir, progress=False)
        final = json.load(open(os.path.join(run_dir, "final", "poet.json"), encoding="utf-8"))
        ckpt = os.path.join(run_dir, "checkpoints", f"step-{final['timesteps']}", "agents")
        agents = [(n["values"][PARAM], os.path.join(ckpt, f"niche-{n['id']}", "model.zip"))
                  for n in final["population"]]
        extra = {"solved_thetas": [s["values"][PARAM] for s in final["solved"]],
                 "population_thetas": [n["values"][PARAM] for n in final["population"]],
                 "archived": len(final["archive"]), "generations": final["generations"],
                 "evaluation_episodes": final["evaluation_episodes"]}
    else:
        train_single(method, config, run_dir, target)
        agents = [(0.0, os.path.join(run_dir, "model.zip"))]
    train_s = time.time() - t0
    result = {"method": method, "seed": seed, "steps": steps, "target": target, "train_s": train_s,
              "path": evaluate_path(config, agents, target), **extra}
    with open(os.path.join(run_dir, "result.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    print(f"{method} seed {seed}: " + ", ".join(f"{k}: {np.mean(v):.0%}" for k, v in result["path"].items())
          + f" ({train_s:.0f} s)", flush=True)
    return result


def hardest_solved(path: dict[str, list[bool]]) -> float:
    """Largest path fraction f with success >= 80 % (0 when even θ = 0 is not solved: reported as -)."""
    solved = [float(f) for f, s in path.items() if np.mean(s) >= SOLVED]
    return max(solved) if solved else float("nan")


def report(results: list[dict[str, Any]], target: float) -> str:
    from sim2real.evaluation.stats import bootstrap_ci, wilson_ci

    rng = np.random.default_rng(0)
    head = " | ".join(f"θ = {f * target:.1f}" for f in FRACTIONS)
    rows = [f"| method | {head} | success at θ* (95 % CI) | hardest solved θ per seed | seeds |",
            "|---" * (len(FRACTIONS) + 4) + "|"]
    for method in METHODS:
        rs = sorted((r for r in results if r["method"] == method), key=lambda r: r["seed"])
        if not rs:
            continue
        cells = []
        for f in FRACTIONS:
            pooled = [x for r in rs for x in r["path"][f"{f:.1f}"]]
            cells.append(f"{np.mean(pooled):.0%}")
        at_target = [x for r in rs for x in r["path"]["1.0"]]
        w = wilson_ci(int(sum(at_target)), len(at_target))
        hardest = [hardest_solved(r["path"]) * target for r in rs]
        shown = ", ".join("–" if math.isnan(h) else f"{h:.1f}" for h in hardest)
        rows.append(f"| {method} | {' | '.join(cells)} | {w.value:.0%} [{w.low:.0%}, {w.high:.0%}] | {shown} | "
                    f"{len(rs)} |")
    poet = [r for r in results if r["method"] in POET_MUTATION]
    if poet:
        rows.append("")
        for r in poet:
            solved = sorted(r["solved_thetas"])
            rows.append(f"{r['method']} seed {r['seed']}: {r['generations']} generations, environments solved "
                        f"during training θ = {', '.join(f'{t:.2f}' for t in solved) or 'none'}; population θ = "
                        f"{', '.join(f'{t:.2f}' for t in sorted(r['population_thetas']))}; {r['archived']} archived; "
                        f"{r['evaluation_episodes']} evaluation episodes ({r['train_s']:.0f} s)")
        for method in POET_MUTATION:
            best = [max(r["solved_thetas"]) for r in poet if r["method"] == method and r["solved_thetas"]]
            if len(best) > 1:
                e = bootstrap_ci(best, rng)
                rows.append(f"{method}: hardest environment solved during training, mean θ {e.value:.2f} rad "
                            f"[{e.low:.2f}, {e.high:.2f}] (bootstrap over seeds)")
    for method in METHODS[2:]:
        for r in results:
            if r["method"] == method:
                rows.append(f"{method} seed {r['seed']}: {r['train_s']:.0f} s")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--target", type=float, default=2.5, help="θ* in rad")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out-dir", default="runs/poet_compare")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.report_only:
        run_all(run_one, args.methods, args.seeds, args.jobs, args.steps, args.out_dir, args.target)
    print(report(read_results(args.out_dir, METHODS, args.seeds), args.target))


def run_all(run_one_fn: Any, methods: list[str], seeds: list[int], jobs: int, *args: Any) -> None:
    """``run_one_fn(method, seed, *args)`` for every seed and method, ``jobs`` at a time in worker processes."""
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_one_fn, m, s, *args) for s in seeds for m in methods]
        for future in futures:
            future.result()


def read_results(out_dir: str, methods: tuple[str, ...], seeds: list[int]) -> list[dict[str, Any]]:
    """The ``OUT_DIR/METHOD-sSEED/result.json`` files that exist, in method then seed order."""
    results = []
    for m in methods:
        for s in seeds:
            path = os.path.join(out_dir, f"{m}-s{s}", "result.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    results.append(json.load(handle))
    return results


if __name__ == "__main__":
    main()
