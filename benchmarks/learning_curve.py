"""Plot a run's evaluation history (success rate and return vs environment steps and wall time).

    python benchmarks/learning_curve.py RUN_DIR --out benchmarks/figures/panda_reach_learning_curve.png
"""
from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(args.run_dir, "evaluations.jsonl"), encoding="utf-8") as handle:
        history = [json.loads(line) for line in handle if line.strip()]
    start = os.path.getmtime(os.path.join(args.run_dir, "launch.yaml"))
    steps = [h["timesteps"] for h in history]
    minutes = [(h["wall_time_s"] - start) / 60 for h in history]
    fig, (ax_steps, ax_time) = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, x, label in ((ax_steps, steps, "environment steps"), (ax_time, minutes, "wall time (min, 2 cores)")):
        ax.plot(x, [100 * h["success_rate"] for h in history], marker="o")
        ax.axhline(95, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel(label)
        ax.set_ylabel("eval success (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{os.path.basename(os.path.normpath(args.run_dir))}: deterministic evaluation, 20 episodes")
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=110)
    for h, m in zip(history, minutes):
        print(f"{h['timesteps']:>7d} steps  {m:5.1f} min  success {h['success_rate']:.0%}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
