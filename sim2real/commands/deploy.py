"""``sim2real deploy POLICY --launch LAUNCH --driver dynamixel --port /dev/ttyUSB0``: run a policy on hardware."""
from __future__ import annotations

import argparse
import os
import textwrap
import time

from sim2real.arguments import nonnegative_float, output_file, positive_float, positive_int, seed
from sim2real.hal.drivers import DRIVERS as ARM_DRIVERS
from sim2real.hal.drivers import FLIGHT_DRIVERS


def register(sub: argparse._SubParsersAction) -> None:
    from sim2real.deploy.faults import exit_codes_help
    from sim2real.deploy.timing import OVERRUN_PERIODS, PRIORITIES, STALE_PERIODS

    parser = sub.add_parser("deploy", help="run a trained policy on a real (or emulated) robot",
                            description=textwrap.fill(
                                "Deploy a policy through the safety layer. Stop at any time with Ctrl-C, q / space "
                                "on the terminal, or by creating the --stop-file. Any failure inside the loop "
                                "(watchdog, link, non-finite action, an error in the policy, task, driver, camera "
                                "or log) ends in the robot's safe stop (arms hold, multirotors land), logged with "
                                "its cause.", 79),
                            epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy", help="run directory, SB3 model .zip, RL² .pt checkpoint, export folder or vision "
                                       "pipeline folder")
    parser.add_argument("--launch", help="launch file the policy was trained with (default: the run's own)")
    parser.add_argument("--driver", required=True, choices=(*ARM_DRIVERS, *FLIGHT_DRIVERS),
                        help="dynamixel, feetech, ros2, crazyflie or mavlink")
    parser.add_argument("--port", help="serial port of the servo bus, e.g. /dev/ttyUSB0")
    parser.add_argument("--baud", type=int, default=1_000_000, help="bus baud rate (default 1000000)")
    parser.add_argument("--calibration", help="calibration file from `sim2real calibrate` (servo buses); for "
                                              "--driver crazyflie a YAML thrust_map: {quadratic, linear, offset} "
                                              "(N per motor vs PWM; default the Crazyflie 2.x fit)")
    parser.add_argument("--episodes", type=positive_int, default=1, help="episodes to run (default 1)")
    parser.add_argument("--steps", type=positive_int, help="control steps per episode (default: the launch file's)")
    parser.add_argument("--rate-hz", type=positive_float, help="control rate (default: the robot's training rate)")
    parser.add_argument("--goal", action="append", help="reach goal x,y,z in m, world frame (repeatable)")
    parser.add_argument("--goals-file", help="JSON list of [x, y, z] goals")
    parser.add_argument("--log", type=output_file, help="deployment log (default runs/deploy-TIME/log.jsonl)")
    parser.add_argument("--stop-file", help="stop as soon as this file exists")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the task's goal sampler (default 0)")
    parser.add_argument("--bus-watchdog", type=nonnegative_float, default=0.1,
                        help="servo bus watchdog, s (Dynamixel; default 0.1, 0 turns it off)")
    parser.add_argument("--latency-ms", type=positive_float, default=16.0, help="USB adapter latency timer, ms")
    parser.add_argument("--camera", help="camera policies (obs_mode rgb, vision pipelines): an OpenCV camera "
                                         "(device index such as 0, device path, video file or stream URL), or "
                                         "`render` for an emulated arm (the task's scene, objects simulated, "
                                         "rendered around the arm)")
    parser.add_argument("--overrun-periods", type=positive_float,
                        help="safe-stop when a step starts this many control periods late "
                             f"(default {OVERRUN_PERIODS:g})")
    parser.add_argument("--stale-periods", type=positive_float,
                        help=f"safe-stop when the newest state is this many control periods old "
                             f"(default {STALE_PERIODS:g})")
    parser.add_argument("--priority", choices=PRIORITIES, default="none",
                        help="raise the control loop's scheduling priority where permitted (nice: nice -10; fifo: "
                             "SCHED_FIFO) on a busy companion computer driving real hardware; not with an emulator "
                             "on the same CPU, which it starves (default none)")
    quad = parser.add_argument_group("quadcopters (--driver crazyflie | mavlink)")
    quad.add_argument("--uri", help="cflib URI, e.g. radio://0/80/2M/E7E7E7E7E7 or udp://127.0.0.1:19850")
    quad.add_argument("--url", help="pymavlink URL, e.g. udpout:127.0.0.1:14550 or udpin:0.0.0.0:14540")
    quad.add_argument("--geofence", help="box x0,y0,z0,x1,y1,z1 in m, world ENU (default: 1.5 m × vehicle size "
                                         "around the origin, -0.1..2 m × size high)")
    quad.add_argument("--tolerance", type=positive_float, default=0.1, help="episode success radius, m (default 0.1)")
    quad.add_argument("--approach-timeout", type=positive_float, default=30.0,
                      help="s the vehicle's own position controller has to reach each episode's start before the run "
                           "lands (default 30; a heavy vehicle first winds up its thrust integrator)")
    parser.set_defaults(handler=run)


