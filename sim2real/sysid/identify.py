"""``sysid fit`` as one call: logs -> segments -> held-out split -> fit -> gate -> reality profile, training ranges,
report. Outputs beside ``out`` (the fitted reality profile, YAML): ``STEM_ranges.yaml`` (the ``randomizers:``
block), ``STEM_report.html`` (+ ``.png``, ``.json``) and, with a launch file, ``STEM_launch.yaml`` (that launch file
with the fitted ranges)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import yaml

from sim2real.errors import UserError
from sim2real.io import atomic_write_text
from sim2real.sysid.fit import FitSettings, fit, nominal_values, set_error
from sim2real.sysid.gate import DEFAULT_FACTOR, identifiability, judge, split
from sim2real.sysid.model import SystemModel, log_meta
from sim2real.sysid.ranges import apply_block, training_intervals
from sim2real.sysid.report import summary, write_report


def model_for(records: list[dict], path: str = "log") -> SystemModel:
    """The model that fits the log ``records`` (meta ``kind``: ``multirotor`` -> quadrotor, else the arm)."""
    meta = log_meta(records, path)
    if meta.get("kind") == "multirotor":
        from sim2real.sysid.quadrotor import quadrotor_model  # lazy: arm-only installs never import it
        return quadrotor_model(meta)
    from sim2real.sysid.arm import arm_model
    return arm_model(meta, path)


def read_deployment_log(path: str) -> list[dict]:
    """Records of a deployment log; a missing, unreadable, corrupt (a bad line before the last) or empty log is a
    one-line :class:`UserError`. A torn last line (a crashed run) is dropped, as ``read_log`` does."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: no such log") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a deployment log") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the log ({getattr(err, 'strerror', None) or err})") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn final line
            raise UserError(f"{path}: line {number} is not a JSON record (corrupt log)") from None
        if not isinstance(record, dict) or "type" not in record:
            raise UserError(f"{path}: line {number} is not a log record (no 'type')")
        records.append(record)
    if not records:
        raise UserError(f"{path}: no complete log record (empty or torn log)")
    return records


class Pinned:
    """``model`` with some parameters held at given values (None: nominal) and the rest left to the fit."""

    def __init__(self, model: SystemModel, fixed: Mapping[str, float | None]) -> None:
        names = {p.name: p for p in model.parameters}
        unknown = sorted(set(fixed) - set(names))
        if unknown:
            raise UserError(f"--fixed {unknown[0]}: not a parameter (allowed: {', '.join(names)})")
        self.model, self.kind = model, model.kind
        self.pinned = {k: names[k].nominal if v is None else float(v) for k, v in fixed.items()}
        for name, value in self.pinned.items():
            if not names[name].low <= value <= names[name].high:
                raise UserError(f"--fixed {name}={value}: outside {names[name].low}..{names[name].high}")
        self.parameters = tuple(p for p in model.parameters if p.name not in fixed)

    def __getattr__(self, name: str):
        return getattr(self.model, name)  # spec, channels, close, ...

    def segments(self, records: list[dict], segment_s: float):
        return self.model.segments(records, segment_s)

    def simulate(self, segment, values: Mapping[str, float]):
        return self.model.simulate(segment, {**self.pinned, **values})

    def reality_profile(self, values: Mapping[str, float], name: str) -> dict:
        return self.model.reality_profile({**self.pinned, **values}, name)

    def randomizer_block(self, intervals: Mapping[str, tuple[float, float]]) -> dict:
        """The fitted intervals plus each pinned value with the ranges' minimum spread around it."""
        pinned = [p for p in self.model.parameters if p.name in self.pinned]
        around = training_intervals(pinned, self.pinned, {})
        return self.model.randomizer_block({**around, **intervals})


def _dump(path: str, data: dict, header: str) -> None:
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False))


@dataclass(frozen=True)
class Outputs:
    profile: str
    ranges: str
    report: str
    launch: str | None


