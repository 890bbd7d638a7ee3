"""The report: ``report.json`` (every number), ``report.md``, ``report.html``, PNG plots and WebM (VP9) videos."""
from __future__ import annotations

import contextlib
import html
import os
import sys
from typing import Any, Iterator

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


INTERVALS = "95 % CIs: Wilson score for success rates, percentile bootstrap for return and distance"


def summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Header + one row per condition: success, return, final distance, gap in success (with 95 % CIs), and the
    localization error when a policy perceives the goal; a condition that cannot affect the policy reads
    "n/a (reason)" (it was not run: its gap would be zero by construction)."""
    located = any("localization_error" in c["metrics"] for c in summary["conditions"].values())
    rows = [["condition", "success rate [95% CI]", "return", "final distance", "success gap vs train"]
            + (["localization error"] if located else [])]
    for name in summary["condition_order"]:
        condition = summary["conditions"][name]
        m = condition["metrics"]
        reason = condition.get("not_applicable")
        if reason or "success" not in m:
            first = f"n/a ({reason})" if reason else "no completed episode"
            rows.append([name, first] + ["n/a" if reason else "-"] * (len(rows[0]) - 2))
            continue
        gap = _fmt("success", m["success"]["gap"], signed=True) if "gap" in m.get("success", {}) else "-"
        cell = lambda k: _fmt(k, m[k]["mean"]) if k in m else "-"  # noqa: E731
        rows.append([name, cell("success"), cell("return"), cell("final_distance"), gap]
                    + ([cell("localization_error")] if located else []))
    return rows


def per_policy_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Header + one row per condition and policy (seed): success, return, final distance with 95 % CIs; only the
    header when a single policy was evaluated (the summary already is its breakdown)."""
    rows = [["condition", "policy", "success rate [95% CI]", "return", "final distance"]]
    if len(summary["policies"]) < 2:
        return rows
    for name in summary["condition_order"]:
        m = summary["conditions"][name]["metrics"]
        for label in summary["conditions"][name]["episodes"]:
            cell = lambda k: _fmt(k, m[k]["per_policy"][label]) if label in m.get(k, {}).get("per_policy", {}) \
                else "-"  # noqa: E731
            rows.append([name, label, cell("success"), cell("return"), cell("final_distance")])
    return rows


def adaptation_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Header + one row per condition and episode index within a trial (policies with memory, RL²): return and
    success rate with 95 % CIs, the adaptation within a trial; only the header when every trial is one episode."""
    rows = [["condition", "episode in trial", "return [95% CI]", "success rate [95% CI]"]]
    for name in summary["condition_order"]:
        for row in summary["conditions"][name].get("adaptation") or []:
            rows.append([name, str(row["episode"]), _fmt("return", row["return"]), _fmt("success", row["success"])])
    return rows


def emulated_notes(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """One (sentence, deployment log directory) per policy evaluated on the emulator: reality profile, control
    rate, watchdog, safety interventions and trips."""
    emulated = summary["conditions"].get("emulated", {"facts": {}})
    notes = []
    for label, facts in emulated["facts"].items():
        trips = "; ".join(f"episode {t['episode']}: {t.get('kind')} ({t.get('reason')})" for t in facts["trips"])
        emulator = facts.get("emulator", "Dynamixel emulator")  # reports written before quadcopters were emulated
        notes.append((f"Emulated ({label}): {emulator}, reality {facts['reality']}, control at "
                      f"{facts['rate_hz']:.0f} Hz, watchdog {facts['watchdog_s'] * 1e3:.0f} ms, "
                      f"{facts['interventions']} safety interventions, safety trips: {trips or 'none'} (a tripped "
                      "episode counts as a failure).", facts["logs"]))
    return notes


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as aligned plain text (one line per row)."""
    tables = [summary_rows(summary)] + [rows for rows in (adaptation_rows(summary),) if len(rows) > 1]
    texts = []
    for rows in tables:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        texts.append("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
    return "\n\n".join(texts)


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
    fig.suptitle("per condition, mean with 95 % CI (Wilson for success, bootstrap otherwise)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _distance_plot(results: list[ConditionResult], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in results if r.values("final_distance").size]  # n/a conditions ran no episode
    fig, ax = plt.subplots(figsize=(6, 3.6))
    data = [r.values("final_distance") * 100 for r in results]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(results) + 1), [r.name for r in results], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("final EE–goal distance (cm)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at /dev/null inside the block (C libraries write there directly)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


VIDEO_CODECS = ("VP90", "VP80")  # WebM codecs every current browser decodes; OpenCV's FFmpeg encodes both (libvpx)


def write_video(frames: list[np.ndarray], path: str, fps: float = 25.0) -> bool:
    """RGB frames → WebM at ``path`` (VP9, VP8 when this OpenCV build lacks VP9), written to a temporary file and
    renamed; False when OpenCV could write neither. (MPEG-4 Part 2, OpenCV's ``mp4v``, does not play in
    browsers.)"""
    import cv2

    if not frames:
        return False
    height, width = frames[0].shape[:2]
    tmp = path + ".tmp.webm"
    for codec in VIDEO_CODECS:
        with _stderr_silenced():  # OpenCV's FFmpeg backend prints a harmless "tag ... is not supported" per file
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        if writer.isOpened():
            break
    else:
        return False
    for frame in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2BGR))
    writer.release()
    ok = os.path.isfile(tmp) and os.path.getsize(tmp) > 0
    if ok:
        os.replace(tmp, path)
    return ok


