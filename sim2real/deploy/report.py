"""Plot a deployment log: joint positions vs. commands with limits, goal distance, loop timing, interventions."""
from __future__ import annotations

import numpy as np

from sim2real.deploy.log import read_log
from sim2real.deploy.report_common import finish_report, timing


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