def outputs_for(out: str, launch: str | None) -> Outputs:
    stem = os.path.splitext(out)[0]
    return Outputs(out, stem + "_ranges.yaml", stem + "_report.html", stem + "_launch.yaml" if launch else None)


def identify(logs: Sequence[str], out: str, segment_s: float = 4.0, settings: FitSettings = FitSettings(),
             factor: float = DEFAULT_FACTOR, launch: str | None = None, truth: Mapping[str, float] | None = None,
             progress: Callable[[int, float], None] | None = None,
             fixed: Mapping[str, float | None] | None = None) -> dict:
    """Fit the logs' robot, write the outputs (:func:`outputs_for`), return the report's data (+ ``outputs``).
    ``truth`` (benchmarks): the real values, shown beside the estimates. ``fixed``: parameters held at a value
    (None: nominal), e.g. a mass weighed on a scale."""
    started = time.monotonic()
    records = [read_deployment_log(path) for path in logs]
    model = model_for(records[0], logs[0])
    for path, recs in zip(logs[1:], records[1:]):
        other = model_for(recs, path)
        if other.kind != model.kind or getattr(other, "spec", None) != getattr(model, "spec", None):
            raise UserError(f"{path}: another robot than {logs[0]} ({other.kind}); fit one robot at a time")
    measured = getattr(model, "measured", lambda _: {})(records[0])
    fixed = {**measured, **(fixed or {})}
    if fixed:
        model = Pinned(model, fixed)
    try:
        per_log = [model.segments(recs, segment_s) if i == 0 else model_for(recs, path).segments(recs, segment_s)
                   for i, (path, recs) in enumerate(zip(logs, records))]
        train, held = split(per_log)
        nominal = nominal_values(model.parameters)
        result = fit(model, train, settings, progress)
        before, after = set_error(model, held, nominal), set_error(model, held, result.values)
        ident = identifiability(result)
        verdict = judge(before, after, factor, ident, model.parameters, getattr(model, "error_units", ""))
        data = summary(model, result, verdict, ident, logs, time.monotonic() - started, truth)
        data["train_error"] = {"before": set_error(model, train, nominal), "after": set_error(model, train,
                                                                                                 result.values)}
        data["measured"] = measured
        data["command_delay_s"] = getattr(model, "command_delay", None)  # arms: read -> write, s (10/50/90 %)
        data["segments"] = {"train": len(train), "held_out": len(held), "segment_s": segment_s}
        used = np.flatnonzero(np.any([s.weights > 0 for s in train], axis=0))
        channels = getattr(model, "channels", None)
        data["channels_compared"] = [channels[i] if channels else f"channel {i}" for i in used]
        paths = outputs_for(out, launch)
        name = os.path.splitext(os.path.basename(out))[0]
        status = "accepted" if verdict.accepted else "REJECTED by the replay gate: " + "; ".join(verdict.reasons)
        _dump(paths.profile, model.reality_profile(result.values, name),
              f"# Fitted by `sim2real sysid fit` from {', '.join(logs)}\n# Held-out replay error {before:.4g} -> "
              f"{after:.4g} ({verdict.ratio:.2f}x); {status}\n")
        widened = training_intervals(model.parameters, result.values, result.intervals)
        block = model.randomizer_block(widened)
        _dump(paths.ranges, block, "# Training ranges centred on the fit (90 % segment bootstrap, at least "
                                   "5 % of each search box either side); merge into a launch file's randomizers\n")
        if launch:
            from sim2real.user_files import read_yaml_mapping

            _dump(paths.launch, apply_block(read_yaml_mapping(launch, "launch file"), block),
                  f"# {launch} with the ranges fitted by `sim2real sysid fit` ({os.path.basename(paths.ranges)})\n")
        data["wall_s"] = time.monotonic() - started
        write_report(model, result, held, nominal, data, paths.report)
        data["outputs"] = {k: v for k, v in vars(paths).items() if v}
        return data
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()
