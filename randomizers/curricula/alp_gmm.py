"""ALP-GMM (Portelas et al. 2019): sample tasks where absolute learning progress (ALP) is high.

Tasks are the continuous dims of the space, normalized to [0, 1] over their current (fixed) ranges; dims with a
point range are left out. ALP of a finished episode = |performance - performance of the nearest earlier task|.
Every ``fit_rate`` episodes GMMs with ``k_min..k_max`` components are fitted on (task, ALP) over the last
``window`` episodes and the one with the lowest AIC kept. Sampling: a Gaussian chosen proportionally to its mean
ALP, a task drawn from it and clipped to [0, 1]; a ``random_ratio`` share (and the first ``bootstrap`` episodes)
is uniform.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from randomizers.curricula.base import Task, Teacher, score_of
from randomizers.curricula.gmm import GMM, best_gmm_by_aic
from randomizers.params import ParamSpace


class ALPGMMTeacher(Teacher):
    """Absolute-learning-progress teacher with a GMM over (task, ALP).

    Args:
        metric: performance per episode, ``return`` or ``success``.
        fit_rate: episodes between GMM refits (paper class default 250, TeachMyAgent 150).
        k_min, k_max: component counts tried (AIC picks one).
        random_ratio: share of uniformly sampled tasks after the bootstrap.
        bootstrap: first episodes sampled uniformly.
        window: most recent (task, ALP) points a fit sees; ``history`` caps the nearest-neighbour memory.
    """

    name = "alp_gmm"

    def __init__(self, space: ParamSpace, metric: str = "return", fit_rate: int = 150, k_min: int = 2,
                 k_max: int = 10, random_ratio: float = 0.2, bootstrap: int = 150, window: int = 1000,
                 history: int = 20000, seed: int = 0) -> None:
        super().__init__(space, seed)
        if metric not in ("success", "return"):
            raise ValueError(f"curriculum option 'metric': {metric!r} is not one of success, return")
        for option, value, low in (("fit_rate", fit_rate, 1), ("k_min", k_min, 1), ("k_max", k_max, k_min),
                                   ("bootstrap", bootstrap, 0), ("window", window, 2), ("history", history, 2)):
            if int(value) < low:
                raise ValueError(f"curriculum option '{option}': expected an integer >= {low}, got {value!r}")
        if not 0.0 <= float(random_ratio) <= 1.0:
            raise ValueError(f"curriculum option 'random_ratio': {random_ratio} is not in [0, 1]")
        self.metric, self.fit_rate, self.ks = metric, int(fit_rate), list(range(int(k_min), int(k_max) + 1))
        self.random_ratio, self.bootstrap = float(random_ratio), int(bootstrap)
        self.window, self.history = int(window), int(history)
        self.active = [n for n in self.space.dims if self.space[n].high > self.space[n].low]
        if not self.active:
            raise ValueError("ALP-GMM needs at least one param with a non-degenerate range")
        low, high = self.space.bounds()
        idx = [self.space.dims.index(n) for n in self.active]
        self.low, self.width = low[idx], (high - low)[idx]
        self.tasks: list[list[float]] = []  # normalized tasks seen (nearest-neighbour memory)
        self.perf: list[float] = []
        self.alps: list[float] = []  # ALP of each task in self.tasks
        self.gmm: GMM | None = None

    # -- task <-> normalized vector ------------------------------------------------------------------------
    def _to_unit(self, values: Mapping[str, Any]) -> np.ndarray:
        return (np.array([float(values[n]) for n in self.active]) - self.low) / self.width

    def _from_unit(self, u: np.ndarray) -> Task:
        fixed = dict(zip(self.active, (self.low + np.clip(u, 0.0, 1.0) * self.width).tolist()))
        for n in self.active:
            if self.space[n].integer:
                fixed[n] = int(round(fixed[n]))
        return Task(self.space.sample(self.rng, fixed=fixed))

    # -- contract -----------------------------------------------------------------------------------------
    def sample(self, env_index: int = 0) -> Task:
        if self.gmm is None or self.episodes < self.bootstrap or self.rng.random() < self.random_ratio:
            return self._from_unit(self.rng.random(len(self.active)))
        alp_means = np.maximum(self.gmm.means[:, -1], 0.0)
        p = alp_means / alp_means.sum() if alp_means.sum() > 0 else np.full(self.gmm.k, 1.0 / self.gmm.k)
        j = int(self.rng.choice(self.gmm.k, p=p))
        d = len(self.active)
        return self._from_unit(self.rng.multivariate_normal(self.gmm.means[j, :d], self.gmm.covs[j, :d, :d]))

    def _update(self, task: Task, episode_return: float, success: Any, signals: dict[str, float]) -> None:
        u = self._to_unit(task)
        perf = score_of(episode_return, success, self.metric)
        if self.tasks:
            dist = ((np.asarray(self.tasks) - u) ** 2).sum(axis=1)
            alp = abs(perf - self.perf[int(np.argmin(dist))])
        else:
            alp = 0.0
        self.tasks.append(u.tolist())
        self.perf.append(perf)
        self.alps.append(alp)
        if len(self.tasks) > self.history:
            del self.tasks[0], self.perf[0], self.alps[0]
        if self.episodes >= self.bootstrap and self.episodes % self.fit_rate == 0:
            self._fit()

    def _fit(self) -> None:
        data = np.column_stack([np.asarray(self.tasks[-self.window:]), np.asarray(self.alps[-self.window:])])
        self.gmm = best_gmm_by_aic(data, self.ks, self.rng)

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        recent = self.alps[-self.fit_rate:]
        out["alp_mean"] = float(np.mean(recent)) if recent else 0.0
        if self.gmm is not None:
            out["gmm_components"] = float(self.gmm.k)
            out["gmm_alp_max"] = float(self.gmm.means[:, -1].max())
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "perf": self.perf, "alps": self.alps,
                "gmm": None if self.gmm is None else self.gmm.to_dict()}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        self.tasks = [list(map(float, t)) for t in state["tasks"]]
        self.perf = [float(x) for x in state["perf"]]
        self.alps = [float(x) for x in state["alps"]]
        self.gmm = None if state["gmm"] is None else GMM.from_dict(state["gmm"])
