"""``sim2real deploy-report LOG --out report.png``: plot a deployment log and print its loop timing."""
from __future__ import annotations

import argparse

from sim2real.arguments import output_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deploy-report", help="plot a deployment log")
    parser.add_argument("log", help="log.jsonl written by `sim2real deploy`")
    parser.add_argument("--out", required=True, type=output_file, help="PNG to write")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.deploy.report import plot_report
    from sim2real.errors import UserError

    try:
        stats = plot_report(args.log, args.out)
    except OSError as err:
        raise UserError(f"{args.log}: cannot read ({err.strerror})") from None
    except (ValueError, KeyError, IndexError) as err:
        raise UserError(f"{args.log}: not a deployment log ({err})") from None
    print(f"report written to {args.out}")
    for key, value in stats.items():
        print(f"  {key}: {value:.2f}")
    return 0
