"""The ``sim2real`` command line: discovers subcommands in :mod:`sim2real.commands`."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import sim2real
from sim2real import commands
from sim2real.errors import UserError


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit code 2 (argparse's own convention)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sim2real", description="Sim-to-real toolkit: train, evaluate and deploy robot policies.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {sim2real.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return int(handler(args) or 0)
    except UserError as err:
        print(f"sim2real: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("sim2real: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
