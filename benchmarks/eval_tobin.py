"""Tobin-style perception ablation on the SO-101 arm: goal-localization error on training vs held-out textures
for a CNN trained without visual randomization and with 10 / 100 / 1000 unique procedural textures.

    nice .venv/bin/python benchmarks/eval_tobin.py --images 600 --epochs 40 --test-images 100 --out runs/eval_tobin

Each variant is one ``sim2real perception train launch/so101_reach_vision.yaml`` call; the table (markdown) and
every number (``results.json``) are written into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os

from sim2real.cli import main as cli

VARIANTS = (("no visual randomization", ["--no-visual"]), ("10 textures", ["--n-unique", "10"]),
            ("100 textures", ["--n-unique", "100"]), ("1000 textures", ["--n-unique", "1000"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--out", default="runs/eval_tobin")
    args = parser.parse_args()
    rows = []
    for name, flags in VARIANTS:
        out = os.path.join(args.out, name.split()[0])
        assert cli(["perception", "train", "launch/so101_reach_vision.yaml", "--images", str(args.images),
                    "--epochs", str(args.epochs), "--test-images", str(args.test_images), "--out", out, *flags]) == 0
        with open(os.path.join(out, "perception.json"), encoding="utf-8") as handle:
            facts = json.load(handle)
        rows.append({"variant": name, **facts})
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)
    lines = ["| perception trained with | error, training textures (cm) | error, held-out textures (cm) | wall (s) |",
             "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['val_error_m'] * 100:.2f} | {r['heldout_texture_error_m'] * 100:.2f} | "
              f"{r['wall_time_s']:.0f} |" for r in rows]
    table = "\n".join(lines)
    with open(os.path.join(args.out, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
