"""``sim2real sysid collect|fit|loop``: close the sim-to-real loop from deployment logs.

* ``collect``: a safe excitation through the normal deploy stack (arms: per-joint steps and chirps; quadcopters:
  thrust and rate doublets around hover), written as an ordinary deployment log;
* ``fit LOG... --out fitted.yaml``: replay the logs' commands through the simulator, fit its parameters, write the
  reality profile, training ranges, report, and apply the replay gate;
* ``loop``: collect -> fit -> retrain from a launch file with the fitted ranges -> evaluate before/after on the
  same robot or emulator.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from sim2real.arguments import nonnegative_float, output_dir, output_file, positive_float, positive_int, seed

ARM_DRIVERS = ("dynamixel", "feetech")
QUAD_DRIVERS = ("crazyflie", "mavlink")


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver", required=True, choices=(*ARM_DRIVERS, *QUAD_DRIVERS))
    parser.add_argument("--port", help="arms: serial port of the servo bus (e.g. /dev/ttyUSB0, or an emulator's pty)")
    parser.add_argument("--calibration", help="arms: calibration file from `sim2real calibrate` (required for servo "
                                              "buses; `--from-spec` for an emulator)")
    parser.add_argument("--baud", type=int, default=1_000_000, help="arms: bus baud rate (default 1000000)")
    parser.add_argument("--bus-watchdog", type=nonnegative_float, default=0.1,
                        help="arms: servo bus watchdog, s (Dynamixel; default 0.1, 0 turns it off)")
    parser.add_argument("--latency-ms", type=positive_float, default=16.0,
                        help="arms: USB adapter latency timer, ms (reply timeout 2x this + 2 ms; default 16)")
    parser.add_argument("--robot", default="so101", help="arms: robot spec (default so101)")
    parser.add_argument("--address", help="quadcopters: cflib URI (crazyflie) or pymavlink URL (mavlink)")
    parser.add_argument("--stop-file", help="stop (safely) as soon as this file exists")
    parser.add_argument("--priority", choices=("none", "nice", "fifo"), default="none",
                        help="raise the control loops' scheduling priority where permitted (as `sim2real deploy`)")
    parser.add_argument("--overrun-periods", type=positive_float,
                        help="safe-stop when a step starts this many control periods late (default: deploy's)")
    parser.add_argument("--stale-periods", type=positive_float,
                        help="safe-stop when the newest state is this many control periods old (default: deploy's)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sysid", help="system identification from deployment logs (collect, fit, loop)",
                            description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="sysid_command", required=True)

    collect = commands.add_parser("collect", help="run the excitation routine and write a deployment log")
    _connection(collect)
    collect.add_argument("--log", type=output_file, required=True, help="deployment log to write (JSON lines)")
    collect.add_argument("--amplitude", type=positive_float, default=0.35,
                         help="arms: step and chirp amplitude around home, rad (default 0.35)")
    collect.add_argument("--rate-hz", type=positive_float,
                         help="arms: excitation rate (default: the robot's control rate, lower on a slow bus)")
    _rate_limit(collect)
    collect.add_argument("--seed", type=seed, default=0, help="quadcopters: seed of the start positions")
    collect.set_defaults(handler=run_collect)

    fit = commands.add_parser("fit", help="fit the simulator to deployment logs")
    fit.add_argument("logs", nargs="+", help="deployment logs (JSON lines) of one robot")
    _fit_options(fit)
    fit.add_argument("--out", type=output_file, required=True, help="fitted reality profile (YAML) to write")
    fit.add_argument("--launch", help="also write this launch file with the fitted ranges (OUT_STEM_launch.yaml)")
    fit.set_defaults(handler=run_fit)

    loop = commands.add_parser("loop", help="collect, fit, retrain with the fitted ranges, evaluate before/after")
    _connection(loop)
    _fit_options(loop)
    loop.add_argument("--launch", required=True, help="the launch file to retrain from (path or shipped name)")
    loop.add_argument("--policy", required=True, help="the policy deployed now (run directory or model)")
    loop.add_argument("--out", type=output_dir, required=True, help="folder for the log, fit, run and reports")
    loop.add_argument("--episodes", type=positive_int, default=10, help="evaluation episodes before/after (10)")
    loop.add_argument("--timesteps", type=positive_int,
                      help="training budget (default: the launch file's, 4x it when a fitted range lies outside "
                           "the launch file's)")
    loop.add_argument("--steps", type=positive_int, help="control steps per evaluation episode (default: deploy's)")
    _rate_limit(loop)
    loop.add_argument("--min-sim-success", type=_fraction, default=0.5,
                      help="deploy the retrained policy only if its last evaluation in simulation reaches this "
                           "success rate (default 0.5; 0: always)")
    loop.set_defaults(handler=run_loop)


def _rate_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate-limit", type=_speed_fraction,
                        help="arms: the safety layer's command-rate limit for the excitation only, as a fraction "
                             "(0..1] of each joint's speed limit (default: deploy's 0.75; 1 lets the excitation "
                             "load the servos; joint limits, step limit and workspace box stay on)")


def _fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = nonnegative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def _speed_fraction(text: str) -> float:
    """A fraction of the joints' speed limit: a number in (0, 1]."""
    value = positive_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction of the joint speed limit in (0, 1], got {text!r}")
    return value


