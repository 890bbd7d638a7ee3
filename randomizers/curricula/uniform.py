"""Fixed-range domain randomization (:class:`UniformTeacher`) and hand-made widening (:class:`ScheduleTeacher`)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from randomizers.curricula.base import Task, Teacher
from randomizers.params import ParamSpace


class UniformTeacher(Teacher):
    """Every episode samples the space's current ranges (each Param's own distribution); ranges never move."""

    name = "uniform"

    def sample(self, env_index: int = 0) -> Task:
        return Task(self.space.sample(self.rng))


class ScheduleTeacher(UniformTeacher):
    """Ranges move from the space's ranges to ``end_ranges`` over ``horizon`` reported episodes.

    Args:
        end_ranges: ``{name: (low, high)}`` targets; dims not named keep their range. Must contain the start range.
        horizon: episodes until the end ranges are reached.
        mode: ``linear`` (interpolated, moved in ``resolution`` equal steps) or ``step`` (``stages`` jumps, the
            k-th after ``k * horizon / stages`` episodes).
    """

    name = "schedule"

    def __init__(self, space: ParamSpace, end_ranges: Mapping[str, Sequence[float]], horizon: int,
                 mode: str = "linear", stages: int = 4, resolution: int = 100, seed: int = 0) -> None:
        super().__init__(space, seed)
        if mode not in ("linear", "step"):
            raise ValueError(f"curriculum option 'mode': {mode!r} is not one of linear, step")
        if int(horizon) < 1:
            raise ValueError(f"curriculum option 'horizon': expected an integer >= 1, got {horizon!r}")
        if int(stages) < 1 or int(resolution) < 1:
            raise ValueError("curriculum options 'stages' and 'resolution' must be integers >= 1")
        self.mode, self.horizon = mode, int(horizon)
        self.steps = int(stages) if mode == "step" else int(resolution)
        self.start = self.ranges()
        self.end = dict(self.start)
        for name, pair in end_ranges.items():
            if name not in self.space.dims:
                raise ValueError(f"curriculum option 'end_ranges': {name!r} is not a continuous param "
                                 f"(known: {', '.join(self.space.dims)})")
            low, high = float(pair[0]), float(pair[1])
            s_low, s_high = self.start[name]
            if low > s_low or high < s_high:
                raise ValueError(f"curriculum option 'end_ranges': {name} [{low}, {high}] must contain the start "
                                 f"range [{s_low}, {s_high}]")
            self.space[name].check_range(low, high)
            self.end[name] = [low, high]
        self.stage = 0

    def _update(self, task: Task, episode_return: float, success: Any, signals: dict[str, float]) -> None:
        stage = min(self.steps, math.floor(self.episodes * self.steps / self.horizon))
        if stage != self.stage:
            self.stage = stage
            self._apply_stage()

    def _apply_stage(self) -> None:
        f = self.stage / self.steps
        for name, (e_low, e_high) in self.end.items():
            s_low, s_high = self.start[name]
            low, high = s_low + f * (e_low - s_low), s_high + f * (e_high - s_high)
            if (low, high) != tuple(self.space[name].range or ()):
                self.space.set_range(name, low, high)
                self._record_range(name, stage=self.stage)

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "progress": self.stage / self.steps}

    def _extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        self.stage = int(state["stage"])
