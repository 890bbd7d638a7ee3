"""``sim2real sweep LAUNCH key=v1,v2 ...``: one training per grid point, as Ray tasks, and one summary table.

Each point is a normal run directory (``OUT/<overrides>-s<seed>``: launch.yaml, checkpoints, final model) trained
by :func:`sim2real.train.train` inside a Ray task, then evaluated on the same seeded episodes for every point
(``eval.json`` in the run directory). A task that is lost with its node runs again and resumes its run from the
newest checkpoint. The summary groups points by their overrides other than ``seed``: final success rate per seed
and its mean with a 95 % percentile-bootstrap interval across seeds (``sweep.json``, ``sweep.md``).
"""
from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from sim2real.errors import UserError

EVAL_SEED = 1_000_000
"""First episode seed of every point's final evaluation (the same episodes for every point)."""
CPUS_PER_RUN = 1.0
"""CPUs each training task reserves."""


@dataclass
class SweepPoint:
    """One training: its overrides (``key=value``), the resolved launch file and its run directory."""

    overrides: list[str]
    config: dict[str, Any]
    run_dir: str

    @property
    def group(self) -> str:
        """The overrides other than ``seed`` (what the seeds of one setting share)."""
        return " ".join(o for o in self.overrides if not o.startswith("seed=")) or "(launch file)"


def split_values(text: str) -> list[str]:
    """``1e-3,3e-4`` → ``["1e-3", "3e-4"]``; commas inside brackets stay (``[64,64],[256,256]``)."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    if any(not v.strip() for v in values):
        raise UserError(f"{text!r}: an empty value in the list (write key=v1,v2,...)")
    return [v.strip() for v in values]


def grid(items: list[str]) -> list[list[str]]:
    """Every combination of ``key=v1,v2,...`` items, as lists of ``key=value`` overrides (first key slowest)."""
    axes = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{item!r}: expected key=value[,value...] (e.g. seed=0,1,2 algo.learning_rate=1e-3,3e-4)")
        axes.append([f"{key.strip()}={v}" for v in split_values(values)])
    return [list(point) for point in itertools.product(*axes)] if axes else [[]]


def _slug(overrides: list[str]) -> str:
    parts = [o for o in overrides if not o.startswith("seed=")]
    text = "-".join(f"{k.rsplit('.', 1)[-1]}{v}" for k, _, v in (p.partition("=") for p in parts)) or "run"
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


def plan(launch: str, items: list[str], out_dir: str) -> list[SweepPoint]:
    """Resolve every grid point (a bad value is a :class:`UserError` naming the point before anything runs)."""
    from sim2real.launch import resolve

    points = []
    for overrides in grid(items):
        try:
            config = resolve(launch, overrides)
        except UserError as err:
            raise UserError(f"{' '.join(overrides)}: {err}") from None
        run_dir = os.path.join(out_dir, f"{_slug(overrides)}-s{config['seed']}")
        if any(p.run_dir == run_dir for p in points):
            raise UserError(f"{' '.join(overrides)}: gives the same run directory as another point ({run_dir})")
        points.append(SweepPoint(overrides, config, run_dir))
    return points


def final_success(run_dir: str, episodes: int, n_envs: int = 4) -> dict[str, Any]:
    """Success rate and mean return of the run's final policy (any kind) over ``episodes`` seeded trials."""
    from sim2real.evaluation.run import _sim_env_factory
    from sim2real.evaluation.simulated import run_episodes
    from sim2real.policy_files import load_batch_policy

    policy, config = load_batch_policy(run_dir, None)
    seeds = [EVAL_SEED + i for i in range(episodes)]
    done = run_episodes(_sim_env_factory(config), policy, seeds, n_envs)
    return {"episodes": len(done), "success_rate": float(np.mean([e.success for e in done])),
            "mean_return": float(np.mean([e.episode_return for e in done])), "first_seed": EVAL_SEED}


def run_point(config: dict[str, Any], run_dir: str, eval_episodes: int) -> dict[str, Any]:
    """Train one point (resuming its run directory when a lost task runs again), then evaluate it."""
    from sim2real.io import atomic_write_json
    from sim2real.ray_backend.cluster import node_name
    from sim2real.train import train

    resume = os.path.isfile(os.path.join(run_dir, "launch.yaml"))
    train(config, run_dir=run_dir, resume=resume, progress=False)
    result = final_success(run_dir, eval_episodes)
    atomic_write_json(os.path.join(run_dir, "eval.json"), result)
    return {"run_dir": run_dir, "node": node_name(), **result}


def run_sweep(points: list[SweepPoint], out_dir: str, eval_episodes: int, address: str | None,
              on_result: Callable[[SweepPoint, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train and evaluate every point as Ray tasks; returns the summary (also written to ``sweep.json``/``.md``)."""
    from sim2real.io import atomic_write_json, atomic_write_text
    from sim2real.ray_backend.cluster import connect, import_ray

    os.makedirs(out_dir, exist_ok=True)
    # connect first: it decides how Ray is imported (a private instance stays on loopback)
    connection = connect(address, num_cpus=min(len(points), os.cpu_count() or 1))
    ray = import_ray()
    try:
        task = ray.remote(num_cpus=CPUS_PER_RUN, max_retries=1, scheduling_strategy="SPREAD")(run_point)
        refs = {task.remote(p.config, os.path.abspath(p.run_dir), eval_episodes): p for p in points}
        results: dict[str, dict[str, Any]] = {}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            point = refs[ready[0]]
            try:
                results[point.run_dir] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, UserError):
                    raise UserError(f"{' '.join(point.overrides)}: {cause}") from None
                raise
            if on_result is not None:
                on_result(point, results[point.run_dir])
    finally:
        connection.release()
    summary = summarize(points, results, eval_episodes)
    atomic_write_json(os.path.join(out_dir, "sweep.json"), summary)
    atomic_write_text(os.path.join(out_dir, "sweep.md"), "```\n" + summary_table(summary) + "\n```\n")
    return summary


def summarize(points: list[SweepPoint], results: dict[str, dict[str, Any]], eval_episodes: int) -> dict[str, Any]:
    """Per group of seeds: each seed's final success, their mean with a 95 % bootstrap interval across seeds."""
    from sim2real.evaluation.stats import bootstrap_ci

    rng = np.random.default_rng(0)
    groups: dict[str, list[SweepPoint]] = {}
    for point in points:
        groups.setdefault(point.group, []).append(point)
    rows = []
    for group, members in groups.items():
        rates = [results[p.run_dir]["success_rate"] for p in members]
        estimate = bootstrap_ci(rates, rng)
        rows.append({"overrides": group, "seeds": [p.config["seed"] for p in members], "success_per_seed": rates,
                     "success": estimate.as_dict(), "run_dirs": [p.run_dir for p in members],
                     "nodes": [results[p.run_dir].get("node") for p in members]})
    return {"eval_episodes": eval_episodes, "eval_first_seed": EVAL_SEED,
            "interval": "percentile bootstrap over seeds, 95 %", "groups": rows}


def summary_table(summary: dict[str, Any]) -> str:
    """One line per group: overrides, seeds, final success mean [95 % CI], per-seed values."""
    rows = [["overrides", "seeds", "final success (95 % CI over seeds)", "per seed"]]
    for g in summary["groups"]:
        s = g["success"]
        rows.append([g["overrides"], str(len(g["seeds"])),
                     f"{s['value']:.0%} [{s['ci_low']:.0%}, {s['ci_high']:.0%}]",
                     " ".join(f"{v:.0%}" for v in g["success_per_seed"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
