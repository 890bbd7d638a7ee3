"""The fit's report: a PNG (measured vs replayed traces of held-out segments before and after the fit, estimates
with their intervals across each search box, the optimizer's progress) and an HTML page around it with the
numbers (estimates, intervals, held-out error, the gate's verdict). A JSON summary is written for machines."""
from __future__ import annotations

import base64
import html
import os
from typing import Mapping, Sequence

import numpy as np

from sim2real.io import atomic_write_json, atomic_write_text
from sim2real.sysid.fit import FitResult
from sim2real.sysid.gate import GateVerdict, Identifiability
from sim2real.sysid.model import Segment, SystemModel


def summary(model: SystemModel, result: FitResult, verdict: GateVerdict, ident: Identifiability,
            logs: Sequence[str], wall_s: float, truth: Mapping[str, float] | None = None) -> dict:
    """Everything the report shows, as plain data (also the JSON written beside the profile)."""
    rows = []
    for p in result.parameters:
        low, high = result.intervals[p.name]
        row = {"name": p.name, "nominal": p.nominal, "estimate": result.values[p.name], "low": low, "high": high,
               "box": [p.low, p.high], "effect": ident.effect.get(p.name), "weak": p.name in ident.weak}
        if truth is not None and p.name in truth:
            row["truth"] = float(truth[p.name])
        rows.append(row)
    return {"kind": model.kind, "logs": list(logs), "parameters": rows,
            "held_out_error": {"before": verdict.before, "after": verdict.after, "ratio": verdict.ratio},
            "gate": {"accepted": verdict.accepted, "factor": verdict.factor, "reasons": verdict.reasons},
            "identifiability": {"condition": ident.condition, "weak": ident.weak, "degenerate": ident.degenerate,
                                "residual": ident.residual},
            "optimizer": {"evaluations": result.evaluations, "best_error": result.history}, "wall_s": wall_s}


def _figure(model: SystemModel, result: FitResult, held: Sequence[Segment], nominal: Mapping[str, float],
            data: dict, out_png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(held[:2])
    channels = getattr(model, "channels", None)
    fig, axes = plt.subplots(len(shown) + 2, 1, figsize=(10, 3.2 * (len(shown) + 2)))
    for ax, segment in zip(axes, shown):
        before, after = model.simulate(segment, nominal), model.simulate(segment, result.values)
        for c in np.flatnonzero(segment.weights):
            name = channels[c] if channels else f"channel {c}"
            line, = ax.plot(segment.times, segment.measured[:, c], linewidth=1.6, label=f"{name} measured")
            ax.plot(segment.times, before[:, c], ":", color=line.get_color(), linewidth=1.0)
            ax.plot(segment.times, after[:, c], "--", color=line.get_color(), linewidth=1.0)
        ax.set_title(f"held out: {segment.source} — measured (solid), nominal replay (dotted), fitted (dashed)",
                     fontsize=8)
        if np.any(segment.weights):
            ax.legend(fontsize=6, ncol=4)
    ax = axes[-2]
    for i, row in enumerate(data["parameters"]):
        p = result.parameters[i]
        ax.plot([p.to_unit(row["low"]), p.to_unit(row["high"])], [i, i], color="C0", linewidth=4, alpha=0.5)
        ax.plot(p.to_unit(row["estimate"]), i, "o", color="C0")
        ax.plot(p.to_unit(row["nominal"]), i, "|", color="grey", markersize=12)
        if "truth" in row:
            ax.plot(p.to_unit(row["truth"]), i, "x", color="C3", markersize=9)
    ax.set_yticks(range(len(data["parameters"])),
                  [f"{r['name']} = {r['estimate']:.4g}" for r in data["parameters"]], fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("position in the search box (log-spaced for scales): estimate o, 90 % interval bar, nominal |, "
                  "truth x", fontsize=7)
    history = np.asarray(result.history, dtype=float)
    axes[-1].plot(np.arange(1, len(history) + 1), history)
    if np.all(history > 0):
        axes[-1].set_yscale("log")
    axes[-1].set_xlabel("optimizer generation")
    axes[-1].set_ylabel("best training error")
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def write_report(model: SystemModel, result: FitResult, held: Sequence[Segment], nominal: Mapping[str, float],
                 data: dict, out_html: str) -> tuple[str, str]:
    """Write ``out_html`` with its PNG (same stem) and JSON; returns (png path, json path)."""
    stem = os.path.splitext(out_html)[0]
    png, json_path = stem + ".png", stem + ".json"
    _figure(model, result, held, nominal, data, png)
    atomic_write_json(json_path, data)
    with open(png, "rb") as handle:
        image = base64.b64encode(handle.read()).decode("ascii")
    gate = data["gate"]
    error = data["held_out_error"]
    verdict = "accepted" if gate["accepted"] else "REJECTED"
    rows = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{r['nominal']:.4g}</td><td><b>{r['estimate']:.4g}</b></td>"
        f"<td>{r['low']:.4g} .. {r['high']:.4g}</td><td>{r.get('truth', float('nan')):.4g}</td>"
        f"<td>{(r['effect'] or 0.0):.3g}{' (weak)' if r['weak'] else ''}</td></tr>" for r in data["parameters"])
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in gate["reasons"])
    measured = ", ".join(f"{html.escape(k)} = {v:.4g}" for k, v in (data.get("measured") or {}).items())
    delay = data.get("command_delay_s")
    if delay:
        measured += (f"; read &rarr; write delay (what a policy feels, used by the replay and the training ranges' "
                     f"action latency) {delay[1] * 1e3:.1f} ms [10-90 %: {delay[0] * 1e3:.1f}, {delay[2] * 1e3:.1f}]")
    measured = f"<p>Measured from the log, not fitted: {measured}.</p>" if measured else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>sysid fit ({data['kind']})</title>
<style>body{{font-family:sans-serif;max-width:1000px}}td,th{{padding:2px 8px;text-align:right}}</style></head><body>
<h1>System identification: {html.escape(data['kind'])}</h1>
<p>Logs: {html.escape(', '.join(data['logs']))}. {data['optimizer']['evaluations']} replays of the training set,
{data['wall_s']:.0f} s.</p>
<p>Compared: {html.escape(', '.join(data.get('channels_compared', [])) or 'nothing (no channel moved)')}.</p>
<h2>Replay gate: {verdict}</h2>
<p>Held-out replay error {error['before']:.4g} (nominal) &rarr; {error['after']:.4g} (fitted):
{error['ratio']:.2f}&times; (required {gate['factor']:g}&times;).</p><ul>{reasons}</ul>
<h2>Estimates</h2><table><tr><th>parameter</th><th>nominal</th><th>estimate</th><th>90 % interval</th>
<th>truth</th><th>replay change per step</th></tr>{rows}</table>{measured}
<p>Sensitivity condition number (smallest/largest singular value): {data['identifiability']['condition']:.3g}</p>
<img src="data:image/png;base64,{image}" style="width:100%"></body></html>"""
    atomic_write_text(out_html, page)
    return png, json_path
