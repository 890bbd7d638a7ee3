"""POET's pure logic (randomizers.curricula.poet) with injected scores, and the driver's generation loop with fake
agents whose success rates are a known function of the environment."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from randomizers.curricula import build_teacher
from randomizers.curricula.poet import Candidate, PoetTeacher
from randomizers.params import Param, ParamSpace
from sim2real.poet_train import PoetRun


@pytest.fixture
def box() -> ParamSpace:
    """A continuous dim in [0, 2], an integer dim in [0, 4] and a param POET leaves to plain randomization."""
    return ParamSpace([
        Param("a.x", nominal=0.0, range=(0.0, 0.0), hard_limits=(0.0, 2.0)),
        Param("a.n", nominal=0, range=(0, 0), hard_limits=(0, 4), integer=True),
        Param("a.noise", nominal=0.0, range=(0.0, 0.1)),
    ])


def teacher(box: ParamSpace, **options) -> PoetTeacher:
    return PoetTeacher(box, params=["a.x", "a.n"], seed=3, **options)


def test_mutation_stays_within_hard_limits(box: ParamSpace) -> None:
    t = teacher(box, mutation_scale=0.5)
    for parent in ({"a.x": 0.0, "a.n": 0.0}, {"a.x": 2.0, "a.n": 4.0}, {"a.x": 1.0, "a.n": 2.0}):
        children = [t.mutate(parent) for _ in range(300)]
        xs = np.array([c["a.x"] for c in children])
        ns = np.array([c["a.n"] for c in children])
        assert xs.min() >= 0.0 and xs.max() <= 2.0 and ns.min() >= 0 and ns.max() <= 4
        assert np.all(ns == np.round(ns))
        assert all(c != parent for c in children)
    # clipping reaches the limits (a scale of 0.5 x width from an edge often steps outside them)
    assert (xs == 0.0).any() or (xs == 2.0).any()


def test_minimal_criterion_and_novelty(box: ParamSpace) -> None:
    t = teacher(box, mc_low=0.2, mc_high=0.8, max_admitted=1, min_novelty=0.05, novelty_k=1)
    root = dict(t.niches[0].values)
    near = Candidate({"a.x": root["a.x"] + 0.02, "a.n": root["a.n"]}, 0)  # normalized distance 0.01
    far = Candidate({"a.x": 1.5, "a.n": 3.0}, 0)
    mid = Candidate({"a.x": 0.6, "a.n": 1.0}, 0)
    hard = Candidate({"a.x": 2.0, "a.n": 4.0}, 0)
    easy = Candidate({"a.x": 0.3, "a.n": 0.0}, 0)
    results = t.admit([near, far, mid, hard, easy], [0.5, 0.5, 0.8, 0.1, 0.9])
    reasons = [r.reason for r in results]
    assert reasons == ["not novel", "admitted", "population round full", "too hard", "too easy"]
    assert [n.id for n in t.active] == [0, 1] and t.niches[1].values == far.values and t.niches[1].parent == 0
    # novelty: mean distance to the k nearest of population + archive, in hard-limit-normalized units
    x = t.normalized(mid.values)
    expected = sorted([np.linalg.norm(x - t.normalized(root)), np.linalg.norm(x - t.normalized(far.values))])
    assert t.novelty(mid.values) == pytest.approx(expected[0])
    t.novelty_k = 2
    assert t.novelty(mid.values) == pytest.approx(np.mean(expected))
    t.novelty_k = 1
    assert results[2].novelty == pytest.approx(t.novelty(mid.values))  # recomputed after `far` came in
    assert t.evaluation_episodes == 5 * t.eval_episodes
    events = t.pop_events()
    assert [e["event"] for e in events].count("reject") == 4 and events[0]["event"] == "admit"


def test_population_limit_archives_the_oldest_and_archive_counts_for_novelty(box: ParamSpace) -> None:
    t = teacher(box, population_size=2, max_admitted=1, min_novelty=0.0)
    t.end_generation()
    t.admit([Candidate({"a.x": 1.0, "a.n": 2.0}, 0)], [0.5])
    t.end_generation()
    t.admit([Candidate({"a.x": 2.0, "a.n": 4.0}, 1)], [0.5])
    assert [n.id for n in t.active] == [1, 2] and [n.id for n in t.archive] == [0]
    assert t.archive[0].retired == 2
    # a copy of the archived root's environment is not novel, whatever k (its 2-NN mean is > 0)
    t.novelty_k = 2
    copy = Candidate({"a.x": 0.0, "a.n": 0.0}, 1)
    assert t.novelty(copy.values) == pytest.approx(math.sqrt(0.5) / 2)
    assert t.admit([copy], [0.5])[0].reason == "not novel"


def test_reproduction_needs_a_solved_parent(box: ParamSpace) -> None:
    t = teacher(box, solved_threshold=0.8, candidates=3)
    assert t.propose() == []
    t.record_scores({0: 0.7})
    assert t.propose() == [] and t.solved == []
    t.record_scores({0: 0.9})
    children = t.propose()
    assert len(children) == 3 and all(c.parent == 0 for c in children)
    assert t.solved == [{"niche": 0, "values": t.niches[0].values, "score": 0.9, "generation": 0}]
    t.record_scores({0: 1.0})
    assert len(t.solved) == 1  # solved once


def test_transfer_picks_the_best_other_agent_when_it_is_better(box: ParamSpace) -> None:
    t = teacher(box, min_novelty=0.0, max_admitted=3, transfer_margin=0.05)
    t.admit([Candidate({"a.x": 1.0, "a.n": 1.0}, 0), Candidate({"a.x": 2.0, "a.n": 2.0}, 0),
             Candidate({"a.x": 0.5, "a.n": 4.0}, 0)], [0.5, 0.5, 0.5])
    t.record_scores({0: 0.2, 1: 0.5, 2: 0.9, 3: 0.4})
    assert sorted(t.transfer_pairs()) == sorted((e, a) for e in range(4) for a in range(4) if e != a)
    scores = {pair: 0.0 for pair in t.transfer_pairs()}
    scores.update({(0, 1): 0.6, (0, 2): 0.6,  # tie: the lower agent id
                   (1, 2): 0.52,  # better, but not by more than the margin
                   (3, 0): 0.3, (3, 2): 0.8})
    moves = t.transfers(scores)
    assert moves == [(0, 1), (3, 2)]
    assert t.niches[0].score == 0.6 and t.niches[3].score == 0.8 and t.niches[1].score == 0.5
    assert [e["event"] for e in t.pop_events()].count("transfer") == 2


def test_state_round_trip_through_json(box: ParamSpace) -> None:
    t = teacher(box, min_novelty=0.0)
    t.record_scores({0: 0.9})
    t.admit(t.propose(), [0.5, 0.5, 0.5, 0.5])
    t.end_generation()
    state = json.loads(json.dumps(t.state_dict()))
    other = teacher(box, min_novelty=0.0)
    other.load_state_dict(state)
    assert other.state_dict() == t.state_dict()
    assert other.propose() == t.propose()  # the rng continues where it was
    with pytest.raises(ValueError, match="POET params"):
        PoetTeacher(box, params=["a.x"]).load_state_dict(state)


def test_sample_pins_the_niche_and_randomizes_the_rest(box: ParamSpace) -> None:
    t = teacher(box, min_novelty=0.0)
    t.admit([Candidate({"a.x": 1.25, "a.n": 3.0}, 0)], [0.5])
    tasks = [t.sample(i) for i in range(4)]
    assert [task.level for task in tasks] == [0, 1, 0, 1]
    assert tasks[1]["a.x"] == 1.25 and tasks[1]["a.n"] == 3
    assert len({task["a.noise"] for task in tasks}) == 4


def test_options_are_checked(box: ParamSpace) -> None:
    with pytest.raises(ValueError, match="finite hard limits"):
        build_teacher({"name": "poet"}, box, 1, 0)  # a.noise has no hard limits
    with pytest.raises(ValueError, match="'mc_low'"):
        build_teacher({"name": "poet", "params": ["a.x"], "mc_low": 0.9, "mc_high": 0.5}, box, 1, 0)
    with pytest.raises(ValueError, match="'start'"):
        build_teacher({"name": "poet", "params": ["a.x"], "start": {"a.x": 3.0}}, box, 1, 0)
    with pytest.raises(ValueError, match="not an option of poet"):
        build_teacher({"name": "poet", "params": ["a.x"], "mutation": 0.1}, box, 1, 0)
    with pytest.raises(ValueError, match="population_size"):
        build_teacher({"name": "poet", "params": ["a.x"], "population_size": 0}, box, 1, 0)
    t = build_teacher({"name": "poet", "params": ["a.x"], "start": {"a.x": 0.5}}, box, 1, 0)
    assert t.niches[0].values == {"a.x": 0.5} and math.isinf(t.novelty({"a.x": 0.5}, exclude=0))


class FakeAgent:
    """An agent whose success on an environment is 1 - |skill - a.x| (clipped); training moves skill towards its
    own environment by ``rate`` per 100 steps; snapshots are the skill."""

    def __init__(self, home: float, skill: float = 0.0, rate: float = 0.1) -> None:
        self.home, self.skill, self.rate, self.steps = home, skill, rate, 0

    def train(self, steps: int) -> None:
        self.steps += steps
        for _ in range(steps // 100):
            self.skill += float(np.clip(self.home - self.skill, -self.rate, self.rate))

    def snapshot(self) -> float:
        return self.skill

    def load_snapshot(self, skill: float) -> None:
        self.skill = skill

    def close(self) -> None:
        return None


class FakeRun(PoetRun):
    def make_agent(self, niche: int, folder: str | None = None) -> FakeAgent:
        return FakeAgent(self.teacher.niches[niche].values["a.x"])

    def evaluate(self, agent: FakeAgent, values) -> float:
        return float(np.clip(1.0 - abs(agent.skill - float(values["a.x"])), 0.0, 1.0))


def test_driver_generation_swaps_agents_from_snapshots(box: ParamSpace) -> None:
    """Two niches each better served by the other's agent: both switch, each getting the *old* other agent."""
    t = PoetTeacher(box, params=["a.x"], min_novelty=0.0, transfer_every=1, reproduce_every=100,
                    steps_per_generation=100, seed=0)
    t.admit([Candidate({"a.x": 1.0}, 0)], [0.5])
    run = FakeRun({"seed": 0}, "/nonexistent", t)
    run.agents = {0: FakeAgent(0.0, skill=1.0, rate=0.0), 1: FakeAgent(1.0, skill=0.0, rate=0.0)}
    run.generation(budget=10_000)
    assert run.agents[0].skill == 0.0 and run.agents[1].skill == 1.0
    assert t.niches[0].score == 1.0 and t.niches[1].score == 1.0 and run.steps == 200
    events = t.pop_events()
    assert sorted((e["niche"], e["from"]) for e in events if e["event"] == "transfer") == [(0, 1), (1, 0)]


def test_driver_loop_walks_out_along_solved_stepping_stones(box: ParamSpace) -> None:
    """With fake agents that only learn nearby, the population moves away from the root and keeps an agent for
    each admitted environment; children start from their parent's agent; the budget is respected."""
    t = PoetTeacher(box, params=["a.x"], population_size=3, mutation_scale=0.2, candidates=6, mc_low=0.2,
                    mc_high=0.9, min_novelty=0.05, steps_per_generation=300, reproduce_every=1, transfer_every=2,
                    seed=1)
    run = FakeRun({"seed": 0}, "/nonexistent", t)
    run.agents[0] = run.make_agent(0)
    while run.steps < 9000:
        run.generation(budget=9000)
        assert set(run.agents) == {n.id for n in t.active}
    assert run.steps == 9000
    assert len(t.solved) >= 3 and len(t.archive) >= 1
    assert max(s["values"]["a.x"] for s in t.solved) > 0.5
