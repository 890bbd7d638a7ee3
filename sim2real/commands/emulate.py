"""``sim2real emulate {dynamixel,feetech} --reality PROFILE``: a servo bus on a pseudo-terminal moving a PyBullet arm."""
from __future__ import annotations

import argparse
import os
import signal
import sys

from sim2real.arguments import output_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("emulate", help="serve an emulated servo bus or quadcopter",
                            description="Print one line with the address to connect to, then serve until stopped "
                                        "(Ctrl-C / SIGTERM). Servo buses: ids 1..6 as in the SO-101 spec on a "
                                        "pseudo-terminal; any baud rate the real servos accept works. crazyflie: "
                                        "CRTP over UDP for cflib's udp:// driver; mavlink: a PX4-like vehicle.")
    parser.add_argument("protocol", choices=("dynamixel", "feetech", "crazyflie", "mavlink"),
                        help="bus protocol or vehicle link")
    parser.add_argument("--port", type=int, default=None,
                        help="UDP port (crazyflie default 19850, mavlink default 14550)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; any other address lets other machines command "
                             "the emulator, and a warning says so)")
    parser.add_argument("--count", type=int, default=1,
                        help="crazyflie: vehicles on consecutive ports from --port (default 1)")
    parser.add_argument("--reality", default=None,
                        help="reality profile: YAML path or shipped name, e.g. lab or crazyflie_lab (default: the "
                             "nominal arm or vehicle)")
    parser.add_argument("--robot", default="so101", help="robot spec (default so101)")
    parser.add_argument("--journal", type=output_file, default=None,
                        help="append every goal-position write here (JSON lines)")
    parser.add_argument("--link", type=output_file, default=None,
                        help="also expose the port as this symlink (e.g. /tmp/ttyARM)")
    parser.add_argument("--model", default="XL330-M288", help="Dynamixel model to emulate (default XL330-M288)")
    parser.set_defaults(handler=run)


def _warn_if_reachable(host: str) -> None:
    """One warning line on stderr when ``host`` is not a loopback address: the emulator has no authentication, so
    anyone who reaches that address can command it."""
    import ipaddress

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = host == "localhost"
    if not loopback:
        print(f"sim2real: warning: --host {host} is not a loopback address: other machines on the network can "
              "connect to this emulator and command it (no authentication)", file=sys.stderr, flush=True)


def run_quadcopter(args: argparse.Namespace) -> int:
    """``emulate crazyflie`` / ``emulate mavlink``: serve until SIGINT/SIGTERM."""
    from sim2real.emulators.quad_reality import load_quad_reality
    from sim2real.errors import UserError

    reality = load_quad_reality(args.reality)
    port = args.port if args.port is not None else (19850 if args.protocol == "crazyflie" else 14550)
    if not 0 <= port <= 65535 or not 1 <= args.count <= 10 or port + args.count - 1 > 65535:
        raise UserError(f"--port must be 0..65535 and --count 1..10, got {port} and {args.count}")
    if args.protocol == "mavlink" and args.count != 1:
        raise UserError("--count: the mavlink emulator serves one vehicle per port (start one per vehicle)")
    _warn_if_reachable(args.host)
    try:
        if args.protocol == "crazyflie":
            from sim2real.emulators.crazyflie import CrazyflieEmulator

            emulator = CrazyflieEmulator(reality, port, args.host, args.count, args.journal)
            ready = lambda uris: print(f"crazyflie emulator ({reality.name}) on {' '.join(uris)}", flush=True)
        else:
            from sim2real.emulators.mavlink import MavlinkEmulator

            emulator = MavlinkEmulator(reality, port, args.host, args.journal)
            ready = lambda address: print(f"mavlink emulator ({reality.name}) on {address}", flush=True)
    except OSError as err:
        raise UserError(f"--port {port}: cannot bind {args.host} ({err.strerror})") from None
    signal.signal(signal.SIGTERM, lambda *_: emulator.stop())
    signal.signal(signal.SIGINT, lambda *_: emulator.stop())
    emulator.serve(on_ready=ready)
    print(f"emulator stopped: {emulator.stats}", file=sys.stderr)
    return 0


def _check_servo_robot(name: str) -> None:
    """A one-line error unless robot ``name`` is known and has a servo bus id on every joint."""
    from robots.calibration import calibration_from_spec
    from robots.registry import get_robot_spec
    from sim2real.errors import UserError

    try:
        calibration_from_spec(get_robot_spec(name))
    except KeyError as err:
        raise UserError(f"--robot: {err.args[0]}") from None
    except ValueError as err:
        raise UserError(f"--robot: {err}: a servo bus emulator needs a servo on every joint") from None


def run(args: argparse.Namespace) -> int:
    if args.protocol in ("crazyflie", "mavlink"):
        return run_quadcopter(args)
    from sim2real.emulators.dynamixel import MODELS
    from sim2real.emulators.reality import RealityProfile, load_reality
    from sim2real.emulators.server import BusEmulator
    from sim2real.errors import UserError

    if args.model not in MODELS:
        raise UserError(f"--model must be one of {', '.join(MODELS)}, got {args.model!r}")
    reality = load_reality(args.reality) if args.reality else RealityProfile()
    _check_servo_robot(args.robot)
    emulator = BusEmulator(args.protocol, reality, args.robot, args.journal, MODELS[args.model])
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
