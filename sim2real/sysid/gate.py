"""The replay gate: a fit is accepted only if it explains held-out log segments ``factor`` times better than the
nominal simulator; otherwise it says why, from the training segments' sensitivities (which parameters barely move
the replay, which combinations cancel out).

Held out: every ``HOLD_OUT_EVERY``-th segment of each log (the 4th, 8th, ...; the last one when a log has fewer),
so every log contributes to both sides and a held-out stretch is never adjacent-identical to the one before it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sim2real.errors import UserError
from sim2real.sysid.fit import FitResult, SENSITIVITY_STEP
from sim2real.sysid.model import FitParameter, Segment

HOLD_OUT_EVERY = 4
DEFAULT_FACTOR = 3.0
WEAK_SHARE = 0.5  # a parameter whose box-step moves the replay by less than this share of the fit's residual is weak
DEGENERATE_CONDITION = 1e-3  # smallest / largest singular value of the scaled sensitivities below this: degenerate


def split(per_log: Sequence[Sequence[Segment]]) -> tuple[list[Segment], list[Segment]]:
    """(training, held-out) segments: every ``HOLD_OUT_EVERY``-th of each log held out (at least one per log of
    two or more segments). UserError if nothing can be held out."""
    train: list[Segment] = []
    held: list[Segment] = []
    for segments in per_log:
        if len(segments) < 2:
            train.extend(segments)
            continue
        picks = set(range(HOLD_OUT_EVERY - 1, len(segments), HOLD_OUT_EVERY)) or {len(segments) - 1}
        for i, segment in enumerate(segments):
            (held if i in picks else train).append(segment)
    if not held:
        raise UserError("the logs are too short to hold a segment out: give a longer log, more logs or a shorter "
                        "--segment-s")
    return train, held


@dataclass
class Identifiability:
    """``effect``: per parameter, the RMS change of the replay (weighted units) when it moves by the sensitivity
    step across its box; ``weak``: parameters whose effect is under ``WEAK_SHARE`` of ``residual`` (the fit's RMS
    replay error); ``degenerate``: combinations that leave the replay unchanged (text, e.g. ``+0.71 mass_scale
    -0.70 strength``); ``condition``: smallest / largest singular value of the scaled sensitivities."""

    effect: dict[str, float]
    residual: float
    weak: list[str] = field(default_factory=list)
    degenerate: list[str] = field(default_factory=list)
    condition: float = 1.0


def identifiability(result: FitResult) -> Identifiability:
    """Weak parameters and degenerate combinations from the fit's sensitivities (training segments)."""
    jac = result.sensitivity.stacked()
    rows = max(jac.shape[0], 1)
    residual = float(np.sqrt(np.mean(np.concatenate(result.sensitivity.residuals) ** 2)))
    effect_per_unit = np.linalg.norm(jac, axis=0) / np.sqrt(rows)
    effects = {p.name: float(e * SENSITIVITY_STEP) for p, e in zip(result.parameters, effect_per_unit)}
    floor = max(WEAK_SHARE * residual, 1e-9)
    weak = [name for name, e in effects.items() if e < floor]
    strong = [i for i, p in enumerate(result.parameters) if p.name not in weak]
    degenerate: list[str] = []
    condition = 1.0
    if len(strong) >= 2:
        scaled = jac[:, strong] / effect_per_unit[strong]
        _, singular, vt = np.linalg.svd(scaled / np.sqrt(rows), full_matrices=False)
        condition = float(singular[-1] / singular[0]) if singular[0] > 0 else 0.0
        for value, vector in zip(singular, vt):
            if value / singular[0] < DEGENERATE_CONDITION ** 0.5:
                loads = sorted(zip(vector, [result.parameters[i].name for i in strong]), key=lambda x: -abs(x[0]))
                degenerate.append(" ".join(f"{w:+.2f} {name}" for w, name in loads if abs(w) > 0.3))
    return Identifiability(effects, residual, weak, degenerate, condition)


@dataclass
class GateVerdict:
    """Held-out replay error before (nominal parameters) and after the fit, their ratio, the ``factor`` required,
    and the explanation (empty when accepted)."""

    before: float
    after: float
    factor: float
    accepted: bool
    reasons: list[str]

    @property
    def ratio(self) -> float:
        return self.before / self.after if self.after > 0 else float("inf")


def judge(before: float, after: float, factor: float, ident: Identifiability,
          parameters: Sequence[FitParameter], units: str = "") -> GateVerdict:
    """Accept when ``before / after >= factor``; otherwise list what the excitation could not tell apart."""
    ratio = before / after if after > 0 else float("inf")
    excited = max(ident.effect.values(), default=0.0) > 1e-9
    accepted = bool(ratio >= factor and excited)
    reasons: list[str] = []
    if not accepted:
        reasons.append(f"held-out replay error {before:.4g} -> {after:.4g}{units} ({ratio:.2f}x, needs {factor:g}x)")
        if not excited:
            reasons.append("the log does not excite the system: no parameter changes the replay (nothing moved)")
        elif ident.weak:
            reasons.append("not identifiable from this excitation: " + ", ".join(
                f"{name} (moves the replay {ident.effect[name]:.2g}{units}, fit residual {ident.residual:.2g}{units})"
                for name in ident.weak))
        for combination in ident.degenerate:
            reasons.append(f"degenerate combination (no effect on the replay): {combination}")
        if before <= 2.0 * ident.residual and not ident.weak:
            reasons.append("the nominal simulator already replays this log about as well as any fit can (the "
                           "remaining error is noise the parameters do not model)")
    return GateVerdict(before, after, factor, accepted, reasons)
