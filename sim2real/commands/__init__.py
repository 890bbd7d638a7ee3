"""CLI subcommands: one module per command, each exposing ``register(subparsers)``.

``register`` adds an argparse sub-parser and sets ``handler=callable(args) -> int`` on it.
Modules are discovered automatically, so a new command is a new file here.
"""
