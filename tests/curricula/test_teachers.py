"""ALP-GMM, PLR, uniform/schedule teachers, the numpy GMM, build_teacher, and state round trips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from randomizers.curricula import (
    ALPGMMTeacher, PLRTeacher, ScheduleTeacher, Task, UniformTeacher, build_teacher, episode_signals,
)
from randomizers.curricula.gmm import best_gmm_by_aic
from randomizers.params import ParamSpace


def test_gmm_aic_finds_two_clusters() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal([0, 0], 0.1, (150, 2)), rng.normal([3, 3], 0.1, (150, 2))])
    gmm = best_gmm_by_aic(x, range(1, 5), rng)
    assert gmm.k == 2
    assert sorted(np.round(gmm.means[:, 0]).tolist()) == [0.0, 3.0]


def test_alp_gmm_concentrates_on_the_region_with_learning_progress(unit_square: ParamSpace) -> None:
    teacher = ALPGMMTeacher(unit_square, fit_rate=100, bootstrap=200, random_ratio=0.1, k_max=6, seed=0)
    progress = 0.0
    in_region = []
    for episode in range(1200):
        task = teacher.sample()
        hot = task["a.x"] < 0.25 and task["a.y"] < 0.25
        if hot:
            progress += 0.05  # the agent improves only here: successive nearby tasks score differently
        teacher.update(task, progress if hot else 0.0, None)
        if episode >= 800:
            in_region.append(hot)
    share = float(np.mean(in_region))
    assert share > 0.4, share  # uniform sampling would give 1/16
    assert teacher.metrics()["gmm_components"] >= 2


def test_plr_replays_high_score_levels_more_often(unit_square: ParamSpace) -> None:
    plr = PLRTeacher(unit_square, capacity=8, replay_prob=1.0, temperature=0.3, staleness_coef=0.1, min_fill=8,
                     seed=1)
    counts: dict[int, int] = {}
    for _ in range(2000):
        task = plr.sample()
        if task.level >= 0:
            counts[task.level] = counts.get(task.level, 0) + 1
        plr.update(task, 0.0, None, signals={"positive_value_loss": float(task["a.x"])})  # score = a.x
    by_score = sorted(plr.levels, key=lambda i: plr.levels[i]["values"]["a.x"])
    assert counts[by_score[-1]] > 3 * counts[by_score[0]]
    assert plr.metrics()["replay_fraction"] > 0.99


def test_plr_staleness_spreads_replay(unit_square: ParamSpace) -> None:
    plr = PLRTeacher(unit_square, score="success", capacity=5, replay_prob=1.0, staleness_coef=1.0, min_fill=5,
                     seed=2)
    for _ in range(5):
        plr.update(plr.sample(), 0.0, True)
    previous, replayed = None, []
    for _ in range(200):
        task = plr.sample()
        assert task.level != previous  # just drawn: staleness 0, probability 0
        previous = task.level
        replayed.append(task.level)
        plr.update(task, 0.0, True)
    assert len(np.bincount(replayed)) == 5 and min(np.bincount(replayed)) >= 25
    ids, p = plr.replay_distribution()
    assert p[ids.index(previous)] == 0.0 and p.sum() == pytest.approx(1.0)


def test_robust_plr_evaluates_new_levels_only_and_replaces_the_worst(unit_square: ParamSpace) -> None:
    plr = build_teacher({"name": "robust_plr", "capacity": 3, "replay_prob": 0.5, "min_fill": 1}, unit_square,
                        n_envs=1, seed=3)
    assert isinstance(plr, PLRTeacher) and plr.robust
    for _ in range(300):
        task = plr.sample()
        assert task.train == (task.level >= 0)
        plr.update(task, 0.0, None, signals={"positive_value_loss": float(task["a.y"])})
    assert len(plr.levels) == 3
    assert min(e["values"]["a.y"] for e in plr.levels.values()) > 0.9  # kept the highest-scoring levels


def test_max_mc_and_episode_signals(unit_square: ParamSpace) -> None:
    s = episode_signals([0.0, 0.0, 1.0], [0.5, 0.5, 0.5], last_value=0.0, gamma=1.0, gae_lambda=1.0)
    assert s == pytest.approx({"positive_value_loss": 0.5, "l1_value_loss": 0.5, "mean_value": 0.5})
    plr = PLRTeacher(unit_square, score="max_mc", capacity=4, min_fill=4, seed=0)
    task = plr.sample()
    plr.update(task, 3.0, None, signals={"mean_value": 1.0})
    assert next(iter(plr.levels.values()))["score"] == 2.0
    with pytest.raises(ValueError, match="mean_value"):
        plr.update(plr.sample(), 0.0, None)


def test_schedule_linear_and_step(space: ParamSpace) -> None:
    lin = ScheduleTeacher(space, {"dynamics.offset": [-0.5, 0.5]}, horizon=100, resolution=10)
    for _ in range(50):
        lin.update(lin.sample(), 0.0, None)
    assert lin.ranges()["dynamics.offset"] == pytest.approx([-0.3, 0.3])
    step = ScheduleTeacher(space, {"dynamics.offset": [-0.5, 0.5]}, horizon=100, mode="step", stages=2)
    for _ in range(49):
        step.update(step.sample(), 0.0, None)
    assert step.ranges()["dynamics.offset"] == pytest.approx([-0.1, 0.1])
    for _ in range(200):
        step.update(step.sample(), 0.0, None)
    assert step.ranges()["dynamics.offset"] == pytest.approx([-0.5, 0.5]) and len(step.pop_events()) == 2
    with pytest.raises(ValueError, match="end_ranges.*contain"):
        ScheduleTeacher(space, {"dynamics.offset": [0.0, 0.5]}, horizon=10)


def test_build_teacher_names_bad_options(space: ParamSpace) -> None:
    with pytest.raises(ValueError, match="'pb' is not an option of adr"):
        build_teacher({"name": "adr", "pb": 0.5}, space, 2, 0)
    with pytest.raises(ValueError, match="'name'.*'nope'"):
        build_teacher("nope", space, 2, 0)
    with pytest.raises(ValueError, match="'horizon' is required"):
        build_teacher({"name": "schedule", "end_ranges": {}}, space, 2, 0)
    with pytest.raises(ValueError, match="p_b"):
        build_teacher({"name": "adr", "p_b": 2.0}, space, 2, 0)
    assert isinstance(build_teacher("uniform", space, 2, 0), UniformTeacher)


CONFIGS = [
    {"name": "uniform"},
    {"name": "schedule", "end_ranges": {"dynamics.offset": [-0.5, 0.5]}, "horizon": 60},
    {"name": "adr", "p_b": 0.7, "buffer_size": 3},
    {"name": "adr", "mode": "workers", "boundary_share": 0.5, "buffer_size": 2, "eval_beyond": True},
    {"name": "alp_gmm", "fit_rate": 20, "bootstrap": 20, "k_max": 4},
    {"name": "plr", "score": "success", "capacity": 6, "min_fill": 3},
    {"name": "robust_plr", "score": "max_mc", "capacity": 6, "min_fill": 3},
]


def _outcome(task: Task, k: int) -> tuple[float, bool, dict[str, float]]:
    x = float(task["dynamics.mass"]) + float(task["dynamics.offset"])
    return x * k % 1.0, (k + int(100 * x)) % 3 != 0, {"mean_value": 0.3, "positive_value_loss": x}


def _drive(teacher, start: int, n: int) -> list[dict]:
    seen = []
    for k in range(start, start + n):
        task = teacher.sample(k % 2)
        ret, ok, signals = _outcome(task, k)
        teacher.update(task, ret, ok, signals=signals)
        seen.append({**task.to_dict(), "metrics": teacher.metrics()})
    return seen


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['name']}-{len(c)}")
def test_state_round_trips_and_resumes_identically(space: ParamSpace, config: dict) -> None:
    teacher = build_teacher(config, space, n_envs=2, seed=11)
    _drive(teacher, 0, 90)
    saved = json.loads(json.dumps(teacher.state_dict()))  # what a checkpoint file holds
    restored = build_teacher(config, space, n_envs=2, seed=999)
    restored.load_state_dict(saved)
    assert restored.state_dict() == saved
    assert _drive(restored, 90, 60) == _drive(teacher, 90, 60)
    with pytest.raises(ValueError, match="teacher"):
        build_teacher("uniform" if config["name"] != "uniform" else {"name": "adr"}, space, 2, 0).load_state_dict(saved)
