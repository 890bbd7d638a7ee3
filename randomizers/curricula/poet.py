"""POET (Wang, Lehman, Clune, Stanley 2019, "Paired Open-Ended Trailblazer") over a ParamSpace: the pure logic.

An *environment* is a point of the space: one value per POET dimension (``params``, continuous Params with finite
hard limits); every other Param of the space keeps being randomized from its range as usual. The teacher holds a
population of *niches* (environment + the id of its paired agent; agent id == niche id), an archive of retired
niches and a list of solved environments. It never trains or runs an agent: the driver
(:mod:`sim2real.poet_train`) trains the agents and hands scores in (success rates in [0, 1]), so everything here
is testable with injected scores.

One generation, as the driver runs it:

1. every active agent trains ``steps_per_generation`` env steps in its own environment;
2. :meth:`PoetTeacher.record_scores` — each agent's success rate on its own environment (``eval_episodes``
   episodes); a niche scoring >= ``solved_threshold`` enters the solved list;
3. every ``transfer_every`` generations, :meth:`transfer_pairs` lists (niche, other agent) evaluations and
   :meth:`transfers` picks, per niche, the best other agent when it beats the paired one by more than
   ``transfer_margin`` (goal switching); the driver copies that agent's weights into the niche's agent;
4. every ``reproduce_every`` generations, :meth:`propose` mutates ``candidates`` children from eligible parents
   (niches whose agent scored >= ``solved_threshold``); the driver scores each child with its parent's agent and
   :meth:`admit` keeps children inside the minimal criterion ``mc_low <= score <= mc_high`` whose novelty (mean
   normalized distance to the ``novelty_k`` nearest environments of population + archive) exceeds
   ``min_novelty`` (and that are no copy of an environment already there), most novel first, at most
   ``max_admitted``; a child's agent starts as a copy of its parent's.
   When the population exceeds ``population_size`` the oldest niches are archived.

Evaluation budget per generation (episodes): ``P * eval_episodes`` own scores, plus ``P * (P - 1) * eval_episodes``
on transfer generations, plus ``candidates * eval_episodes`` on reproduction generations (P = active niches).
Distances are measured in normalized coordinates: (value - hard low) / (hard high - hard low) per dimension.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from randomizers.curricula.base import Task, Teacher
from randomizers.params import ParamSpace, Scalar


@dataclass
class Niche:
    """One (environment, agent) pair. ``values``: the environment ({param: value}, Param units); ``score``: the
    paired agent's latest success rate on it (None before the first evaluation); ``born``/``retired``:
    generations; ``parent``: niche id it was mutated from (-1 for the root)."""

    id: int
    values: dict[str, float]
    parent: int = -1
    born: int = 0
    score: float | None = None
    retired: int | None = None
    solved_at: int | None = None  # first generation its paired agent scored >= solved_threshold


@dataclass(frozen=True)
class Candidate:
    """A mutated child environment of niche ``parent``, not yet admitted."""

    values: dict[str, float]
    parent: int


@dataclass
class Admission:
    """Outcome of :meth:`PoetTeacher.admit` for one candidate (``niche`` is the new id, or -1 when rejected)."""

    candidate: Candidate
    score: float
    novelty: float
    reason: str  # "admitted", "too hard", "too easy", "not novel", "population round full"
    niche: int = -1
    extra: dict[str, Any] = field(default_factory=dict)


class PoetTeacher(Teacher):
    """Population of environment/agent niches over ``params`` (see the module docstring for the loop).

    Args:
        space: randomization space; POET's dims need finite hard limits (mutation stays inside them).
        params: POET dimensions (default: every continuous dim).
        start: the root environment ``{name: value}``; dims not named start at their nominal value.
        population_size: active niches at most (oldest archived beyond it).
        mutation_scale: std of the Gaussian mutation, as a fraction of each dim's hard-limit width.
        candidates: children proposed per reproduction round.
        max_admitted: children admitted per reproduction round at most.
        mc_low, mc_high: minimal criterion on the parent agent's success rate on the child (inclusive).
        novelty_k: nearest neighbours (population + archive) the novelty averages over.
        min_novelty: a child's novelty (normalized distance) must exceed this; a copy of an environment of the
            population or archive is never admitted.
        solved_threshold: success rate at which an environment counts as solved (and its niche may reproduce).
        transfer_margin: a transferred agent must beat the paired agent's score by more than this.
        steps_per_generation: env steps each active agent trains per generation.
        eval_episodes: episodes per (agent, environment) evaluation.
        reproduce_every, transfer_every: generations between reproduction / transfer rounds.
    """

    name = "poet"

    def __init__(self, space: ParamSpace, params: Sequence[str] | None = None,
                 start: Mapping[str, float] | None = None, population_size: int = 4, mutation_scale: float = 0.1,
                 candidates: int = 4, max_admitted: int = 1, mc_low: float = 0.2, mc_high: float = 0.8,
                 novelty_k: int = 5, min_novelty: float = 0.02, solved_threshold: float = 0.8,
                 transfer_margin: float = 0.0, steps_per_generation: int = 1000, eval_episodes: int = 10,
                 reproduce_every: int = 2, transfer_every: int = 2, seed: int = 0) -> None:
        super().__init__(space, seed)
        names = list(self.space.dims if params is None else params)
        if not names:
            raise ValueError("curriculum option 'params': POET needs at least one continuous param")
        for n in names:
            if n not in self.space.dims:
                raise ValueError(f"curriculum option 'params': {n!r} is not a continuous param "
                                 f"(known: {', '.join(self.space.dims)})")
            lo, hi = self.space[n].limits
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"curriculum option 'params': {n} needs finite hard limits low < high (POET mutates "
                                 f"within them), got [{lo}, {hi}]; set hard_limits in its randomizers entry")
        self.names = names
        _check_int("population_size", population_size, 1)
        _check_int("candidates", candidates, 1)
        _check_int("max_admitted", max_admitted, 1)
        _check_int("novelty_k", novelty_k, 1)
        _check_int("steps_per_generation", steps_per_generation, 1)
        _check_int("eval_episodes", eval_episodes, 1)
        _check_int("reproduce_every", reproduce_every, 1)
        _check_int("transfer_every", transfer_every, 1)
        for option, value in (("mc_low", mc_low), ("mc_high", mc_high), ("solved_threshold", solved_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"curriculum option '{option}': {value} is not a success rate in [0, 1]")
        if not float(mc_low) <= float(mc_high):
            raise ValueError(f"curriculum options 'mc_low' ({mc_low}) must not exceed 'mc_high' ({mc_high})")
        if not (math.isfinite(float(mutation_scale)) and float(mutation_scale) > 0):
            raise ValueError(f"curriculum option 'mutation_scale': expected > 0, got {mutation_scale}")
        if not (math.isfinite(float(min_novelty)) and float(min_novelty) >= 0):
            raise ValueError(f"curriculum option 'min_novelty': expected >= 0, got {min_novelty}")
        if not (math.isfinite(float(transfer_margin)) and float(transfer_margin) >= 0):
            raise ValueError(f"curriculum option 'transfer_margin': expected >= 0, got {transfer_margin}")
        self.population_size, self.mutation_scale = int(population_size), float(mutation_scale)
        self.n_candidates, self.max_admitted = int(candidates), int(max_admitted)
        self.mc_low, self.mc_high = float(mc_low), float(mc_high)
        self.novelty_k, self.min_novelty = int(novelty_k), float(min_novelty)
        self.solved_threshold, self.transfer_margin = float(solved_threshold), float(transfer_margin)
        self.steps_per_generation, self.eval_episodes = int(steps_per_generation), int(eval_episodes)
        self.reproduce_every, self.transfer_every = int(reproduce_every), int(transfer_every)
        self.low = np.array([self.space[n].limits[0] for n in names], float)
        self.width = np.array([self.space[n].limits[1] for n in names], float) - self.low
        root = self._start_values(start or {})
        self.niches: dict[int, Niche] = {0: Niche(0, root)}
        self.next_id = 1
        self.generation = 0
        self.solved: list[dict[str, Any]] = []  # {niche, values, score, generation}
        self.evaluation_episodes = 0  # every evaluation episode the driver reported (the evaluation budget)

    def _start_values(self, start: Mapping[str, float]) -> dict[str, float]:
        unknown = sorted(set(start) - set(self.names))
        if unknown:
            raise ValueError(f"curriculum option 'start': {unknown[0]!r} is not a POET param "
                             f"(params: {', '.join(self.names)})")
        out = {}
        for n in self.names:
            p = self.space[n]
            value = float(start.get(n, p.nominal))  # type: ignore[arg-type]
            lo, hi = p.limits
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ValueError(f"curriculum option 'start': {n} = {value} is outside its hard limits [{lo}, {hi}]")
            out[n] = self._round(n, value)
        return out

    def _round(self, name: str, value: float) -> float:
        return float(round(value)) if self.space[name].integer else float(value)

    # -- population -----------------------------------------------------------------------------------------
    @property
    def active(self) -> list[Niche]:
        return [n for n in self.niches.values() if n.retired is None]

    @property
    def archive(self) -> list[Niche]:
        return [n for n in self.niches.values() if n.retired is not None]

    def normalized(self, values: Mapping[str, float]) -> np.ndarray:
        """Environment as a vector in [0, 1]^d (0 = hard low, 1 = hard high per dim)."""
        return (np.array([float(values[n]) for n in self.names]) - self.low) / self.width

    def novelty(self, values: Mapping[str, float], exclude: int | None = None,
                extra: Sequence[Mapping[str, float]] = ()) -> float:
        """Mean normalized distance to the ``novelty_k`` nearest environments of population + archive (+ ``extra``,
        e.g. children admitted earlier in the same round), niche ``exclude`` left out; inf when there are none."""
        x = self.normalized(values)
        others = [self.normalized(n.values) for n in self.niches.values() if n.id != exclude]
        others += [self.normalized(v) for v in extra]
        if not others:
            return math.inf
        d = np.sort(np.linalg.norm(np.array(others) - x, axis=1))
        return float(d[:self.novelty_k].mean())

    def nearest(self, values: Mapping[str, float], extra: Sequence[Mapping[str, float]] = ()) -> float:
        """Normalized distance to the nearest environment of population + archive (+ ``extra``); inf if none."""
        x = self.normalized(values)
        others = [self.normalized(n.values) for n in self.niches.values()] + [self.normalized(v) for v in extra]
        return float(min(np.linalg.norm(o - x) for o in others)) if others else math.inf

    def mutate(self, values: Mapping[str, float]) -> dict[str, float]:
        """A child of ``values``: Gaussian steps (std ``mutation_scale`` × hard-limit width), clipped to the hard
        limits, integer params rounded; redrawn (up to 20 times) while it equals the parent."""
        parent = {n: float(values[n]) for n in self.names}
        child = parent
        for _ in range(20):
            step = self.rng.normal(0.0, self.mutation_scale, len(self.names)) * self.width
            raw = np.clip(np.array([parent[n] for n in self.names]) + step, self.low, self.low + self.width)
            child = {n: self._round(n, float(v)) for n, v in zip(self.names, raw)}
            if child != parent:
                break
        return child

    def eligible_parents(self) -> list[Niche]:
        """Active niches whose paired agent solves their environment (score >= ``solved_threshold``)."""
        return [n for n in self.active if n.score is not None and n.score >= self.solved_threshold]

    def propose(self) -> list[Candidate]:
        """``candidates`` mutated children, each of a parent drawn uniformly from :meth:`eligible_parents`
        (none when no niche is eligible)."""
        parents = self.eligible_parents()
        if not parents:
            return []
        out = []
        for _ in range(self.n_candidates):
            parent = parents[int(self.rng.integers(len(parents)))]
            out.append(Candidate(self.mutate(parent.values), parent.id))
        return out

    def admit(self, candidates: Sequence[Candidate], scores: Sequence[float]) -> list[Admission]:
        """Apply the minimal criterion and novelty to ``candidates`` scored ``scores`` (their parent agent's success
        rate on them); admit the most novel passing ones (at most ``max_admitted``; novelty recomputed after each
        admission), archive the oldest niches beyond ``population_size``. Returns one :class:`Admission` each."""
        if len(candidates) != len(scores):
            raise ValueError(f"admit: {len(candidates)} candidates but {len(scores)} scores")
        self.evaluation_episodes += len(candidates) * self.eval_episodes
        results = []
        passing: list[int] = []
        for i, (cand, score) in enumerate(zip(candidates, scores)):
            score = float(score)
            reason = "too hard" if score < self.mc_low else "too easy" if score > self.mc_high else ""
            results.append(Admission(cand, score, self.novelty(cand.values), reason or "pending"))
            if not reason:
                passing.append(i)
        admitted: list[dict[str, float]] = []
        while passing:
            novelty = {i: self.novelty(candidates[i].values, extra=admitted) for i in passing}
            best = max(passing, key=lambda i: (novelty[i], -i))
            for i in passing:
                results[i].novelty = novelty[i]
            passing.remove(best)
            if novelty[best] <= self.min_novelty or self.nearest(candidates[best].values, admitted) <= 1e-9:
                results[best].reason = "not novel"  # or a copy of an environment already there
                continue
            if len(admitted) >= self.max_admitted:
                results[best].reason = "population round full"
                continue
            niche = Niche(self.next_id, dict(candidates[best].values), candidates[best].parent, self.generation,
                          score=results[best].score)
            self.niches[niche.id] = niche
            self.next_id += 1
            admitted.append(niche.values)
            results[best].reason, results[best].niche = "admitted", niche.id
            self._events.append({"event": "admit", "niche": niche.id, "parent": niche.parent,
                                 "values": niche.values, "score": results[best].score,
                                 "novelty": novelty[best], "generation": self.generation})
        for r in results:
            if r.reason != "admitted":
                self._events.append({"event": "reject", "parent": r.candidate.parent, "values": r.candidate.values,
                                     "score": r.score, "novelty": r.novelty, "reason": r.reason,
                                     "generation": self.generation})
        self._retire_oldest()
        return results

    def _retire_oldest(self) -> None:
        active = sorted(self.active, key=lambda n: (n.born, n.id))
        for niche in active[:max(0, len(active) - self.population_size)]:
            niche.retired = self.generation
            self._events.append({"event": "retire", "niche": niche.id, "values": niche.values,
                                 "score": niche.score, "generation": self.generation})

    # -- scores and transfer --------------------------------------------------------------------------------
    def record_scores(self, scores: Mapping[int, float]) -> None:
        """Each active niche's paired-agent success rate on its own environment (this generation)."""
        self.evaluation_episodes += len(scores) * self.eval_episodes
        for nid, score in scores.items():
            niche = self.niches[int(nid)]
            niche.score = float(score)
            if niche.score >= self.solved_threshold and niche.solved_at is None:
                niche.solved_at = self.generation
                self.solved.append({"niche": niche.id, "values": dict(niche.values), "score": niche.score,
                                    "generation": self.generation})
                self._events.append({"event": "solved", "niche": niche.id, "values": niche.values,
                                     "score": niche.score, "generation": self.generation})

    def transfer_pairs(self) -> list[tuple[int, int]]:
        """(niche, agent) evaluations a transfer round needs: every active agent on every other active niche."""
        ids = [n.id for n in self.active]
        return [(env, agent) for env in ids for agent in ids if agent != env]

    def transfers(self, scores: Mapping[tuple[int, int], float]) -> list[tuple[int, int]]:
        """Goal switching: ``scores[(niche, agent)]`` for :meth:`transfer_pairs`; returns (niche, source agent)
        for every niche whose best other agent beats its paired agent's score by more than ``transfer_margin``
        (the niche's score becomes the transferred agent's). Ties go to the lower agent id."""
        self.evaluation_episodes += len(scores) * self.eval_episodes
        own = {n.id: (n.score if n.score is not None else 0.0) for n in self.active}
        moves = []
        for env in sorted(own):
            offers = {a: float(s) for (e, a), s in scores.items() if e == env and a != env}
            if not offers:
                continue
            best_agent = min(offers, key=lambda a: (-offers[a], a))
            best_score = offers[best_agent]
            if best_score > own[env] + self.transfer_margin:
                moves.append((env, best_agent))
        for env, agent in moves:  # applied after all decisions: every decision saw the same agents
            self._events.append({"event": "transfer", "niche": env, "from": agent, "before": own[env],
                                 "after": float(scores[(env, agent)]), "generation": self.generation})
            self.niches[env].score = float(scores[(env, agent)])
        return moves

    def end_generation(self) -> None:
        """Advance the generation counter and record the population (one ``generation`` history event)."""
        self._events.append({"event": "generation", "generation": self.generation,
                             "niches": [{"id": n.id, "values": n.values, "score": n.score, "parent": n.parent}
                                        for n in self.active],
                             "archived": len(self.archive), "solved": len(self.solved),
                             "evaluation_episodes": self.evaluation_episodes})
        self.generation += 1

    def is_reproduction_generation(self) -> bool:
        return (self.generation + 1) % self.reproduce_every == 0

    def is_transfer_generation(self) -> bool:
        return (self.generation + 1) % self.transfer_every == 0 and len(self.active) > 1

    def frontier(self, reference: Mapping[str, float] | None = None) -> Niche:
        """The solved active niche farthest (normalized) from ``reference`` (default: the root environment); the
        best-scoring active niche when none is solved."""
        ref = self.normalized(reference or self.niches[0].values)
        solved = [n for n in self.active if n.score is not None and n.score >= self.solved_threshold]
        if solved:
            return max(solved, key=lambda n: (float(np.linalg.norm(self.normalized(n.values) - ref)), -n.id))
        return max(self.active, key=lambda n: (n.score if n.score is not None else -1.0, -n.id))

    # -- Teacher contract -----------------------------------------------------------------------------------
    def sample(self, env_index: int = 0) -> Task:
        """An episode of active niche ``env_index`` (modulo the population): its environment pinned, the other
        Params drawn from their ranges; ``level`` carries the niche id."""
        active = self.active
        niche = active[env_index % len(active)]
        return Task(self.space.sample(self.rng, fixed=niche.values), level=niche.id)

    def values_of(self, niche_id: int) -> dict[str, Scalar]:
        """The values to pin for niche ``niche_id``'s environment (POET dims only; integers as int)."""
        return {n: int(v) if self.space[n].integer else v for n, v in self.niches[niche_id].values.items()}

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        out.update(generation=float(self.generation), active=float(len(self.active)),
                   archived=float(len(self.archive)), solved=float(len(self.solved)),
                   evaluation_episodes=float(self.evaluation_episodes))
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"names": self.names, "niches": [asdict(n) for n in self.niches.values()], "next_id": self.next_id,
                "generation": self.generation, "solved": self.solved,
                "evaluation_episodes": self.evaluation_episodes}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        if list(state["names"]) != self.names:
            raise ValueError(f"curriculum state: POET params {state['names']} differ from this teacher's "
                             f"{self.names} (options changed?)")
        self.niches = {int(d["id"]): Niche(**{**d, "values": {k: float(v) for k, v in d["values"].items()}})
                       for d in state["niches"]}
        self.next_id, self.generation = int(state["next_id"]), int(state["generation"])
        self.solved = [dict(s) for s in state["solved"]]
        self.evaluation_episodes = int(state["evaluation_episodes"])


def _check_int(option: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ValueError(f"curriculum option '{option}': expected an integer >= {low}, got {value!r}")
