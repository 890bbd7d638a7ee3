"""ADR: scripted performance widens/narrows the right boundary by Δ, respects hard limits and the initial range,
discards stale results, detects boundaries by index; entropy by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from randomizers.curricula import ADRTeacher, Task
from randomizers.params import ParamSpace


def _run(teacher: ADRTeacher, episodes: int, success) -> None:
    for _ in range(episodes):
        task = teacher.sample(0)
        teacher.update(task, 0.0, success(task))


def test_widens_each_boundary_by_delta_when_mean_reaches_t_high(space: ParamSpace) -> None:
    adr = ADRTeacher(space, p_b=1.0, buffer_size=5, delta=0.02, seed=1)
    assert adr.ranges()["dynamics.mass"] == [1.0, 1.0] and adr.ranges()["dynamics.offset"] == [0.0, 0.0]
    _run(adr, 200, lambda t: True)
    events = adr.pop_events()
    assert events and all(e["action"] == "widen" for e in events)
    for e in events:
        assert e["new"] - e["old"] == pytest.approx(0.02 if e["side"] == "high" else -0.02)
    moves = {b: adr.moves[b] for b in adr.moves}
    lo, hi = adr.ranges()["dynamics.offset"]
    assert lo == pytest.approx(-0.02 * moves[2]) and hi == pytest.approx(0.02 * moves[3])


def test_narrows_when_mean_reaches_t_low_but_never_inside_initial_range(space: ParamSpace) -> None:
    adr = ADRTeacher(space, params=["dynamics.offset"], p_b=1.0, buffer_size=4, delta=0.05, start="ranges", seed=2)
    _run(adr, 80, lambda t: True)
    widened = adr.ranges()["dynamics.offset"]
    assert widened[0] < -0.1 and widened[1] > 0.1
    _run(adr, 40, lambda t: False)
    assert any(e["action"] == "narrow" for e in adr.pop_events())
    _run(adr, 400, lambda t: False)
    assert adr.ranges()["dynamics.offset"] == pytest.approx([-0.1, 0.1])  # back to, never inside, the initial range


def test_middle_performance_keeps_the_bound_and_clears_the_buffer(space: ParamSpace) -> None:
    adr = ADRTeacher(space, params=["dynamics.offset"], p_b=1.0, buffer_size=4, t_high=0.8, t_low=0.2, seed=3)
    outcomes = iter([True, False] * 100)
    _run(adr, 100, lambda t: next(outcomes))
    assert adr.ranges()["dynamics.offset"] == [0.0, 0.0] and adr.pop_events() == []
    assert all(len(b) < 4 for b in adr.buffers.values())


def test_never_beyond_hard_limits(space: ParamSpace) -> None:
    adr = ADRTeacher(space, p_b=1.0, buffer_size=2, delta=0.03, seed=4)
    _run(adr, 2000, lambda t: True)
    low, high = adr.ranges()["dynamics.mass"]
    assert high == 1.1 and low == pytest.approx(0.5)  # clipped exactly to the hard limits
    assert adr.space["dynamics.mass"].limits == (0.5, 1.1)


def test_multiplicative_delta_and_eval_beyond(space: ParamSpace) -> None:
    adr = ADRTeacher(space, params=["dynamics.mass"], p_b=1.0, buffer_size=1, delta=0.1,
                     delta_mode={"dynamics.mass": "multiplicative"}, eval_beyond=True, seed=5)
    task = adr.sample(0)
    b = task.boundary
    expected = 1.1 if b % 2 else 1.0 / 1.1
    assert task["dynamics.mass"] == pytest.approx(expected)  # evaluated at bound + Δ
    adr.update(task, 0.0, True)
    assert adr.space.get_bound(b) == pytest.approx(expected)
    with pytest.raises(ValueError, match="delta_mode.*dynamics.offset"):
        ADRTeacher(space, delta_mode="multiplicative")  # offset starts at 0


def test_moved_boundary_discards_results_drawn_before_the_move(space: ParamSpace) -> None:
    adr = ADRTeacher(space, params=["dynamics.offset"], p_b=1.0, buffer_size=3, seed=6)
    drawn = [adr.sample(0) for _ in range(40)]
    high = [t for t in drawn if t.boundary == 3]
    for t in high[:3]:
        adr.update(t, 0.0, True)
    assert adr.moves[3] == 1 and adr.buffers[3] == []
    adr.update(high[3], 0.0, True)  # measured the old bound: must not count for the new one
    assert adr.buffers[3] == []
    fresh = next(t for t in iter(lambda: adr.sample(0), None) if t.boundary == 3)
    assert fresh["dynamics.offset"] == pytest.approx(0.02)
    adr.update(fresh, 0.0, True)
    assert adr.buffers[3] == [1.0]


def test_boundary_detected_by_index_not_by_value(space: ParamSpace) -> None:
    adr = ADRTeacher(space, p_b=0.0, buffer_size=1, seed=7)
    task = adr.sample(0)
    assert task.boundary == -1 and task["dynamics.mass"] == adr.space.get_bound(0)  # equal to a bound by value
    adr.update(task, 0.0, True)
    adr.update(dict(task), 0.0, True)  # plain dict: no boundary either
    assert all(b == [] for b in adr.buffers.values()) and adr.ranges()["dynamics.mass"] == [1.0, 1.0]


def test_worker_mode_and_exclusion(space: ParamSpace) -> None:
    adr = ADRTeacher(space, mode="workers", boundary_share=0.25, n_envs=8, exclude_boundary=True, seed=8)
    assert adr.n_workers == 2
    for _ in range(20):
        for env in range(8):
            task = adr.sample(env)
            assert (task.boundary >= 0) == (env < 2)
            assert task.train == (env >= 2)
            assert task["visual.color"] in ("red", "blue")


def test_entropy_matches_hand_computation(space: ParamSpace) -> None:
    adr = ADRTeacher(space, start="ranges", seed=0)
    assert adr.entropy() == pytest.approx((math.log(0.25) + math.log(0.2)) / 2)
    assert adr.entropy() == pytest.approx(-1.4978661367769954)
    collapsed = ADRTeacher(space, seed=0)
    assert collapsed.entropy() == -math.inf
    collapsed.space.set_bound(1, 1.05)  # mass [1, 1.05]; offset still a point: left out
    assert collapsed.entropy() == pytest.approx(math.log(0.05))
    assert collapsed.metrics()["bound/dynamics.mass/high"] == 1.05


def test_return_metric_needs_thresholds(space: ParamSpace) -> None:
    with pytest.raises(ValueError, match="t_high"):
        ADRTeacher(space, metric="return")
    adr = ADRTeacher(space, metric="return", t_high=5.0, t_low=1.0, p_b=1.0, buffer_size=2, seed=9)
    rng = np.random.default_rng(0)
    for _ in range(50):
        task = adr.sample(0)
        adr.update(Task(task, task.boundary, stamp=task.stamp), float(rng.uniform(6, 7)), None)
    assert adr.entropy() > -math.inf


def test_boundaries_that_cannot_move_are_not_evaluated() -> None:
    from randomizers.params import Param

    space = ParamSpace([Param("actuation.noise", nominal=0.0, hard_limits=(0.0, 1.0)),
                        Param("dynamics.pinned", nominal=1.0, hard_limits=(1.0, 1.0))])
    adr = ADRTeacher(space, p_b=1.0, buffer_size=1000, seed=0)
    assert adr.movable() == [1]  # noise high only: noise low sits on its hard limit, 'pinned' cannot move at all
    assert {adr.sample(0).boundary for _ in range(50)} == {1}
    stuck = ADRTeacher(space, params=["dynamics.pinned"], p_b=1.0, seed=0)
    assert stuck.sample(0).boundary == -1
