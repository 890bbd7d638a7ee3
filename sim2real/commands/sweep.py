"""``sim2real sweep LAUNCH seed=0,1,2 algo.learning_rate=1e-3,3e-4``: a grid of trainings as Ray tasks."""
from __future__ import annotations

import argparse

from sim2real.arguments import output_dir, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sweep", help="train a grid of seeds / hyper-parameters as Ray tasks, one summary",
                            description="Every combination of the key=v1,v2 lists is one normal run directory "
                                        "under --out, trained in a Ray task; then one table of final success "
                                        "with a 95 %% interval across seeds (sweep.json, sweep.md).")
    parser.add_argument("launch", help="launch file: a YAML path or a shipped name (sim2real info)")
    parser.add_argument("grid", nargs="+", help="dotted key=value[,value...] lists, e.g. seed=0,1,2 "
                                                 "algo.learning_rate=1e-3,3e-4")
    parser.add_argument("--out", type=output_dir, help="sweep directory (default runs/sweep-TIME)")
    parser.add_argument("--eval-episodes", type=positive_int, default=20,
                        help="episodes of each final evaluation, the same seeded episodes for every run (default 20)")
    parser.add_argument("--ray-address", help="Ray cluster (head host:port, or auto); default: a private instance")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import os
    import time

    from sim2real.ray_backend.sweep import plan, run_sweep, summary_table

    out = args.out or os.path.join("runs", f"sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    points = plan(args.launch, args.grid, out)
    print(f"sweep: {len(points)} runs into {out}", flush=True)

    def report(point, result) -> None:
        print(f"  {' '.join(point.overrides) or '(launch file)'}: final success {result['success_rate']:.0%} "
              f"({result['run_dir']})", flush=True)

    summary = run_sweep(points, out, args.eval_episodes, args.ray_address, report)
    print(summary_table(summary))
    print(f"summary: {out}/sweep.md")
    return 0
