"""Plot a deployment log: joint positions vs. commands with limits, goal distance, loop timing, interventions."""
from __future__ import annotations

import numpy as np

from sim2real.deploy.log import read_log


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


def plot_report(log_path: str, out: str) -> dict[str, float]:
    """Write a PNG report of ``log_path`` to ``out``; returns the timing statistics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    meta = records[0]
    if meta.get("kind") == "multirotor":
        from sim2real.deploy.multirotor_report import plot_multirotor_report

        return plot_multirotor_report(records, out)
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    if not steps:
        raise ValueError(f"{log_path}: no policy steps logged")
    t = np.array([r["t"] for r in steps])
    q = np.array([r["positions"] for r in steps])
    cmd = np.array([r["applied"] for r in steps])
    fig, axes = plt.subplots(4, 1, figsize=(10, 12), sharex=False)
    for j, name in enumerate(meta["joints"]):
        line, = axes[0].plot(t, q[:, j], label=name)
        axes[0].plot(t, cmd[:, j], "--", color=line.get_color(), linewidth=0.8)
        axes[0].axhline(meta["lower"][j], color=line.get_color(), linewidth=0.4, linestyle=":")
        axes[0].axhline(meta["upper"][j], color=line.get_color(), linewidth=0.4, linestyle=":")
    axes[0].set_ylabel("joint (rad): measured —, sent --")
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].plot(t, [r["distance"] * 100 for r in steps])
    axes[1].axhline(meta["distance_threshold"] * 100, color="g", linestyle="--", label="success radius")
    axes[1].set_ylabel("goal distance (cm)")
    axes[1].legend(fontsize=7)
    axes[2].plot(t, [r["late"] * 1e3 for r in steps], label="start lateness")
    axes[2].plot(t, [r["compute"] * 1e3 for r in steps], label="policy + safety")
    axes[2].set_ylabel("ms")
    axes[2].legend(fontsize=7)
    stats = timing(records)
    finish_report(axes, records, steps, f"{meta['task']} at {meta['rate_hz']:g} Hz")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return stats
