"""The report: ``report.json`` (every number), ``report.md``, ``report.html``, PNG plots and MP4 videos."""
from __future__ import annotations

import html
import os
from typing import Any

import numpy as np

from sim2real.evaluation.run import METRICS, ConditionResult
from sim2real.io import atomic_write_json, atomic_write_text

LABELS = {"success": "success rate", "return": "return", "final_distance": "final distance (cm)",
          "localization_error": "localization error (cm)"}
SCALE = {"success": 100.0, "return": 1.0, "final_distance": 100.0, "localization_error": 100.0}  # → %, -, cm, cm
UNITS = {"success": "%", "return": "", "final_distance": " cm", "localization_error": " cm"}


def _fmt(metric: str, est: dict[str, float], signed: bool = False) -> str:
    s = SCALE[metric]
    sign = "+" if signed else ""
    return (f"{est['value'] * s:{sign}.1f}{UNITS[metric]} "
            f"[{est['ci_low'] * s:{sign}.1f}, {est['ci_high'] * s:{sign}.1f}]")


def summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Header + one row per condition: success, return, final distance, gap in success (with 95 % CIs)."""
    rows = [["condition", "success rate [95% CI]", "return", "final distance", "success gap vs train"]]
    for name in summary["condition_order"]:
        m = summary["conditions"][name]["metrics"]
        if "success" not in m:
            rows.append([name, "no completed episode", "-", "-", "-"])
            continue
        gap = _fmt("success", m["success"]["gap"], signed=True) if "gap" in m.get("success", {}) else "-"
        cell = lambda k: _fmt(k, m[k]["mean"]) if k in m else "-"  # noqa: E731
        rows.append([name, cell("success"), cell("return"), cell("final_distance"), gap])
    return rows


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as aligned plain text (one line per row)."""
    rows = summary_rows(summary)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _plot(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [m for m in METRICS if any(m in c["metrics"] for c in summary["conditions"].values())]
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.6))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, present):
        names = [n for n in summary["condition_order"] if metric in summary["conditions"][n]["metrics"]]
        est = [summary["conditions"][n]["metrics"][metric]["mean"] for n in names]
        s = SCALE[metric]
        value = np.array([e["value"] for e in est]) * s
        err = np.array([[e["value"] - e["ci_low"], e["ci_high"] - e["value"]] for e in est]).T * s
        ax.bar(range(len(names)), value, yerr=err, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(LABELS[metric] + (" (%)" if metric == "success" else ""), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("per condition, mean with bootstrap 95 % CI", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _distance_plot(results: list[ConditionResult], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    data = [r.values("final_distance") * 100 for r in results]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(results) + 1), [r.name for r in results], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("final EE–goal distance (cm)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_video(frames: list[np.ndarray], path: str, fps: float = 25.0) -> bool:
    """RGB frames → MP4 (OpenCV, mp4v); False when OpenCV could not write the file."""
    import cv2

    if not frames:
        return False
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path + ".tmp.mp4", cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        return False
    for frame in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2BGR))
    writer.release()
    ok = os.path.isfile(path + ".tmp.mp4") and os.path.getsize(path + ".tmp.mp4") > 0
    if ok:
        os.replace(path + ".tmp.mp4", path)
    return ok


def _videos(results: list[ConditionResult], out_dir: str) -> dict[str, list[str]]:
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    made: dict[str, list[str]] = {}
    for result in results:
        for label, episodes in result.episodes.items():
            for ep in episodes:
                if ep.frames:
                    rel = os.path.join("videos", f"{result.name}-{label}-seed{ep.seed}.mp4")
                    if write_video(ep.frames, os.path.join(out_dir, rel)):
                        made.setdefault(result.name, []).append(rel)
    return made


def _markdown(summary: dict[str, Any], plots: list[str]) -> str:
    rows = summary_rows(summary)
    lines = [f"# Transfer-gap evaluation: {summary['env_id']}", "",
             f"Policies: {', '.join(summary['policies'])}. Episodes per condition and policy: "
             f"{summary['episodes']} (seeds {summary['seed']}…). Intervals are bootstrap 95 % CIs; the gap is "
             "train − condition.", "",
             "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    loc = {n: c["metrics"]["localization_error"] for n, c in summary["conditions"].items()
           if "localization_error" in c["metrics"]}
    if loc:
        lines += ["", "Localization error of the perception module (mean over steps, per episode):", ""]
        lines += [f"- {n}: {_fmt('localization_error', e['mean'])}" for n, e in loc.items()]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    emulated = summary["conditions"].get("emulated", {"facts": {}})
    for label, facts in emulated["facts"].items():
        trips = "; ".join(f"episode {t['episode']}: {t.get('kind')} ({t.get('reason')})" for t in facts["trips"])
        lines.append(f"\nEmulated ({label}): Dynamixel emulator, reality `{facts['reality']}`, control at "
                     f"{facts['rate_hz']:.0f} Hz, watchdog {facts['watchdog_s'] * 1e3:.0f} ms, {facts['interventions']} safety interventions, safety trips: "
                     f"{trips or 'none'} (a tripped episode counts as a failure). Logs: `{facts['logs']}`.")
    return "\n".join(lines) + "\n"


def _html(summary: dict[str, Any], plots: list[str], videos: dict[str, list[str]]) -> str:
    esc = html.escape
    rows = summary_rows(summary)
    table = "<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0]) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows[1:]) + "</table>"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>sim2real eval {esc(summary['env_id'])}"
             "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:4px 10px;"
             "border-bottom:1px solid #ddd;text-align:left}</style></head><body>",
             f"<h1>Transfer gap: {esc(summary['env_id'])}</h1>",
             f"<p>Policies: {esc(', '.join(summary['policies']))}; {summary['episodes']} episodes per condition and "
             "policy; bootstrap 95 % CIs; gap = train − condition. All numbers: "
             "<a href='report.json'>report.json</a>.</p>", table]
    parts += [f"<p><img src='{esc(p)}' alt='{esc(p)}'></p>" for p in plots]
    for name, files in videos.items():
        parts.append(f"<h2>{esc(name)}</h2>")
        parts += [f"<video src='{esc(f)}' controls width='240'></video>" for f in files]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: list[ConditionResult], summary: dict[str, Any], out_dir: str) -> dict[str, str]:
    """Write every report file into ``out_dir``; returns name → path of what was written."""
    os.makedirs(out_dir, exist_ok=True)
    plots = []
    _plot(summary, os.path.join(out_dir, "metrics.png"))
    plots.append("metrics.png")
    _distance_plot(results, os.path.join(out_dir, "final_distance.png"))
    plots.append("final_distance.png")
    videos = _videos(results, out_dir)
    summary = {**summary, "files": {"plots": plots, "videos": videos}}
    atomic_write_json(os.path.join(out_dir, "report.json"), summary)
    atomic_write_text(os.path.join(out_dir, "report.md"), _markdown(summary, plots))
    atomic_write_text(os.path.join(out_dir, "report.html"), _html(summary, plots, videos))
    return {n: os.path.join(out_dir, n) for n in ("report.json", "report.md", "report.html")}
