"""Plot a quadcopter deployment log: position vs. reference, distance, setpoints vs. their limits, loop timing,
interventions and the stop/land events. Positions m (world ENU), thrust N, rates rad/s, times s / ms."""
from __future__ import annotations

import numpy as np

from sim2real.deploy.report_common import finish_report, timing


def plot_multirotor_report(records: list[dict], out: str) -> dict[str, float]:
    """Write the PNG ``out`` for the records of a multirotor log; returns the loop timing statistics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = records[0]
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    if not steps:
        raise ValueError("no policy steps logged")
    t = np.array([r["t"] for r in steps])
    p = np.array([r["position"] for r in steps])
    ref = np.array([r["reference"] for r in steps])
    fig, axes = plt.subplots(5, 1, figsize=(10, 14))
    for i, axis in enumerate("xyz"):
        line, = axes[0].plot(t, p[:, i], label=axis)
        axes[0].plot(t, ref[:, i], "--", color=line.get_color(), linewidth=0.8)
    axes[0].set_ylabel("position (m): measured —, reference --")
    axes[0].legend(fontsize=7)
    axes[1].plot(t, [r["distance"] * 100 for r in steps])
    axes[1].axhline(meta["distance_threshold"] * 100, color="g", linestyle="--", label="tolerance")
    axes[1].set_ylabel("distance to reference (cm)")
    axes[1].legend(fontsize=7)
    applied = [r["applied"] for r in steps]
    if applied and "thrust" in applied[0]:
        axes[2].plot(t, [a["thrust"] for a in applied], label="thrust (N)")
        axes[2].axhline(meta["max_thrust"], color="r", linewidth=0.6, linestyle=":")
    if applied and "body_rates" in applied[0]:
        rates = np.array([a["body_rates"] for a in applied])
        for i, axis in enumerate("xyz"):
            axes[2].plot(t, rates[:, i], linewidth=0.8, label=f"rate {axis} (rad/s)")
        for sign in (-1, 1):
            axes[2].axhline(sign * meta["max_body_rate"], color="r", linewidth=0.6, linestyle=":")
    axes[2].set_ylabel("setpoint sent (limits dotted)")
    axes[2].legend(fontsize=7, ncol=4)
    axes[3].plot(t, [r["late"] * 1e3 for r in steps], label="start lateness")
    axes[3].plot(t, [r["compute"] * 1e3 for r in steps], label="policy + safety + send")
    axes[3].plot(t, [r["state_age"] * 1e3 for r in steps], label="state age")
    axes[3].set_ylabel("ms")
    axes[3].legend(fontsize=7)
    finish_report(axes, records, steps, f"{meta['vehicle']} {meta['task']} ({meta['action_mode']}) at "
                                        f"{meta['rate_hz']:g} Hz")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return timing(records)
