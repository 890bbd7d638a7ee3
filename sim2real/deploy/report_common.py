"""What the arm and multirotor deployment plots share: loop timing statistics and the interventions/events panel."""
from __future__ import annotations

import numpy as np


def timing(records: list[dict]) -> dict[str, float]:
    """Loop-period statistics (ms) from the policy steps: p50/p99 of the period and of its jitter."""
    times = np.array([r["t"] for r in records if r["type"] == "step" and r["phase"] == "policy"])
    late = np.array([r["late"] for r in records if r["type"] == "step" and r["phase"] == "policy"])
    if len(times) < 2:
        return {}
    period = records[0]["period"]
    actual = np.diff(times + late)
    actual = actual[actual < 1.5 * period]  # drop gaps between episodes (homing)
    return {"period_p50_ms": float(np.median(actual) * 1e3), "period_p99_ms": float(np.percentile(actual, 99) * 1e3),
            "jitter_p50_ms": float(np.median(np.abs(actual - period)) * 1e3),
            "jitter_p99_ms": float(np.percentile(np.abs(actual - period), 99) * 1e3),
            "late_p99_ms": float(np.percentile(late, 99) * 1e3)}


def finish_report(axes, records: list[dict], steps: list[dict], title: str) -> None:
    """Shared last panel and marks: interventions over time on ``axes[-1]``, a red line at every event (trip, land)
    on every panel, and the title with the success rate and the last event."""
    kinds: dict[str, list[float]] = {}
    for r in steps:
        for i in r["interventions"]:
            kinds.setdefault(i["kind"], []).append(r["t"])
    for row, (kind, times) in enumerate(sorted(kinds.items())):
        axes[-1].plot(times, [row] * len(times), "|", markersize=12, label=kind)
    axes[-1].set_yticks(range(len(kinds)), sorted(kinds))
    axes[-1].set_xlabel("time (s)")
    stops = [r for r in records if r["type"] == "event"]
    for ax in axes:
        for stop in stops:
            ax.axvline(stop["t"], color="r")
    summary = next((r for r in records if r["type"] == "summary"), None)
    if summary:
        title += f" — success {summary['success_rate']:.0%} over {summary['episodes']} episode(s)"
    if stops:
        title += f" — stopped: {stops[-1]['reason']}"
    axes[0].set_title(title, fontsize=9)
