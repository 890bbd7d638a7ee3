"""The whole ``sim2real eval POLICY... --conditions ...`` pipeline as one function (the CLI and the demo call it)."""
from __future__ import annotations

import os
import time
from typing import Any

from sim2real.evaluation.run import EvalSettings, evaluate, summarize
from sim2real.progress import QUIET, Bars


def run_eval(policy_paths: list[str], launch: str | None, settings: EvalSettings, out_dir: str | None,
             bars: Bars = QUIET) -> tuple[str, dict[str, Any]]:
    """Load the policies (several = several seeds of one launch file), evaluate (progress on ``bars``), write the
    report.

    Returns (report directory, summary dict as in ``report.json``)."""
    from sim2real.evaluation.report import write_report
    from sim2real.launch import resolve
    from sim2real.policy_files import load_batch_policy

    config = resolve(launch) if launch else None
    policies, first = {}, None
    for i, path in enumerate(policy_paths):
        policy, cfg = load_batch_policy(path, config)
        first = first or cfg
        label = os.path.basename(os.path.normpath(path)) or f"policy{i}"
        policies[label if label not in policies else f"{label}-{i}"] = policy
    assert first is not None
    out_dir = out_dir or os.path.join("runs", f"eval-{time.strftime('%Y%m%d-%H%M%S')}")
    started = time.time()
    results = evaluate(policies, first, settings, out_dir, bars)
    summary = {"env_id": first["env"]["id"], "policies": list(policy_paths), "episodes": settings.episodes,
               "emulated_episodes": settings.emulated_episodes, "seed": settings.seed,
               "condition_order": list(settings.conditions), "conditions": summarize(results, settings.seed, settings.n_boot),
               "wall_time_s": round(time.time() - started, 1)}
    write_report(results, summary, out_dir)
    import json

    with open(os.path.join(out_dir, "report.json"), encoding="utf-8") as handle:
        return out_dir, json.load(handle)