def _videos(results: list[ConditionResult], out_dir: str) -> dict[str, list[str]]:
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    made: dict[str, list[str]] = {}
    for result in results:
        for label, episodes in result.episodes.items():
            for ep in episodes:
                if ep.frames:
                    part = f"-episode{ep.index_in_trial + 1}" if ep.index_in_trial else ""  # later episodes of a trial
                    rel = os.path.join("videos", f"{result.name}-{label}-seed{ep.seed}{part}.webm")
                    if write_video(ep.frames, os.path.join(out_dir, rel)):
                        made.setdefault(result.name, []).append(rel)
    return made


def _md_table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(r) + " |" for r in rows[:1]] + ["|" + "---|" * len(rows[0])] + \
        ["| " + " | ".join(r) + " |" for r in rows[1:]]


def _markdown(summary: dict[str, Any], plots: list[str]) -> str:
    lines = [f"# Transfer-gap evaluation: {summary['env_id']}", "",
             f"Policies: {', '.join(summary['policies'])}. Episodes per condition and policy: "
             f"{summary['episodes']} (seeds {summary['seed']}…). {INTERVALS}; the gap is train − condition.", ""]
    lines += _md_table(summary_rows(summary))
    seeds = per_policy_rows(summary)
    if len(seeds) > 1:
        lines += ["", "Per policy (seed):", ""] + _md_table(seeds)
    adaptation = adaptation_rows(summary)
    if len(adaptation) > 1:
        lines += ["", "Return by episode within a trial (adaptation; the policy keeps its memory across a trial's "
                  "episodes in one sampled world):", ""] + _md_table(adaptation)
    loc = {n: c["metrics"]["localization_error"] for n, c in summary["conditions"].items()
           if "localization_error" in c["metrics"]}
    if loc:
        lines += ["", "Localization error of the perception module (mean over steps, per episode):", ""]
        lines += [f"- {n}: {_fmt('localization_error', e['mean'])}" for n, e in loc.items()]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    lines += [f"\n{text} Logs: `{logs}`." for text, logs in emulated_notes(summary)]
    return "\n".join(lines) + "\n"


def _html_table(rows: list[list[str]]) -> str:
    esc = html.escape
    return ("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0]) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows[1:]) + "</table>")


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 12px}"
         "img,video{max-width:100%;height:auto}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}"
         "table{border-collapse:collapse;display:block;overflow-x:auto}code{word-break:break-all}"
         ".videos{display:flex;flex-wrap:wrap;gap:8px}")


def _html(summary: dict[str, Any], plots: list[str], videos: dict[str, list[str]]) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
             f"content='width=device-width, initial-scale=1'><title>sim2real eval {esc(summary['env_id'])}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>Transfer gap: {esc(summary['env_id'])}</h1>",
             f"<p>Policies: {esc(', '.join(summary['policies']))}; {summary['episodes']} episodes per condition and "
             f"policy; {esc(INTERVALS)}; gap = train − condition. All numbers: "
             "<a href='report.json'>report.json</a>.</p>", _html_table(summary_rows(summary))]
    seeds = per_policy_rows(summary)
    if len(seeds) > 1:
        parts += ["<h2>Per policy (seed)</h2>", _html_table(seeds)]
    adaptation = adaptation_rows(summary)
    if len(adaptation) > 1:
        parts += ["<h2>Adaptation within a trial</h2><p>Return by episode of a trial: the policy keeps its memory "
                  "across the episodes of one sampled world.</p>", _html_table(adaptation)]
    parts += [f"<p>{esc(text)} Deployment logs: <code>{esc(logs)}</code>.</p>"
              for text, logs in emulated_notes(summary)]
    parts += [f"<p><img src='{esc(p)}' alt='{esc(p)}'></p>" for p in plots]
    for name, files in videos.items():
        parts.append(f"<h2>{esc(name)}</h2><div class='videos'>")
        parts += [f"<video src='{esc(f)}' controls muted playsinline preload='metadata' width='240'></video>"
                  for f in files]
        parts.append("</div>")
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


def write_overview(path: str, title: str, sections: list[tuple[str, str, dict[str, Any], str]]) -> str:
    """One HTML page over several reports (the demo's): per section (heading, sentence, summary, report directory)
    its summary table, its emulated facts and a link to its full report. Returns ``path``."""
    esc = html.escape
    base = os.path.dirname(os.path.abspath(path))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
             f"content='width=device-width, initial-scale=1'><title>{esc(title)}</title><style>{STYLE}</style>"
             f"</head><body><h1>{esc(title)}</h1><p>{esc(INTERVALS)}; gap = train − condition; n/a: the condition "
             "cannot change what that policy does, so it was not run.</p>"]
    for heading, sentence, summary, report_dir in sections:
        link = os.path.relpath(os.path.join(report_dir, "report.html"), base)
        parts += [f"<h2>{esc(heading)}</h2><p>{esc(sentence)} Full report (plots, videos): "
                  f"<a href='{esc(link)}'>{esc(link)}</a>.</p>", _html_table(summary_rows(summary))]
        parts += [f"<p>{esc(text)} Deployment logs: <code>{esc(logs)}</code>.</p>"
                  for text, logs in emulated_notes(summary)]
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
