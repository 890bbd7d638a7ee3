"""Automatic Domain Randomization (Akkaya et al. 2019, arXiv 1910.07113) over a ParamSpace.

Ranges start at the nominal values (or at the launch file's ranges). A *boundary evaluation* pins one boundary of
one dimension (picked uniformly, low/high with probability 0.5 each; boundaries that can never move — at a hard
limit that is also the initial bound — are skipped) and samples every other Param normally; its
performance goes into that boundary's buffer. A full buffer (``buffer_size`` entries) is judged: mean >= ``t_high``
widens the boundary by Δ, mean <= ``t_low`` narrows it, then the buffer is cleared. Boundaries never leave the hard
limits and are never narrowed inside the initial range. Boundaries are identified by index
(:meth:`ParamSpace.bounds_index`), carried in the :class:`Task`, never by comparing floats.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from randomizers.curricula.base import Task, Teacher, entropy_of, score_of
from randomizers.params import ParamSpace

MODES = ("coin", "workers")
DELTA_MODES = ("additive", "multiplicative")


def _per_param(value: Any, names: Sequence[str], option: str, cast: type, fallback: Any) -> dict[str, Any]:
    """One value per name from a scalar or ``{name: value, "default": value}`` (missing names: ``fallback``)."""
    if not isinstance(value, Mapping):
        value = {"default": value}
    unknown = sorted(set(value) - set(names) - {"default"})
    if unknown:
        raise ValueError(f"curriculum option '{option}': {unknown[0]!r} is not an ADR param "
                         f"(known: {', '.join(names)})")
    default = value.get("default", fallback)
    try:
        return {n: cast(value.get(n, default)) for n in names}
    except (TypeError, ValueError):
        raise ValueError(f"curriculum option '{option}': expected {cast.__name__} values, got {value!r}") from None


class ADRTeacher(Teacher):
    """ADR with per-boundary performance buffers.

    Args:
        space: randomization space; its current ranges are the initial ranges when ``start="ranges"``.
        params: names of the dimensions ADR moves (default: every continuous dim); the others keep their ranges.
        p_b: probability that an episode is a boundary evaluation (``mode="coin"``).
        buffer_size: m, evaluations per boundary before it is judged.
        t_high, t_low: thresholds on the buffer mean (success rate in [0, 1], or mean episode return).
        metric: ``success`` or ``return``.
        delta: Δ, one float or ``{name: float}``; ``delta_mode`` ``additive`` (bound ± Δ, unit of the Param) or
            ``multiplicative`` (bound × (1 + Δ) outward, ÷ (1 + Δ) inward; bounds must stay > 0), likewise per Param.
        start: ``nominal`` (ranges collapsed at each Param's nominal) or ``ranges`` (the space's ranges).
        eval_beyond: evaluate at bound + Δ (the candidate bound) instead of at the bound itself.
        mode: ``coin`` (each episode is a boundary evaluation with probability ``p_b``) or ``workers`` (the first
            ``round(boundary_share * n_envs)`` vectorized envs always evaluate boundaries, the others never do).
        exclude_boundary: mark boundary evaluations ``train=False`` (their data should not be trained on).
    """

    name = "adr"

    def __init__(self, space: ParamSpace, params: Sequence[str] | None = None, p_b: float = 0.5,
                 buffer_size: int = 240, t_high: float | None = None, t_low: float | None = None,
                 metric: str = "success", delta: float | Mapping[str, float] = 0.02,
                 delta_mode: str | Mapping[str, str] = "additive", start: str = "nominal",
                 eval_beyond: bool = False, mode: str = "coin", boundary_share: float = 0.5, n_envs: int = 1,
                 exclude_boundary: bool = False, seed: int = 0) -> None:
        super().__init__(space, seed)
        names = list(self.space.dims if params is None else params)
        for n in names:
            if n not in self.space.dims:
                raise ValueError(f"curriculum option 'params': {n!r} is not a continuous param "
                                 f"(known: {', '.join(self.space.dims)})")
        if not names:
            raise ValueError("curriculum option 'params': ADR needs at least one continuous param")
        self.names = names
        if metric not in ("success", "return"):
            raise ValueError(f"curriculum option 'metric': {metric!r} is not one of success, return")
        if metric == "success":
            t_high = 0.8 if t_high is None else t_high
            t_low = 0.4 if t_low is None else t_low
        elif t_high is None or t_low is None:
            raise ValueError("curriculum options 't_high' and 't_low' are required with metric: return")
        if not float(t_low) < float(t_high):
            raise ValueError(f"curriculum options 't_low' ({t_low}) must be below 't_high' ({t_high})")
        if not 0.0 <= float(p_b) <= 1.0:
            raise ValueError(f"curriculum option 'p_b': {p_b} is not in [0, 1]")
        if int(buffer_size) < 1:
            raise ValueError(f"curriculum option 'buffer_size': expected an integer >= 1, got {buffer_size!r}")
        if mode not in MODES:
            raise ValueError(f"curriculum option 'mode': {mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 < float(boundary_share) <= 1.0:
            raise ValueError(f"curriculum option 'boundary_share': {boundary_share} is not in (0, 1]")
        if start not in ("nominal", "ranges"):
            raise ValueError(f"curriculum option 'start': {start!r} is not one of nominal, ranges")
        self.p_b, self.m, self.metric = float(p_b), int(buffer_size), metric
        self.t_high, self.t_low = float(t_high), float(t_low)
        self.mode, self.eval_beyond, self.exclude_boundary = mode, bool(eval_beyond), bool(exclude_boundary)
        self.n_workers = max(1, round(float(boundary_share) * int(n_envs))) if mode == "workers" else 0
        self.delta = _per_param(delta, names, "delta", float, 0.02)
        self.delta_mode = _per_param(delta_mode, names, "delta_mode", str, "additive")
        for n in names:
            if not (math.isfinite(self.delta[n]) and self.delta[n] > 0):
                raise ValueError(f"curriculum option 'delta': {n} needs Δ > 0, got {self.delta[n]}")
            if self.delta_mode[n] not in DELTA_MODES:
                raise ValueError(f"curriculum option 'delta_mode': {n} {self.delta_mode[n]!r} is not one of "
                                 f"{', '.join(DELTA_MODES)}")
            if start == "nominal":
                nominal = float(self.space[n].nominal)  # type: ignore[arg-type]
                self.space.set_range(n, nominal, nominal)
            if self.delta_mode[n] == "multiplicative" and self.space[n].low <= 0:
                raise ValueError(f"curriculum option 'delta_mode': {n} starts at {self.space[n].low} <= 0, "
                                 f"multiplicative Δ needs positive bounds (use additive)")
        self.initial = {n: (self.space[n].low, self.space[n].high) for n in names}
        self.dim_index = {n: self.space.dims.index(n) for n in names}
        self.buffers: dict[int, list[float]] = {b: [] for n in names for b in self.space.bounds_index(n)}
        self.moves: dict[int, int] = {b: 0 for b in self.buffers}
        self.evaluations = 0

    # -- boundary arithmetic ------------------------------------------------------------------------------
    def _stepped(self, index: int, outward: bool) -> float:
        """Boundary ``index`` moved by one Δ (outward = widening), clipped to the hard limits and the initial range."""
        name, is_high = self.space.boundary(index)
        p, cur, d = self.space[name], self.space.get_bound(index), self.delta[name]
        up = outward == is_high
        if self.delta_mode[name] == "additive":
            new = cur + d if up else cur - d
        else:
            new = cur * (1.0 + d) if up else cur / (1.0 + d)
        lo_lim, hi_lim = p.limits
        new = min(max(new, lo_lim), hi_lim)
        init_low, init_high = self.initial[name]
        return max(new, init_high) if is_high else min(new, init_low)

    def _pinned(self, index: int) -> float:
        name, is_high = self.space.boundary(index)
        value = self._stepped(index, outward=True) if self.eval_beyond else self.space.get_bound(index)
        if self.space[name].integer:  # the edge a whole-number sample can take
            value = math.floor(value + 1e-9) if is_high else math.ceil(value - 1e-9)
        return value

    # -- contract -----------------------------------------------------------------------------------------
    def is_boundary_episode(self, env_index: int) -> bool:
        if self.mode == "workers":
            return env_index < self.n_workers
        return bool(self.rng.random() < self.p_b)

    def movable(self) -> list[int]:
        """Boundary indices that could still move: not pinned both by a hard limit and by the initial range."""
        return [b for b in self.buffers if self._stepped(b, True) != self.space.get_bound(b)
                or self._stepped(b, False) != self.space.get_bound(b)]

    def sample(self, env_index: int = 0) -> Task:
        if not self.is_boundary_episode(env_index):
            return Task(self.space.sample(self.rng))
        candidates = self.movable()  # uniform over dims, then low/high, among boundaries that can move
        if not candidates:
            return Task(self.space.sample(self.rng))
        dims = sorted({b // 2 for b in candidates})
        dim = dims[int(self.rng.integers(len(dims)))]
        sides = [b for b in (2 * dim, 2 * dim + 1) if b in candidates]
        index = sides[int(self.rng.integers(len(sides)))]
        name = self.space.boundary(index)[0]
        values = self.space.sample(self.rng, fixed={name: self._pinned(index)})
        return Task(values, boundary=index, train=not self.exclude_boundary, stamp=self.moves[index])

    def _update(self, task: Task, episode_return: float, success: Any, signals: dict[str, float]) -> None:
        b = task.boundary
        if b < 0:
            return
        if b not in self.buffers:
            raise ValueError(f"task pins boundary {b}, which this ADR teacher does not move")
        if task.stamp != self.moves[b]:
            return  # drawn before this boundary last moved: it measured another bound
        self.evaluations += 1
        buffer = self.buffers[b]
        buffer.append(score_of(episode_return, success, self.metric))
        if len(buffer) < self.m:
            return
        mean = sum(buffer) / len(buffer)
        buffer.clear()
        if mean >= self.t_high:
            self._move(b, outward=True, mean=mean)
        elif mean <= self.t_low:
            self._move(b, outward=False, mean=mean)

    def _move(self, index: int, outward: bool, mean: float) -> None:
        name, is_high = self.space.boundary(index)
        old, new = self.space.get_bound(index), self._stepped(index, outward)
        if new == old:
            return
        self.space.set_bound(index, new)
        self.moves[index] += 1
        self.buffers[index].clear()
        self._record_range(name, boundary=index, side="high" if is_high else "low",
                           action="widen" if outward else "narrow", old=old, new=new, buffer_mean=mean)

    # -- reporting -----------------------------------------------------------------------------------------
    def entropy(self) -> float:
        """ADR entropy (nats per dimension) over the dimensions ADR moves, degenerate ranges left out."""
        return entropy_of(self.space, self.names)

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        out["boundary_evaluations"] = float(self.evaluations)
        for n in self.names:
            low_i, high_i = self.space.bounds_index(n)
            out[f"bound/{n}/low"] = self.space.get_bound(low_i)
            out[f"bound/{n}/high"] = self.space.get_bound(high_i)
            out[f"buffer_fill/{n}/low"] = len(self.buffers[low_i]) / self.m
            out[f"buffer_fill/{n}/high"] = len(self.buffers[high_i]) / self.m
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"buffers": {str(b): list(v) for b, v in self.buffers.items()},
                "moves": {str(b): v for b, v in self.moves.items()},
                "initial": {n: list(v) for n, v in self.initial.items()}, "evaluations": self.evaluations}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        initial = {n: tuple(v) for n, v in state["initial"].items()}
        if initial != self.initial:
            raise ValueError("curriculum state: ADR initial ranges differ from this teacher's (options changed?)")
        self.buffers = {int(b): [float(x) for x in v] for b, v in state["buffers"].items()}
        self.moves = {int(b): int(v) for b, v in state["moves"].items()}
        self.evaluations = int(state["evaluations"])
