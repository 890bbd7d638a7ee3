"""The picture of a POET run (``sim2real curriculum plot RUN_DIR`` when the run's teacher is ``poet``).

Left: environments in parameter space (the first two POET params; with one param, the generation a niche was born
on the vertical axis): niches with parent → child arrows, filled when their paired agent solved them, crosses
once archived (green if solved); rejected candidates as small dots coloured by the reason. Right: each niche's paired-agent success
rate per generation (colour), with an arrow for every transfer (goal switch) from the source niche's row to the
receiving niche's row.
"""
from __future__ import annotations

from typing import Any

from sim2real.figures import save_figure

REJECT_COLORS = {"too hard": "tab:red", "too easy": "tab:blue", "not novel": "0.6", "population round full": "0.8"}


def poet_series(records: list[dict[str, Any]]) -> dict[str, Any]:
    """From history records: niches {id: {values, parent, born, retired, solved, scores: [(generation, score)]}},
    rejected candidates, transfers [(generation, from, to)] and the POET param names."""
    niches: dict[int, dict[str, Any]] = {}
    rejects: list[dict[str, Any]] = []
    transfers: list[tuple[int, int, int]] = []
    for r in records:
        event = r.get("event")
        if event == "generation":
            for n in r["niches"]:
                entry = niches.setdefault(int(n["id"]), {"values": n["values"], "parent": int(n["parent"]),
                                                         "born": int(r["generation"]), "retired": None,
                                                         "solved": False, "scores": []})
                if n.get("score") is not None:
                    entry["scores"].append((int(r["generation"]), float(n["score"])))
        elif event == "admit":
            niches.setdefault(int(r["niche"]), {"values": r["values"], "parent": int(r["parent"]),
                                                "born": int(r["generation"]), "retired": None, "solved": False,
                                                "scores": []})
        elif event == "reject":
            rejects.append(r)
        elif event == "retire" and int(r["niche"]) in niches:
            niches[int(r["niche"])]["retired"] = int(r["generation"])
        elif event == "solved" and int(r["niche"]) in niches:
            niches[int(r["niche"])]["solved"] = True
        elif event == "transfer":
            transfers.append((int(r["generation"]), int(r["from"]), int(r["niche"])))
    names = list(next(iter(niches.values()))["values"]) if niches else []
    return {"niches": niches, "rejects": rejects, "transfers": transfers, "names": names}


def plot_poet(records: list[dict[str, Any]], out: str, title: str = "") -> str:
    """Draw the two panels into ``out`` (png/pdf/svg); returns ``out``. Raises ValueError without generations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = poet_series(records)
    niches, names = data["niches"], data["names"]
    if not niches:
        raise ValueError("the POET history holds no generation yet")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))

    def point(values: dict[str, float], born: int) -> tuple[float, float]:
        return (float(values[names[0]]), float(values[names[1]]) if len(names) > 1 else float(born))

    for r in data["rejects"]:
        x, y = point(r["values"], int(r["generation"]))
        left.scatter([x], [y], s=10, color=REJECT_COLORS.get(r["reason"], "0.7"), alpha=0.6, zorder=1)
    for nid, n in sorted(niches.items()):
        x, y = point(n["values"], n["born"])
        if n["parent"] in niches:
            px, py = point(niches[n["parent"]]["values"], niches[n["parent"]]["born"])
            left.annotate("", (x, y), (px, py), arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.8})
        if n["retired"] is not None:
            left.scatter([x], [y], marker="x", color="tab:green" if n["solved"] else "0.45", s=40, zorder=3)
        else:
            left.scatter([x], [y], s=60, zorder=3, edgecolors="tab:green",
                         facecolors="tab:green" if n["solved"] else "none", linewidths=1.5)
        left.annotate(str(nid), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    left.set_xlabel(names[0], fontsize=8)
    left.set_ylabel(names[1] if len(names) > 1 else "generation born", fontsize=8)
    left.set_title("environments (green: solved, filled if active; x: archived; dots: rejected\n"
                   "red too hard, blue too easy, grey not novel)", fontsize=8)
    left.tick_params(labelsize=7)

    rows = {nid: i for i, nid in enumerate(sorted(niches))}
    points = [(g, rows[nid], s) for nid, n in niches.items() for g, s in n["scores"]]
    sc = right.scatter([p[0] for p in points], [p[1] for p in points], c=[p[2] for p in points], cmap="viridis",
                       vmin=0.0, vmax=1.0, s=28, zorder=2)
    for g, src, dst in data["transfers"]:
        right.annotate("", (g, rows[dst]), (g - 0.35, rows[src]),
                       arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.0})
    right.set_yticks(range(len(rows)), [f"niche {nid}" for nid in rows], fontsize=7)
    right.set_xlabel("generation", fontsize=8)
    right.set_title(f"paired agent's success rate (red arrows: {len(data['transfers'])} transfers)", fontsize=8)
    right.tick_params(labelsize=7)
    fig.colorbar(sc, ax=right, fraction=0.04)
    return save_figure(fig, out, title)
