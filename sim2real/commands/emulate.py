"""``sim2real emulate {dynamixel,feetech} --reality PROFILE``: a servo bus on a pseudo-terminal moving a PyBullet arm."""
from __future__ import annotations

import argparse
import os
import signal
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("emulate", help="serve an emulated servo bus on a pseudo-terminal",
                            description="Print one line with the port to connect to, then serve until stopped "
                                        "(Ctrl-C / SIGTERM). Servo ids 1..6 as in the SO-101 spec; any baud rate "
                                        "the real servos accept works.")
    parser.add_argument("protocol", choices=("dynamixel", "feetech"), help="bus protocol")
    parser.add_argument("--reality", default=None, help="reality profile YAML (default: the nominal arm)")
    parser.add_argument("--robot", default="so101", help="robot spec (default so101)")
    parser.add_argument("--journal", default=None, help="append every goal-position write here (JSON lines)")
    parser.add_argument("--link", default=None, help="also expose the port as this symlink (e.g. /tmp/ttyARM)")
    parser.add_argument("--model", default="XL330-M288", help="Dynamixel model to emulate (default XL330-M288)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.emulators.dynamixel import MODELS
    from sim2real.emulators.reality import RealityProfile, load_reality
    from sim2real.emulators.server import BusEmulator
    from sim2real.errors import UserError

    if args.model not in MODELS:
        raise UserError(f"--model must be one of {', '.join(MODELS)}, got {args.model!r}")
    reality = load_reality(args.reality) if args.reality else RealityProfile()
    try:
        emulator = BusEmulator(args.protocol, reality, args.robot, args.journal, MODELS[args.model])
    except KeyError as err:
        raise UserError(f"--robot: {err.args[0]}") from None
    if args.link:
        if os.path.lexists(args.link):
            if not os.path.islink(args.link):
                raise UserError(f"--link {args.link}: exists and is not a symlink")
            os.unlink(args.link)
        os.symlink(emulator.port, args.link)
    signal.signal(signal.SIGTERM, lambda *_: emulator.stop())
    signal.signal(signal.SIGINT, lambda *_: emulator.stop())
    try:
        emulator.serve(on_ready=lambda port: print(f"{args.protocol} bus emulator ({reality.name}) on {port}",
                                                   flush=True))
    finally:
        if args.link and os.path.islink(args.link):
            os.unlink(args.link)
    print(f"emulator stopped: {emulator.stats}", file=sys.stderr)
    return 0
