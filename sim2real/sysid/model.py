"""The contract between the system-identification framework (fit, gate, ranges, report, CLI) and a robot model.

A :class:`SystemModel` turns deployment-log records (``sim2real.deploy.log.read_log``) into replayable
:class:`Segment` s, replays a segment's logged commands at their logged times through the robot's simulator with
candidate parameter values, and writes the fitted values back as a reality profile (the emulator's schema,
``launch/realities/*.yaml``) and as a launch file's ``randomizers:`` block. The framework knows nothing of arms or
quadcopters: it only sees parameter names, boxes and the replay error.

Parameter values travel as ``Mapping[str, float]`` keyed by :attr:`FitParameter.name` in *profile units* (the
reality-profile key's own units: scales are dimensionless, ``latency_s`` in s, ...). A model must accept any value
inside each parameter's ``low..high`` box; missing keys take ``nominal``.

Each robot kind lives in its own module with one factory taking the log's meta record (the log's first record):
``sim2real.sysid.arm.arm_model(meta)`` and ``sim2real.sysid.quadrotor.quadrotor_model(meta)``, both returning a
:class:`SystemModel`; :func:`sim2real.sysid.identify.model_for` dispatches on ``meta["kind"]``
(``"multirotor"`` -> quadrotor).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol

import numpy as np

from sim2real.errors import UserError


@dataclass(frozen=True)
class FitParameter:
    """One identifiable parameter: the reality-profile key it sets (e.g. ``mass_scale``, ``latency_s``,
    ``kf_scale``), its nominal value and search box in profile units; ``log_scale`` searches ``log(value)``
    (positive scales spanning a factor of several)."""

    name: str
    nominal: float
    low: float
    high: float
    log_scale: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.nominal <= self.high or (self.log_scale and self.low <= 0):
            raise ValueError(f"parameter {self.name}: nominal {self.nominal} outside {self.low}..{self.high} "
                             "(or a log-scale box that is not positive)")

    def to_unit(self, value: float) -> float:
        """``value`` mapped to 0..1 across the box (log-spaced for ``log_scale``); the optimizer's coordinates."""
        if self.log_scale:
            return float((np.log(value) - np.log(self.low)) / (np.log(self.high) - np.log(self.low)))
        return float((value - self.low) / (self.high - self.low))

    def from_unit(self, unit: float) -> float:
        """The inverse of :meth:`to_unit`, clipped into the box."""
        unit = float(np.clip(unit, 0.0, 1.0))
        if self.log_scale:
            return float(np.exp(np.log(self.low) + unit * (np.log(self.high) - np.log(self.low))))
        return float(self.low + unit * (self.high - self.low))


@dataclass(frozen=True)
class Segment:
    """A contiguous piece of one log, replayable on its own.

    ``times`` (T,) s: logged command times (monotonic, from the log's own clock); ``commands`` (T, m): the
    commands as sent at those times (arm: servo position targets, rad; quadcopter: CTBR or setpoints);
    ``measured`` (T, n): the measured state the fit compares against, read at those times (before the command of
    the same row was sent); ``initial``: the state the replay starts from (model-specific layout); ``weights``
    (n,): per-channel weights (1 / typical scale) for the error; ``source``: log path and where in it (reports);
    ``write_times`` (T,) s: when each command left, where the log says (same clock as ``times``; None: unknown, the
    model's latency places them).
    """

    times: np.ndarray
    commands: np.ndarray
    measured: np.ndarray
    initial: np.ndarray
    weights: np.ndarray
    source: str = ""
    write_times: np.ndarray | None = None

    @property
    def duration(self) -> float:
        """s from the first to the last row."""
        return float(self.times[-1] - self.times[0])


class SystemModel(Protocol):
    """A robot kind the identification can fit (``kind``: ``"arm"`` or ``"quadrotor"``)."""

    kind: str
    parameters: tuple[FitParameter, ...]

    def segments(self, records: list[dict], segment_s: float) -> list[Segment]:
        """Replayable pieces of about ``segment_s`` s from one log's records; :class:`UserError` if the log holds
        nothing usable (no steps, missing fields, too short), naming what is missing."""
        ...

    def simulate(self, segment: Segment, values: Mapping[str, float]) -> np.ndarray:
        """The predicted ``measured`` (T, n) of ``segment`` under parameter ``values`` (profile units)."""
        ...

    def reality_profile(self, values: Mapping[str, float], name: str) -> dict:
        """A YAML mapping in the ``launch/realities`` schema of this robot kind, with the fitted ``values``
        (parameters not fitted keep their defaults), named ``name``; loadable by the emulator."""
        ...

    def randomizer_block(self, intervals: Mapping[str, tuple[float, float]]) -> dict:
        """A launch file's ``randomizers:`` mapping whose Param ranges cover ``intervals`` (name -> (low, high) in
        profile units, from the fit's uncertainty), translated into the training randomizers' own Params."""
        ...


def replay_error(model: SystemModel, segment: Segment, values: Mapping[str, float]) -> float:
    """Weighted RMS difference (dimensionless) between the measured and the replayed trajectory of ``segment``."""
    predicted = model.simulate(segment, values)
    residual = (predicted - segment.measured) * segment.weights
    return float(np.sqrt(np.mean(residual ** 2)))


def log_meta(records: list[dict], path: str = "log") -> dict:
    """The meta record (the log's first) of ``records``; one-line :class:`UserError` if it is missing."""
    if not records or records[0].get("type") != "meta":
        raise UserError(f"{path}: not a deployment log (no meta record first)")
    return records[0]
