"""``sim2real calibrate --out FILE``: servo calibration, interactively on hardware or ``--from-spec`` (emulators)."""
from __future__ import annotations

import argparse
import select
import sys

from sim2real.arguments import output_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("calibrate", help="write a servo calibration file for a robot",
                            description="Interactive on hardware (--driver, --port): zero pose, directions, ranges. "
                                        "--from-spec writes the nominal calibration the emulators implement.")
    parser.add_argument("--robot", default="so101", help="robot spec (default so101)")
    parser.add_argument("--out", required=True, type=output_file, help="calibration file to write (JSON)")
    parser.add_argument("--from-spec", action="store_true", help="nominal calibration (tick 2048 = zero)")
    parser.add_argument("--driver", choices=("dynamixel", "feetech"), help="servo bus (interactive mode)")
    parser.add_argument("--port", help="serial port (interactive mode)")
    parser.add_argument("--baud", type=int, default=1_000_000, help="bus baud rate (default 1000000)")
    parser.set_defaults(handler=run)


def _enter_pressed() -> bool:
    if select.select([sys.stdin], [], [], 0.02)[0]:
        sys.stdin.readline()
        return True
    return False


def run(args: argparse.Namespace) -> int:
    from robots.calibration import calibration_from_spec
    from robots.registry import get_robot_spec
    from sim2real.errors import UserError
    from sim2real.io import atomic_write_text

    try:
        spec = get_robot_spec(args.robot)
    except KeyError as err:
        raise UserError(f"--robot: {err.args[0]}") from None
    if args.from_spec:
        try:
            calibration = calibration_from_spec(spec)
        except ValueError as err:
            raise UserError(str(err)) from None
    else:
        if not (args.driver and args.port):
            raise UserError("give --from-spec, or --driver and --port to calibrate a connected arm")
        from sim2real.hal.calibration_procedure import calibrate_interactively
        from sim2real.hal.dynamixel import DynamixelBus
        from sim2real.hal.feetech import FeetechBus
        from sim2real.hal.servo_bus import BusError

        ids = [spec.actuator(n).bus_id for n in spec.joint_names]
        try:
            bus = (DynamixelBus if args.driver == "dynamixel" else FeetechBus)(args.port, ids, args.baud)
            calibration = calibrate_interactively(spec, bus, ask=input,
                                                  sweeping=lambda: not _enter_pressed())
        except (BusError, ValueError) as err:
            raise UserError(str(err)) from None
    atomic_write_text(args.out, calibration.to_json())
    print(f"calibration of {spec.name} ({len(calibration.joints)} joints) written to {args.out}")
    return 0
