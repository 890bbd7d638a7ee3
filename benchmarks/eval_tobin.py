"""Tobin-style perception ablation on the SO-101 arm: goal-localization error on training vs held-out textures
for a CNN trained without visual randomization and with 10 / 100 / 1,000 / 10,000 unique procedural textures.

    nice .venv/bin/python benchmarks/eval_tobin.py --images 2000 --epochs 20 --test-images 300 \\
        --cache runs/renders --out runs/eval_tobin [--only none,10,100,1000,10000]

Each variant is one ``sim2real perception train LAUNCH`` call on the same held-out test set (the launch file's
held-out families, rendered once into ``--cache``); the table (markdown) and every number (``results.json``) are
written into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os

from sim2real.cli import main as cli

VARIANTS = (("no visual randomization", ["--no-visual"]), ("10 textures", ["--n-unique", "10"]),
            ("100 textures", ["--n-unique", "100"]), ("1,000 textures", ["--n-unique", "1000"]),
            ("10,000 textures", ["--n-unique", "10000"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch", default="launch/so101_reach_twoview.yaml")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--test-images", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1, help="rendering processes per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per variant")
    parser.add_argument("--cache", default="runs/renders", help="rendered sets reused between runs (npz)")
    parser.add_argument("--only", help="comma-separated variant folders to run (none,10,100,1000,10000)")
    parser.add_argument("--out", default="runs/eval_tobin")
    args = parser.parse_args()
    rows = []
    for name, flags in VARIANTS:
        folder = flags[-1] if flags[0] == "--n-unique" else "none"
        out = os.path.join(args.out, folder)
        if args.only is None or folder in args.only.split(","):
            assert cli(["perception", "train", args.launch, "--images", str(args.images), "--epochs",
                        str(args.epochs), "--test-images", str(args.test_images), "--workers", str(args.workers),
                        "--threads", str(args.threads), "--cache", args.cache, "--out", out, *flags]) == 0
        if os.path.isfile(os.path.join(out, "perception.json")):
            with open(os.path.join(out, "perception.json"), encoding="utf-8") as handle:
                rows.append({"variant": name, **json.load(handle)})
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)
    lines = ["| perception trained with | images x epochs | error, training textures (cm) | "
             "error, held-out textures (cm) | held-out x / y / z (cm) | wall (s) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['images']} x {r['epochs']} | {r['val_error_m'] * 100:.2f} | "
              f"{r['heldout_texture_error_m'] * 100:.2f} | "
              f"{' / '.join(f'{e * 100:.2f}' for e in r['heldout_axis_error_m'])} | {r['wall_time_s']:.0f} |"
              for r in rows]
    table = "\n".join(lines)
    with open(os.path.join(args.out, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
