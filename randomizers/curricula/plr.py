"""Prioritized Level Replay and Robust PLR (Jiang et al. 2021) over parameter vectors ("levels").

A buffer holds up to ``capacity`` levels with a score each. With probability ``replay_prob`` (once the buffer holds
``min_fill`` levels) a level is replayed from P = (1 - rho) P_score + rho P_staleness, where P_score is rank
prioritization h = (1 / rank) ** (1 / temperature) and P_staleness ∝ (samples so far - sample count when the level
was last drawn). Otherwise a new level is drawn from the space's ranges; when the buffer is full it replaces the
lowest-scoring level if its score is higher. Robust PLR marks new levels ``train=False`` (evaluated only).

Scores (``score=``):
    ``positive_value_loss``: mean over the episode of max(GAE_t, 0) — needs ``signals["positive_value_loss"]``;
    ``l1_value_loss``: mean |GAE_t| — needs ``signals["l1_value_loss"]``;
    ``max_mc``: best return ever seen on the level minus the mean value estimate — needs ``signals["mean_value"]``;
    ``success``: learnability p (1 - p) with p the level's posterior-mean success rate (Beta(1, 1) prior).
:func:`episode_signals` computes the value signals from one episode's rewards and value estimates.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from randomizers.curricula.base import Task, Teacher
from randomizers.params import ParamSpace

SCORES = ("positive_value_loss", "l1_value_loss", "max_mc", "success")


def episode_signals(rewards: Sequence[float], values: Sequence[float], last_value: float, gamma: float,
                    gae_lambda: float) -> dict[str, float]:
    """Value signals of one episode: ``positive_value_loss``, ``l1_value_loss`` (from GAE) and ``mean_value``.

    ``last_value`` is V of the state after the last step (0 when the episode terminated).
    """
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    if len(r) == 0 or len(r) != len(v):
        raise ValueError(f"episode_signals: need equally long, non-empty rewards and values ({len(r)}, {len(v)})")
    nxt = np.append(v[1:], last_value)
    delta = r + gamma * nxt - v
    adv, running = np.empty_like(delta), 0.0
    for t in range(len(delta) - 1, -1, -1):
        running = delta[t] + gamma * gae_lambda * running
        adv[t] = running
    return {"positive_value_loss": float(np.maximum(adv, 0.0).mean()), "l1_value_loss": float(np.abs(adv).mean()),
            "mean_value": float(v.mean())}


class PLRTeacher(Teacher):
    """Prioritized level replay over parameter vectors; ``robust=True`` for Robust PLR."""

    name = "plr"

    def __init__(self, space: ParamSpace, score: str = "positive_value_loss", capacity: int = 256,
                 replay_prob: float = 0.9, temperature: float = 0.3, staleness_coef: float = 0.3,
                 min_fill: int | None = None, robust: bool = False, seed: int = 0) -> None:
        super().__init__(space, seed)
        if score not in SCORES:
            raise ValueError(f"curriculum option 'score': {score!r} is not one of {', '.join(SCORES)}")
        if int(capacity) < 1:
            raise ValueError(f"curriculum option 'capacity': expected an integer >= 1, got {capacity!r}")
        for option, value in (("replay_prob", replay_prob), ("staleness_coef", staleness_coef)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"curriculum option '{option}': {value} is not in [0, 1]")
        if not float(temperature) > 0:
            raise ValueError(f"curriculum option 'temperature': expected > 0, got {temperature}")
        self.score_name, self.capacity, self.replay_prob = score, int(capacity), float(replay_prob)
        self.temperature, self.staleness_coef, self.robust = float(temperature), float(staleness_coef), bool(robust)
        self.min_fill = self.capacity if min_fill is None else int(min_fill)
        if not 1 <= self.min_fill <= self.capacity:
            raise ValueError(f"curriculum option 'min_fill': {min_fill} is not in [1, capacity={self.capacity}]")
        self.needs_value_signals = score != "success"
        self.levels: dict[int, dict[str, Any]] = {}  # id -> {values, score, last, count, max_return, succ, n}
        self.next_id = 0
        self.samples = 0  # sample() calls (staleness clock)
        self.replays = 0

    # -- replay distribution ------------------------------------------------------------------------------
    def replay_distribution(self) -> tuple[list[int], np.ndarray]:
        """(level ids, probabilities) of the replay distribution."""
        ids = list(self.levels)
        scores = np.array([self.levels[i]["score"] for i in ids], float)
        ranks = np.empty(len(ids))
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(ids) + 1)
        h = (1.0 / ranks) ** (1.0 / self.temperature)
        p_score = h / h.sum()
        stale = np.array([self.samples - self.levels[i]["last"] for i in ids], float)
        p_stale = stale / stale.sum() if stale.sum() > 0 else np.full(len(ids), 1.0 / len(ids))
        return ids, (1.0 - self.staleness_coef) * p_score + self.staleness_coef * p_stale

    def sample(self, env_index: int = 0) -> Task:
        replay = len(self.levels) >= self.min_fill and self.rng.random() < self.replay_prob
        if replay:
            ids, p = self.replay_distribution()
            level = ids[int(self.rng.choice(len(ids), p=p))]
        self.samples += 1
        if replay:
            self.levels[level]["last"] = self.samples  # staleness 0 at the next draw
            self.replays += 1
            return Task(self.levels[level]["values"], level=level)
        return Task(self.space.sample(self.rng), level=-1, train=not self.robust)

    # -- scoring ------------------------------------------------------------------------------------------
    def _score(self, entry: dict[str, Any], episode_return: float, success: Any, signals: dict[str, float]) -> float:
        if self.score_name == "success":
            if success is None:
                raise ValueError("PLR score 'success' needs the episode's success flag")
            entry["n"] += 1
            entry["succ"] += float(success)
            p = (entry["succ"] + 1.0) / (entry["n"] + 2.0)
            return p * (1.0 - p)
        if self.score_name == "max_mc":
            if "mean_value" not in signals:
                raise ValueError("PLR score 'max_mc' needs signals['mean_value'] (see episode_signals)")
            return entry["max_return"] - signals["mean_value"]
        if self.score_name not in signals:
            raise ValueError(f"PLR score {self.score_name!r} needs signals[{self.score_name!r}] (see episode_signals)")
        return float(signals[self.score_name])

    def _update(self, task: Task, episode_return: float, success: Any, signals: dict[str, float]) -> None:
        if task.level >= 0:
            entry = self.levels.get(task.level)
            if entry is None:
                return  # evicted while the episode ran
        else:
            entry = {"values": dict(task), "score": 0.0, "last": self.samples, "count": 0,
                     "max_return": -np.inf, "succ": 0.0, "n": 0}
        entry["max_return"] = max(entry["max_return"], episode_return)
        entry["score"] = self._score(entry, episode_return, success, signals)
        entry["count"] += 1
        if task.level >= 0:
            return
        if len(self.levels) >= self.capacity:
            worst = min(self.levels, key=lambda i: self.levels[i]["score"])
            if self.levels[worst]["score"] >= entry["score"]:
                return
            del self.levels[worst]
        self.levels[self.next_id] = entry
        self.next_id += 1

    # -- reporting / state ----------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        out["buffer_fill"] = len(self.levels) / self.capacity
        out["replay_fraction"] = self.replays / max(self.samples, 1)
        if self.levels:
            scores = [e["score"] for e in self.levels.values()]
            out["score_mean"], out["score_max"] = float(np.mean(scores)), float(np.max(scores))
            out["staleness_mean"] = float(np.mean([self.samples - e["last"] for e in self.levels.values()]))
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"levels": {str(i): {**e, "max_return": None if e["max_return"] == -np.inf else e["max_return"]}
                           for i, e in self.levels.items()},
                "next_id": self.next_id, "samples": self.samples, "replays": self.replays}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        self.levels = {int(i): {**e, "values": dict(e["values"]),
                                "max_return": -np.inf if e["max_return"] is None else float(e["max_return"])}
                       for i, e in state["levels"].items()}
        self.next_id, self.samples, self.replays = int(state["next_id"]), int(state["samples"]), int(state["replays"])