def _fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--segment-s", type=positive_float, default=4.0,
                        help="length of the replayed log segments, s (default 4); every 4th is held out")
    parser.add_argument("--evaluations", type=positive_int, default=600,
                        help="optimizer budget: replays of the training segments (default 600)")
    parser.add_argument("--factor", type=positive_float, default=3.0,
                        help="replay gate: the held-out error must drop by this factor (default 3)")
    parser.add_argument("--fixed", default="", help="parameters not fitted, comma-separated, each held at nominal or "
                                                    "at NAME=VALUE (e.g. mass_scale=1.1 for a weighed arm)")
    parser.add_argument("--fit-seed", type=seed, default=0, help="seed of the optimizer and bootstrap (default 0)")


def collect_log(args: argparse.Namespace, log_path: str) -> int:
    """Run the excitation on the robot the flags name; print the outcome; the deploy exit code."""
    from sim2real.errors import UserError

    if args.driver in QUAD_DRIVERS:
        from robots.quadrotor import crazyflie_spec
        from sim2real.sysid.excitation_quad import collect_quadrotor, connect_vehicle

        if not args.address:
            raise UserError(f"--address is required for --driver {args.driver} (a cflib URI or pymavlink URL)")
        spec = crazyflie_spec()
        robot = connect_vehicle(args.driver, args.address, spec)
        result, problems = collect_quadrotor(robot, spec, log_path, seed=getattr(args, "seed", 0),  # loop: none
                                             stop_file=args.stop_file, limits=_watchdog_limits(args, 50.0))
        return _summarize(result, log_path, problems)
    from robots.registry import get_robot_spec
    from sim2real.hal.drivers import make_robot
    from sim2real.hal.servo_bus import BusError
    from sim2real.sysid.collect import collect_arm
    from sim2real.sysid.excitation_arm import Excitation

    try:
        spec = get_robot_spec(args.robot)
    except KeyError as err:
        raise UserError(f"--robot: {err.args[0]}") from None
    robot = make_robot(args.driver, spec, (0.0, 0.0, 0.0), args.port, args.baud, args.calibration,
                       args.bus_watchdog, args.latency_ms)
    try:
        robot.connect()
    except BusError as err:
        robot.disconnect()
        raise UserError(str(err)) from None
    rate = getattr(args, "rate_hz", None) or excitation_rate(robot, spec.control_rate_hz)
    targets = Excitation(amplitude=getattr(args, "amplitude", 0.35)).targets(spec, rate)
    print(f"excitation: {len(targets)} steps at {rate:g} Hz ({len(targets) / rate:.0f} s)", flush=True)
    result, problems = collect_arm(robot, spec, (0.0, 0.0, 0.0), targets, log_path, rate, args.stop_file,
                                   _watchdog_limits(args, rate), velocity_fraction=getattr(args, "rate_limit", None))
    return _summarize(result, log_path, problems,
                      lambda e: f": {e.get('steps', 0)} excitation steps, final tracking "
                                f"{e.get('tracking_rms', 0.0) * 1e3:.1f} mrad")


def _watchdog_limits(args: argparse.Namespace, rate_hz: float) -> dict:
    """The loop's watchdog limits (s) from ``--overrun-periods`` / ``--stale-periods`` (None: the loop's default)
    and its ``--priority``."""
    return {"priority": args.priority,
            "overrun_after_s": None if args.overrun_periods is None else args.overrun_periods / rate_hz,
            "stale_after_s": None if args.stale_periods is None else args.stale_periods / rate_hz}


