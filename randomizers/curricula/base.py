"""The teacher contract shared by every curriculum, and the per-episode :class:`Task` it hands out.

A teacher owns a copy of the randomization :class:`~randomizers.params.ParamSpace`. ``sample(env_index)`` returns a
:class:`Task`: the full set of values to pin for one episode (a ``dict`` name -> value) plus the teacher's own
bookkeeping (which boundary an ADR evaluation pins, which PLR level is replayed, whether the episode's data may be
used for training). ``update(task, episode_return, success)`` reports how the episode went. State is JSON-able.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from randomizers.params import ParamSpace, Scalar


class Task(dict):
    """Values for one episode (``{param name: value}``) plus teacher bookkeeping.

    Attributes:
        boundary: ADR boundary index pinned in this episode (``2 * dim + is_high``), -1 when none.
        level: PLR level id replayed in this episode, -1 for a new level.
        train: False when the episode is an evaluation whose data should not be trained on.
        stamp: teacher state the task was drawn under (ADR: how often its boundary had moved), so results that
            arrive after the state changed can be told apart.
    """

    def __init__(self, values: Mapping[str, Scalar] = (), boundary: int = -1, level: int = -1,
                 train: bool = True, stamp: int = 0) -> None:
        super().__init__(values)
        self.boundary = int(boundary)
        self.level = int(level)
        self.train = bool(train)
        self.stamp = int(stamp)

    def meta(self) -> dict[str, Any]:
        return {"boundary": self.boundary, "level": self.level, "train": self.train, "stamp": self.stamp}

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self), **self.meta()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(data["values"], int(data["boundary"]), int(data["level"]), bool(data["train"]),
                   int(data.get("stamp", 0)))


def as_task(values: Mapping[str, Scalar]) -> Task:
    """``values`` if it is a :class:`Task`, else a plain Task (no boundary, no level)."""
    return values if isinstance(values, Task) else Task(values)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-able state of a numpy Generator (PCG64 state dict: ints and strings only)."""
    return rng.bit_generator.state


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = dict(state)
    return rng


def ranges_of(space: ParamSpace) -> dict[str, list[float]]:
    """``{dim name: [low, high]}`` over the space's continuous dims."""
    return {n: [float(space[n].low), float(space[n].high)] for n in space.dims}


def entropy_of(space: ParamSpace, names: list[str]) -> float:
    """ADR entropy (nats per dimension) over ``names``: mean log(high - low), degenerate ranges left out."""
    widths = [space[n].high - space[n].low for n in names if space[n].high > space[n].low]
    return float(np.mean(np.log(widths))) if widths else -math.inf


class Teacher(ABC):
    """Base class of every curriculum over a ParamSpace.

    Args:
        space: the randomization space (copied; the teacher changes only ranges of its copy).
        seed: seed of the teacher's own ``numpy.random.Generator``.
    """

    name: str = "teacher"
    #: True when ``update`` needs value-function signals (``signals=``) only an on-policy trainer provides.
    needs_value_signals: bool = False

    def __init__(self, space: ParamSpace, seed: int = 0) -> None:
        self.space = space.copy()
        self.rng = np.random.default_rng(seed)
        self.episodes = 0  # episodes reported through update()
        self._events: list[dict[str, Any]] = []

    # -- contract -------------------------------------------------------------------------------------------
    @abstractmethod
    def sample(self, env_index: int = 0) -> Task:
        """Values for the next episode of vectorized env ``env_index``."""

    def update(self, values: Mapping[str, Scalar], episode_return: float, success: bool | float | None = None,
               signals: Mapping[str, float] | None = None) -> None:
        """Report a finished episode run with ``values`` (ideally the :class:`Task` from :meth:`sample`).

        ``signals`` holds optional per-episode value-function statistics (see :mod:`randomizers.curricula.plr`).
        """
        self.episodes += 1
        self._update(as_task(values), float(episode_return), success, dict(signals or {}))

    def _update(self, task: Task, episode_return: float, success: bool | float | None,
                signals: dict[str, float]) -> None:
        """Teacher-specific part of :meth:`update` (default: nothing to learn)."""

    def metrics(self) -> dict[str, float]:
        """Scalars for TensorBoard (keys without a prefix)."""
        return {"entropy_npd": self.entropy(), "episodes": float(self.episodes)}

    def entropy(self) -> float:
        """Entropy of the current sampling ranges, nats per (non-degenerate) dimension."""
        return entropy_of(self.space, self.space.dims)

    def ranges(self) -> dict[str, list[float]]:
        return ranges_of(self.space)

    def pop_events(self) -> list[dict[str, Any]]:
        """Range changes since the last call (for the JSON-lines history); each has ``param``, ``low``, ``high``."""
        events, self._events = self._events, []
        return events

    def _record_range(self, name: str, **extra: Any) -> None:
        p = self.space[name]
        self._events.append({"param": name, "low": float(p.low), "high": float(p.high),
                             "entropy_npd": self.entropy(), "episodes": self.episodes, **extra})

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state; :meth:`load_state_dict` on a teacher built with the same options restores it."""
        return {"teacher": self.name, "ranges": self.ranges(), "rng": rng_state(self.rng),
                "episodes": self.episodes, **self._extra_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("teacher") != self.name:
            raise ValueError(f"curriculum state is for teacher {state.get('teacher')!r}, not {self.name!r}")
        for n, (low, high) in state["ranges"].items():
            self.space.set_range(n, low, high)
        self.rng = rng_from_state(state["rng"])
        self.episodes = int(state["episodes"])
        self._load_extra(state)

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` wrote."""


def score_of(episode_return: float, success: bool | float | None, metric: str) -> float:
    """Performance of one episode: ``success`` (0/1, needs a success flag) or ``return``."""
    if metric == "success":
        if success is None:
            raise ValueError("performance metric 'success' needs the episode's success flag")
        return float(success)
    return float(episode_return)
