"""Fit a :class:`~sim2real.sysid.model.SystemModel` to logged segments: CMA-ES (the ``cma`` package) on the replay
error, then per-segment sensitivities (finite differences) that give both the identifiability report and a
linearized bootstrap over segments for the parameters' uncertainty.

Models that set ``polish_steps`` (arms) get that many Levenberg-Marquardt steps after CMA-ES, on the same
finite-difference sensitivities the report uses: CMA-ES finds the basin within its budget, the steps settle the
gains in it (each costs ``2 n + 1`` replays for the sensitivities plus one per damping tried).

Coordinates: the optimizer works in each parameter's unit box (``FitParameter.to_unit``; log-spaced for scales),
started at the nominal values with a step of a quarter of the box. The error of a set of segments is the mean of
their squared weighted RMS replay errors (``replay_error``), the same number the gate and the report show.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from sim2real.sysid.model import FitParameter, Segment, SystemModel, replay_error

SENSITIVITY_STEP = 0.07  # unit-box step of the finite differences (wide enough to cross the physics' 2 ms latency
#                          grid and one deadband tick, so quantized parameters still show their effect)
BOOTSTRAP_SAMPLES = 400
POLISH_DAMPING = (1e-3, 1e-2, 1e-1, 1.0)  # Levenberg-Marquardt damping tried in turn (x diag of J^T J) per step


@dataclass(frozen=True)
class FitSettings:
    """Optimizer budget: ``evaluations`` (replays of the whole training set), ``population`` (None: CMA's
    default 4 + 3 ln n), ``seed`` of the optimizer's and the bootstrap's random draws."""

    evaluations: int = 600
    population: int | None = None
    seed: int = 0


@dataclass
class Sensitivity:
    """Per-segment residuals (flattened, weighted) at the fit and their derivatives by each parameter's unit
    coordinate (columns in ``parameters`` order)."""

    residuals: list[np.ndarray]
    jacobians: list[np.ndarray]

    def stacked(self) -> np.ndarray:
        return np.vstack(self.jacobians)


@dataclass
class FitResult:
    """The point estimate ``values`` (profile units), its ``intervals`` (name -> (low, high), 90 % linearized
    bootstrap over segments), the optimizer's ``history`` (best error per generation) and its evaluation count."""

    parameters: tuple[FitParameter, ...]
    values: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    sensitivity: Sensitivity
    history: list[float] = field(default_factory=list)
    evaluations: int = 0

    def unit(self) -> np.ndarray:
        return np.array([p.to_unit(self.values[p.name]) for p in self.parameters])


def values_of(parameters: Sequence[FitParameter], unit: np.ndarray) -> dict[str, float]:
    """Profile-unit values of the unit-box point ``unit``."""
    return {p.name: p.from_unit(u) for p, u in zip(parameters, unit)}


def nominal_values(parameters: Sequence[FitParameter]) -> dict[str, float]:
    return {p.name: p.nominal for p in parameters}


def set_error(model: SystemModel, segments: Sequence[Segment], values: Mapping[str, float]) -> float:
    """Root of the mean squared replay error over ``segments`` (weighted RMS units, e.g. rad for arms)."""
    return float(np.sqrt(np.mean([replay_error(model, s, values) ** 2 for s in segments])))


def _minimize(model: SystemModel, segments: Sequence[Segment], settings: FitSettings,
              progress: Callable[[int, float], None] | None) -> tuple[np.ndarray, list[float], int]:
    import cma

    parameters = model.parameters
    start = np.array([p.to_unit(p.nominal) for p in parameters])
    options = {"bounds": [0.0, 1.0], "maxfevals": settings.evaluations, "seed": settings.seed + 1,
               "verbose": -9, "tolfun": 1e-7, "tolx": 1e-4}
    if settings.population:
        options["popsize"] = settings.population
    if len(parameters) == 1:  # cma's step-size cap (a third of the box) raises on its own 1-D vector: leave it off
        options["maxstd"] = float("inf")
    strategy = cma.CMAEvolutionStrategy(start, 0.25, options)
    history: list[float] = []
    evaluations = 0
    while not strategy.stop():
        candidates = strategy.ask()
        errors = [set_error(model, segments, values_of(parameters, np.asarray(x))) ** 2 for x in candidates]
        strategy.tell(candidates, errors)
        evaluations += len(candidates)
        history.append(float(np.sqrt(strategy.result.fbest)))
        if progress is not None:
            progress(evaluations, history[-1])
    return np.asarray(strategy.result.xbest, dtype=float), history, evaluations