def _summarize(result, log_path: str, problems: list[str], more=lambda episode: "") -> int:
    """One line per episode, the stop (if any) and what failed on the way out; the deploy exit code."""
    from sim2real.deploy.faults import exit_code

    for episode in result.episodes:
        print(f"episode {episode['episode']}: done{more(episode)}")
    print(f"log {log_path}")
    stopped = result.stopped
    if stopped is not None:
        failed = stopped.get("safe_stop_error")
        print(f"stopped by {stopped['kind']}: {stopped['reason']} "
              + (f"(SAFE STOP FAILED: {failed}; check the robot)" if failed is not None else "(safe stop done)"))
    for problem in ([f"log: {result.log_error}"] if result.log_error else []) + problems:
        print(f"on the way out: {problem}")
    return exit_code(stopped)


def excitation_rate(robot, rate_hz: float, reads: int = 7, share: float = 0.6) -> float:
    """``rate_hz``, or lower when the quickest of ``reads`` state reads takes more than ``share`` of its period (a
    slow bus: the loop would fall behind and its watchdog stop the run; the quickest, since a busy computer only
    ever adds to the bus's own delay)."""
    times = []
    for _ in range(reads):
        started = time.monotonic()
        robot.read_state()
        times.append(time.monotonic() - started)
    read_s = float(np.min(times))
    return rate_hz if read_s <= share / rate_hz else float(np.floor(10.0 * share / read_s) / 10.0)


def run_collect(args: argparse.Namespace) -> int:
    return collect_log(args, args.log)


def _fixed(text: str) -> dict[str, float | None]:
    """``--fixed mass_scale,latency_s=0.012`` -> {name: value or None (nominal)}."""
    from sim2real.errors import UserError

    fixed: dict[str, float | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value) if value else None
        except ValueError:
            raise UserError(f"--fixed {item}: the value must be a number") from None
        if value and not np.isfinite(fixed[name.strip()]):
            raise UserError(f"--fixed {item}: the value must be finite")
    return fixed


def fit_logs(args: argparse.Namespace, logs: list[str], out: str, launch: str | None) -> dict:
    """Run the fit with a progress bar; print the estimates, the gate and the outputs."""
    from sim2real.progress import progress_bars
    from sim2real.sysid.fit import FitSettings
    from sim2real.sysid.identify import identify

    settings = FitSettings(evaluations=args.evaluations, seed=args.fit_seed)
    with progress_bars() as bars:
        counter = bars.counter("fit", line_every=max(args.evaluations // 5, 1))
        data = identify(logs, out, args.segment_s, settings, args.factor, launch,
                        progress=lambda done, best: counter(min(done, args.evaluations), args.evaluations,
                                                            f"best {best:.4g}"), fixed=_fixed(args.fixed))
    print("compared: " + (", ".join(data["channels_compared"]) or "nothing (no channel moved)"))
    for row in data["parameters"]:
        print(f"{row['name']:>16s} {row['estimate']:10.4g}   [{row['low']:.4g}, {row['high']:.4g}]"
              + ("   (weak)" if row["weak"] else ""))
    error, gate = data["held_out_error"], data["gate"]
    print(f"held-out replay error {error['before']:.4g} -> {error['after']:.4g} ({error['ratio']:.2f}x): "
          + ("accepted" if gate["accepted"] else f"REJECTED (needs {gate['factor']:g}x)"))
    for reason in gate["reasons"][1:]:
        print(f"  {reason}")
    for what, path in data["outputs"].items():
        print(f"{what}: {path}")
    return data


def run_fit(args: argparse.Namespace) -> int:
    if args.launch:
        from sim2real.launch import resolve
        from sim2real.launch.files import find_launch_file

        resolve(args.launch)  # a bad launch file is refused before the fit, not after it
        args.launch = find_launch_file(args.launch)
    data = fit_logs(args, list(args.logs), args.out, args.launch)
    return 0 if data["gate"]["accepted"] else 3


def run_loop(args: argparse.Namespace) -> int:
    from sim2real.sysid.loop import close_the_loop

    return close_the_loop(args, collect_log, fit_logs)
