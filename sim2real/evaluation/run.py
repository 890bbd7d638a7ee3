"""``evaluate``: every requested condition for one or more policies (seeds), metrics with CIs, transfer gaps."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sim2real.agents import BatchPolicy
from sim2real.errors import UserError
from sim2real.evaluation.conditions import condition_config, dynamics_ranges, not_applicable
from sim2real.evaluation.simulated import Episode, run_episodes
from sim2real.evaluation.stats import bootstrap_ci, gap_ci, iqm, rate_gap_ci, wilson_ci
from sim2real.progress import QUIET, Bars

METRICS = ("success", "return", "final_distance", "localization_error")
HIGHER_IS_BETTER = {"success": True, "return": True, "final_distance": False, "localization_error": False}


@dataclass
class EvalSettings:
    """Episodes per condition and policy, first episode seed, environments stepped together, videos per condition,
    emulated episodes (real time: ~3 s each), texture directory and reality profile."""

    conditions: list[str]
    episodes: int = 50
    seed: int = 1_000_000
    n_envs: int = 4
    videos: int = 2
    emulated_episodes: int | None = None
    textures: str | None = None
    reality: str | None = None
    n_boot: int = 2000
    watchdog_periods: float = 5.0
    backend: str = "local"  # or "ray": simulated episodes as Ray tasks (sim2real.ray_backend.evaluation)
    ray_address: str | None = None


@dataclass
class ConditionResult:
    name: str
    episodes: dict[str, list[Episode]] = field(default_factory=dict)  # policy label → episodes
    facts: dict[str, Any] = field(default_factory=dict)

    def values(self, metric: str, label: str | None = None) -> np.ndarray:
        """Per-episode values of ``metric`` (pooled over policies unless ``label``), NaN/None dropped."""
        labels = [label] if label else list(self.episodes)
        out = []
        for lab in labels:
            for ep in self.episodes[lab]:
                value = {"success": float(ep.success), "return": ep.episode_return,
                         "final_distance": ep.final_distance, "localization_error": ep.localization_error}[metric]
                if value is not None and np.isfinite(value):
                    out.append(float(value))
        return np.asarray(out)


def _sim_env_factory(config: dict[str, Any]) -> Callable[[int], Any]:
    from sim2real.env_factory import make_env_fn

    return lambda rank: make_env_fn(config, rank)()


def _tally(bars: Bars, bar: int, label: str) -> Callable[[Episode], None]:
    """Episode callback advancing ``bar`` by one, its status the successes of policy ``label`` so far."""
    counts = [0, 0]

    def on_episode(episode: Episode) -> None:
        counts[0] += 1
        counts[1] += bool(episode.success)
        bars.update(bar, advance=1, status=f"{label}: {counts[1]}/{counts[0]} succeeded")

    return on_episode


def evaluate(policies: dict[str, BatchPolicy], config: dict[str, Any], settings: EvalSettings, workdir: str,
             bars: Bars = QUIET) -> list[ConditionResult]:
    """Episodes of every condition for every policy; episode ``i`` uses seed ``settings.seed + i`` in each
    simulated condition (the same goals and draws for every policy); a policy with memory (RL²) plays a trial of
    its ``episodes_per_trial`` episodes per seed, in the world the seed sampled. ``bars`` shows one bar per condition
    (episodes done of all policies) or, when not drawn, one line per condition and policy."""
    from sim2real.evaluation.emulated import check_emulatable, run_emulated

    from sim2real.launch.randomizers import validate_randomizers

    if "emulated" in settings.conditions:
        check_emulatable(config)
    for name in settings.conditions:  # every user mistake (texture directory, ...) before the first episode
        if name != "emulated":  # also where not applicable: a bad --textures is a mistake all the same
            validate_randomizers(condition_config(name, config, settings.textures))
    results = []
    remote = None
    if settings.backend == "ray":
        from sim2real.ray_backend.evaluation import RayEpisodes

        remote = RayEpisodes(settings.ray_address, settings.n_envs)
    seeds = [settings.seed + i for i in range(settings.episodes)]
    n_emulated = settings.emulated_episodes or min(settings.episodes, 10)
    for name in settings.conditions:
        result = ConditionResult(name)
        reason = not_applicable(name, config)
        if reason:
            result.facts["not_applicable"] = reason
            bars.line(f"{name}: n/a ({reason})")
            results.append(result)
            continue
        trials = n_emulated if name == "emulated" else settings.episodes
        bar = bars.add(name, total=trials * sum(p.episodes_per_trial for p in policies.values()))
        for label, policy in policies.items():
            bars.line(f"{name}: {label} ...")
            on_episode = _tally(bars, bar, label)
            if name == "emulated":
                episodes, facts = run_emulated(policy, config, n_emulated, settings.seed,
                                               os.path.join(workdir, "emulated", label), settings.reality,
                                               settings.watchdog_periods, on_episode)
                result.facts[label] = facts
            else:
                cond = condition_config(name, config, settings.textures)
                try:
                    if remote is not None:  # started now, collected below (while the emulated condition runs)
                        remote.submit(result, label, cond, policy, seeds, settings.videos, on_episode)
                        episodes = []
                    else:
                        episodes = run_episodes(_sim_env_factory(cond), policy, seeds, settings.n_envs,
                                                settings.videos, on_episode)
                except ValueError as err:  # texture sets and Params validate when the env is wrapped
                    raise UserError(f"{name}: {err}") from None
                result.facts["randomizers"] = cond["randomizers"]
                if name == "heldout-dynamics":
                    result.facts["dynamics_ranges"] = dynamics_ranges(cond)
            result.episodes[label] = episodes
        results.append(result)
    if remote is not None:
        remote.collect()
    return results


def _estimate(metric: str, values: np.ndarray, rng: np.random.Generator, n_boot: int) -> dict[str, float | int]:
    """Mean of ``values`` with its 95 % interval: Wilson score for the success rate, percentile bootstrap else."""
    if metric == "success":
        return wilson_ci(int(round(values.sum())), int(values.size)).as_dict()
    return bootstrap_ci(values, rng, n_boot=n_boot).as_dict()


def adaptation_by_episode(result: ConditionResult, rng: np.random.Generator, n_boot: int = 2000
                          ) -> list[dict[str, Any]]:
    """Within-trial adaptation: per episode index of a trial (0 first), the mean return (bootstrap 95 % CI) and the
    success rate (Wilson 95 % CI) over every trial and policy; empty when trials are single episodes."""
    episodes = [e for eps in result.episodes.values() for e in eps if np.isfinite(e.episode_return)]
    count = 1 + max((e.index_in_trial for e in episodes), default=0)
    if count < 2:
        return []
    rows = []
    for k in range(count):
        returns = np.asarray([e.episode_return for e in episodes if e.index_in_trial == k])
        successes = [float(e.success) for e in episodes if e.index_in_trial == k]
        if returns.size:
            rows.append({"episode": k + 1, "return": bootstrap_ci(returns, rng, n_boot=n_boot).as_dict(),
                         "success": wilson_ci(int(sum(successes)), len(successes)).as_dict()})
    return rows


def summarize(results: list[ConditionResult], seed: int, n_boot: int = 2000) -> dict[str, Any]:
    """Every number of the report: per condition and metric the mean with a 95 % CI over pooled episodes (Wilson
    score for the success rate, bootstrap for continuous metrics; ``interval`` names which), the same per policy
    (seed), the IQM across policies with a bootstrap CI when there are several, and the transfer gap
    train − condition (Newcombe's score interval for success rates, bootstrap else)."""
    rng = np.random.default_rng(seed)
    train = next((r for r in results if r.name == "train"), None)
    out: dict[str, Any] = {}
    for result in results:
        metrics: dict[str, Any] = {}
        for metric in METRICS:
            values = result.values(metric)
            if values.size == 0:
                continue
            entry: dict[str, Any] = {"interval": "wilson" if metric == "success" else "bootstrap",
                                     "mean": _estimate(metric, values, rng, n_boot)}
            per_policy = {lab: result.values(metric, lab) for lab in result.episodes}
            entry["per_policy"] = {lab: _estimate(metric, v, rng, n_boot) for lab, v in per_policy.items() if v.size}
            means = [float(e["value"]) for e in entry["per_policy"].values()]
            if len(means) > 1:
                entry["iqm"] = bootstrap_ci(means, rng, statistic=iqm, n_boot=n_boot).as_dict()
            if train is not None and result is not train and train.values(metric).size:
                gap = rate_gap_ci(train.values(metric), values) if metric == "success" \
                    else gap_ci(train.values(metric), values, rng, n_boot=n_boot)
                entry["gap"] = gap.as_dict()
            metrics[metric] = entry
        out[result.name] = {"metrics": metrics, "facts": result.facts,
                            "not_applicable": result.facts.get("not_applicable"),
                            "adaptation": adaptation_by_episode(result, rng, n_boot),
                            "episodes": {lab: [e.as_dict() for e in eps] for lab, eps in result.episodes.items()}}
    return out
