"""``sim2real curriculum plot RUN_DIR --out ranges.png``: randomization ranges and ADR entropy over training."""
from __future__ import annotations

import argparse
import math
import os
from typing import Any

from sim2real.arguments import output_file
from sim2real.figures import save_figure


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("curriculum", help="inspect automatic curricula of a run")
    actions = parser.add_subparsers(dest="curriculum_command", metavar="ACTION")
    plot = actions.add_parser("plot", help="draw the ranges and the entropy over training (POET: the population)")
    plot.add_argument("run_dir", help="run directory written by `sim2real train` with a curriculum")
    plot.add_argument("--out", type=output_file, default=None,
                      help="image path (default RUN_DIR/curriculum_ranges.png)")
    plot.add_argument("--all", action="store_true", help="also draw params whose range never changed")
    plot.set_defaults(handler=run_plot)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)


def series(records: list[dict[str, Any]]) -> tuple[dict[str, list[tuple[float, float, float]]],
                                                     list[tuple[float, float]]]:
    """From history records: per param [(timesteps, low, high)] step points, and [(timesteps, entropy npd)]."""
    ranges: dict[str, list[tuple[float, float, float]]] = {}
    entropy: list[tuple[float, float]] = []
    for r in records:
        t = float(r.get("timesteps", 0))
        if r.get("event") in ("start", "resume"):
            for name, (low, high) in r["ranges"].items():
                ranges.setdefault(name, []).append((t, float(low), float(high)))
        elif r.get("event") == "range":
            ranges.setdefault(r["param"], []).append((t, float(r["low"]), float(r["high"])))
        else:
            continue
        if r.get("entropy_npd") is not None:
            entropy.append((t, float(r["entropy_npd"])))
    return ranges, entropy


def plot_history(records: list[dict[str, Any]], out: str, show_all: bool = False, title: str = "") -> str:
    """Draw one panel per param (range band over timesteps) and one for the entropy; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranges, entropy = series(records)
    end = max([t for pts in ranges.values() for t, _, _ in pts] + [float(records[-1].get("timesteps", 0))])
    moved = {n: pts for n, pts in ranges.items() if show_all or len({(lo, hi) for _, lo, hi in pts}) > 1}
    panels = len(moved) + 1
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    flat = axes.reshape(-1)
    for ax, (name, pts) in zip(flat, sorted(moved.items())):
        ts = [t for t, _, _ in pts] + [end]
        lows = [lo for _, lo, _ in pts] + [pts[-1][1]]
        highs = [hi for _, _, hi in pts] + [pts[-1][2]]
        ax.fill_between(ts, lows, highs, step="post", alpha=0.35)
        ax.step(ts, lows, where="post", lw=1)
        ax.step(ts, highs, where="post", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = flat[len(moved)]
    finite = [(t, h) for t, h in entropy if math.isfinite(h)]
    if finite:
        ax.step([t for t, _ in finite] + [end], [h for _, h in finite] + [finite[-1][1]], where="post")
    ax.set_title("entropy (nats per dimension)", fontsize=9)
    ax.set_xlabel("env steps", fontsize=8)
    ax.tick_params(labelsize=7)
    for extra in flat[panels:]:
        extra.set_visible(False)
    return save_figure(fig, out, title)


def run_plot(args: argparse.Namespace) -> int:
    from randomizers.curricula.store import HISTORY_FILE, read_history
    from sim2real.errors import UserError

    path = os.path.join(args.run_dir, HISTORY_FILE)
    if not os.path.isdir(args.run_dir):
        raise UserError(f"{args.run_dir}: not a directory")
    if not os.path.isfile(path):
        raise UserError(f"{args.run_dir}: no {HISTORY_FILE} (was the run trained with a curriculum?)")
    records = read_history(path)
    if not any(r.get("event") in ("start", "resume") for r in records):
        raise UserError(f"{path}: no start record; the history is empty or damaged")
    out = args.out or os.path.join(args.run_dir, "curriculum_ranges.png")
    if os.path.splitext(out)[1].lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"--out {out}: use a .png, .pdf or .svg file name")
    title = os.path.basename(os.path.normpath(args.run_dir))
    if next(r for r in records if r.get("event") in ("start", "resume")).get("teacher") == "poet":
        from sim2real.poet_plot import plot_poet

        try:
            plot_poet(records, out, title=title)
        except ValueError as err:
            raise UserError(f"{path}: {err}") from None
    else:
        plot_history(records, out, show_all=args.all, title=title)
    print(f"wrote {out}")
    return 0