def sensitivity(model: SystemModel, segments: Sequence[Segment], unit: np.ndarray,
                step: float = SENSITIVITY_STEP) -> Sensitivity:
    """Residuals at ``unit`` and central differences of them along each unit coordinate (one-sided at the box's
    edges), per segment."""
    parameters = model.parameters
    residuals, jacobians = [], []
    for segment in segments:
        def residual(x: np.ndarray) -> np.ndarray:
            predicted = model.simulate(segment, values_of(parameters, x))
            return ((predicted - segment.measured) * segment.weights).ravel()

        r0 = residual(unit)
        columns = []
        for i in range(len(parameters)):
            up, down = unit.copy(), unit.copy()
            up[i], down[i] = min(unit[i] + step, 1.0), max(unit[i] - step, 0.0)
            columns.append((residual(up) - residual(down)) / (up[i] - down[i]))
        residuals.append(r0)
        jacobians.append(np.stack(columns, axis=1))
    return Sensitivity(residuals, jacobians)


def bootstrap_intervals(parameters: Sequence[FitParameter], unit: np.ndarray, sens: Sensitivity,
                        rng: np.random.Generator, samples: int = BOOTSTRAP_SAMPLES,
                        coverage: float = 0.9) -> dict[str, tuple[float, float]]:
    """Per-parameter ``coverage`` intervals (profile units) from refits on segment resamples, each refit the
    Gauss-Newton step of the linearized replay (a small ridge keeps unidentifiable directions at the fit)."""
    count = len(sens.residuals)
    grams = [j.T @ j for j in sens.jacobians]
    pulls = [j.T @ r for j, r in zip(sens.jacobians, sens.residuals)]
    ridge = 1e-6 * max(float(np.trace(sum(grams))), 1e-12) / len(parameters)
    draws = []
    for _ in range(samples):
        picks = rng.integers(0, count, count)
        gram = sum(grams[i] for i in picks) + ridge * np.eye(len(parameters))
        pull = sum(pulls[i] for i in picks)
        draws.append(np.clip(unit - np.linalg.solve(gram, pull), 0.0, 1.0))
    draws = np.array(draws)
    tail = (1.0 - coverage) / 2.0 * 100.0
    low, high = np.percentile(draws, tail, axis=0), np.percentile(draws, 100.0 - tail, axis=0)
    return {p.name: (min(p.from_unit(lo), p.from_unit(u)), max(p.from_unit(hi), p.from_unit(u)))
            for p, lo, hi, u in zip(parameters, low, high, unit)}


def _objective(sens: Sensitivity) -> float:
    """The fit's objective (mean over segments of the mean squared weighted residual) at ``sens``'s point."""
    return float(np.mean([np.mean(r ** 2) for r in sens.residuals]))


def polish(model: SystemModel, segments: Sequence[Segment], unit: np.ndarray, steps: int,
           progress: Callable[[int, float], None] | None = None,
           evaluations: int = 0) -> tuple[np.ndarray, Sensitivity, int, list[float]]:
    """Up to ``steps`` Levenberg-Marquardt steps from ``unit`` (each segment's rows weighted as in the objective);
    a step is taken only if it lowers the objective. Returns the point, its sensitivities, the evaluation count
    (replays of the whole set) and the objective's root after each step taken."""
    sens = sensitivity(model, segments, unit)
    evaluations += 2 * len(unit) + 1
    history: list[float] = []
    for _ in range(steps):
        scale = [1.0 / np.sqrt(r.size) for r in sens.residuals]
        jac = np.vstack([j * s for j, s in zip(sens.jacobians, scale)])
        res = np.concatenate([r * s for r, s in zip(sens.residuals, scale)]) / np.sqrt(len(segments))
        jac = jac / np.sqrt(len(segments))
        gram, pull, current = jac.T @ jac, jac.T @ res, _objective(sens)
        better = None
        for damping in POLISH_DAMPING:
            lm = gram + damping * np.diag(np.maximum(np.diag(gram), 1e-12))
            trial = np.clip(unit - np.linalg.solve(lm, pull), 0.0, 1.0)
            error = set_error(model, segments, values_of(model.parameters, trial)) ** 2
            evaluations += 1
            if error < current:
                better = trial
                break
        if better is None:
            break
        unit = better
        sens = sensitivity(model, segments, unit)
        evaluations += 2 * len(unit) + 1
        history.append(float(np.sqrt(_objective(sens))))
        if progress is not None:
            progress(evaluations, history[-1])
    return unit, sens, evaluations, history


def fit(model: SystemModel, segments: Sequence[Segment], settings: FitSettings = FitSettings(),
        progress: Callable[[int, float], None] | None = None) -> FitResult:
    """Fit ``model``'s parameters to the training ``segments``; ``progress(evaluations, best error)``."""
    unit, history, evaluations = _minimize(model, segments, settings, progress)
    steps = int(getattr(model, "polish_steps", 0))
    if steps > 0:
        unit, sens, evaluations, polished = polish(model, segments, unit, steps, progress, evaluations)
        history += polished
    else:
        sens = sensitivity(model, segments, unit)
    rng = np.random.default_rng(settings.seed)
    intervals = bootstrap_intervals(model.parameters, unit, sens, rng)
    return FitResult(tuple(model.parameters), values_of(model.parameters, unit), intervals, sens, history,
                     evaluations)