def _summarize(result, log_path: str, problems: list[str], more=lambda episode: "") -> int:
    """Print one line per episode, the success rate, any stop and what failed on the way out; the exit code
    (:data:`sim2real.deploy.faults.EXIT_CODES`)."""
    from sim2real.deploy.faults import exit_code

    for episode in result.episodes:
        print(f"episode {episode['episode']}: {'success' if episode['success'] else 'failure'}  "
              f"final distance {episode['final_distance'] * 100:.1f} cm{more(episode)}")
    print(f"success rate {result.success_rate:.0%} over {len(result.episodes)} episode(s); log {log_path}")
    stopped = result.stopped
    if stopped is not None:
        failed = stopped.get("safe_stop_error")
        print(f"stopped by {stopped['kind']}: {stopped['reason']} "
              + (f"(SAFE STOP FAILED: {failed}; check the robot)" if failed is not None
                 else f"(safe stop in {stopped['stop_latency'] * 1e3:.1f} ms)"))
        if stopped.get("took_off") is False:
            print("the vehicle did not take off")
    for problem in ([f"log: {result.log_error}"] if result.log_error else []) + problems:
        print(f"on the way out: {problem}")
    return exit_code(stopped)


def _log_path(args: argparse.Namespace) -> str:
    """``--log`` (checked when parsed), or ``runs/deploy-TIME/log.jsonl`` when it can be written: before
    anything connects to the robot."""
    from sim2real.arguments import check_writable

    if args.log:
        return args.log
    return check_writable(os.path.join("runs", f"deploy-{time.strftime('%Y%m%d-%H%M%S')}", "log.jsonl"),
                          "default --log", directory=False)


def run(args: argparse.Namespace) -> int:
    """Load the policy, build the deployment stack (:func:`sim2real.deployment.build_stack`: every mistake in the
    flags or files is one line before anything connects), connect, run, summarize."""
    from sim2real.deploy.goals import load_goals, parse_goal
    from sim2real.deployment import Link, RunSettings, build_stack
    from sim2real.launch import resolve
    from sim2real.policy_files import load_policy

    import torch

    torch.set_num_threads(1)  # one observation per control period: a second thread only adds latency spikes
    if args.driver == "ros2":
        from sim2real.hal.ros2 import require_rclpy

        require_rclpy()  # before the slow part: say at once when ROS 2 is not available
    config = resolve(args.launch) if args.launch else None
    policy, config = load_policy(args.policy, config)
    goals = [parse_goal(g) for g in args.goal or []] + (load_goals(args.goals_file) if args.goals_file else [])
    link = Link(args.driver, port=args.port, baud=args.baud, calibration=args.calibration,
                bus_watchdog_s=args.bus_watchdog, latency_ms=args.latency_ms, uri=args.uri, url=args.url,
                camera=args.camera, emulated_workspace=args.camera == "render")
    settings = RunSettings(args.episodes, args.steps, args.rate_hz, args.seed, args.priority, args.overrun_periods,
                           args.stale_periods, goals, args.geofence, args.tolerance,
                           args.approach_timeout)
    with build_stack(config, link, settings) as stack:  # an emulated workspace is closed on every way out
        log_path = _log_path(args)  # checked before anything connects to the robot
        stack.connect()
        result, problems = stack.run(policy, log_path, args.stop_file)
    if stack.kind == "multirotor":
        return _summarize(result, log_path, problems, lambda e: f", RMS after 1 s {e['rms_distance'] * 100:.1f} cm")
    return _summarize(result, log_path, problems)
