"""``sim2real eval``: a run's success rate, or the transfer gap of a policy across conditions.

``sim2real eval RUN_DIR`` prints success rate and mean return over N seeded episodes of the run's own env.
``sim2real eval POLICY... --conditions train,heldout-textures,heldout-dynamics,emulated`` writes report.json,
report.md and report.html (plots, videos) with bootstrap 95 % CIs and the transfer gap train − condition.
"""
from __future__ import annotations

import argparse

from sim2real.arguments import nonnegative_int, output_dir, positive_float, positive_int, seed


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate a trained run, or its transfer gap across conditions")
    parser.add_argument("policy", nargs="+", help="run directory (several: seeds of one launch file), SB3 .zip "
                                                   "with --launch, or vision pipeline folder")
    parser.add_argument("--launch", help="launch file, path or shipped name (default: the run's own launch.yaml)")
    parser.add_argument("--conditions", help="comma-separated: train, heldout-textures, heldout-dynamics, emulated")
    parser.add_argument("--textures", help="held-out textures from this image directory (png/jpg)")
    parser.add_argument("--reality", help="reality profile of the emulator, path or shipped name (default lab)")
    parser.add_argument("--episodes", type=positive_int, default=50, help="episodes per condition (default 50)")
    parser.add_argument("--emulated-episodes", type=positive_int,
                        help="emulated episodes (real time; default min(N, 10))")
    parser.add_argument("--videos", type=nonnegative_int, default=2, help="videos per simulated condition (default 2)")
    parser.add_argument("--n-envs", type=positive_int, default=4, help="environments stepped together (default 4)")
    parser.add_argument("--watchdog-periods", type=positive_float, default=5.0,
                        help="emulated: state age / step lateness allowed, in control periods (default 5)")
    parser.add_argument("--seed", type=seed, default=None, help="first episode seed")
    parser.add_argument("--out", type=output_dir, help="report directory (default runs/eval-TIME)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="ray: simulated conditions x policies x chunks of --n-envs trials as Ray tasks, the "
                             "same episodes as local (the emulated condition stays here); needs --conditions")
    parser.add_argument("--ray-address", help="Ray cluster (head host:port, or auto); default: a private instance")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.errors import UserError

    if args.ray_address and args.backend != "ray":
        raise UserError("--ray-address: only used with --backend ray")
    if args.conditions is None:
        if len(args.policy) != 1 or args.launch or args.textures or args.reality or args.out or \
                args.backend != "local" or args.ray_address:
            raise UserError("--launch, --textures, --reality, --out, --backend ray and several policies need "
                            "--conditions")
        from sim2real.progress import progress_bars
        from sim2real.train import evaluate_run

        with progress_bars() as bars:
            result = evaluate_run(args.policy[0], args.episodes, args.seed, bars.counter("episodes"))
        print(f"episodes {result.episodes}  success rate {result.success_rate:.1%}  "
              f"mean return {result.mean_return:.2f} ± {result.std_return:.2f}")
        return 0
    from sim2real.evaluation.command import run_eval
    from sim2real.evaluation.conditions import parse_conditions
    from sim2real.evaluation.report import summary_table
    from sim2real.evaluation.run import EvalSettings
    from sim2real.progress import progress_bars

    settings = EvalSettings(parse_conditions(args.conditions), args.episodes,
                            1_000_000 if args.seed is None else args.seed, args.n_envs, args.videos,
                            args.emulated_episodes, args.textures, args.reality,
                            watchdog_periods=args.watchdog_periods, backend=args.backend,
                            ray_address=args.ray_address)
    with progress_bars() as bars:
        out_dir, summary = run_eval(args.policy, args.launch, settings, args.out, bars)
    print(summary_table(summary))
    print(f"report: {out_dir}/report.html")
    return 0
