"""``sim2real deploy POLICY --launch LAUNCH --driver dynamixel --port /dev/ttyUSB0``: run a policy on hardware."""
from __future__ import annotations

import argparse
import contextlib
import os
import textwrap
import time
from typing import ContextManager, Iterator

from sim2real.arguments import nonnegative_float, output_file, positive_float, positive_int, seed
from sim2real.hal.drivers import DRIVERS as ARM_DRIVERS


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
    parser.add_argument("--driver", required=True, choices=(*ARM_DRIVERS, *QUAD_DRIVERS),
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
    parser.set_defaults(handler=run)


QUAD_DRIVERS = ("crazyflie", "mavlink")


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


def _watchdog_limits(args: argparse.Namespace, rate_hz: float) -> dict[str, float | None]:
    """LoopConfig's watchdog limits (s) from ``--overrun-periods`` and ``--stale-periods`` (None: LoopConfig's
    default; the flags' type refuses values that are not finite and positive)."""
    limits: dict[str, float | None] = {}
    for periods, field in ((args.overrun_periods, "overrun_after_s"), (args.stale_periods, "stale_after_s")):
        limits[field] = None if periods is None else periods / rate_hz
    return limits


@contextlib.contextmanager
def _disconnected_on_failure(robot, *user_errors: type[Exception]) -> Iterator[None]:
    """Connecting: any failure disconnects what was opened; ``user_errors`` (a bus, link or camera that does not
    answer) become one :class:`~sim2real.errors.UserError` line."""
    from sim2real.errors import UserError

    try:
        yield
    except BaseException as err:
        robot.disconnect()
        if isinstance(err, user_errors):
            raise UserError(str(err)) from None
        raise


def _log_path(args: argparse.Namespace) -> str:
    """``--log`` (checked when parsed), or ``runs/deploy-TIME/log.jsonl`` when it can be written: before
    anything connects to the robot."""
    from sim2real.arguments import check_writable

    if args.log:
        return args.log
    return check_writable(os.path.join("runs", f"deploy-{time.strftime('%Y%m%d-%H%M%S')}", "log.jsonl"),
                          "default --log", directory=False)


def _geofence(text: str | None, size: float):
    import numpy as np

    from sim2real.errors import UserError

    if text is None:
        return np.array([-1.5, -1.5, -0.1]) * size, np.array([1.5, 1.5, 2.0]) * size
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        values = np.zeros(0)
    if values.shape != (6,) or not np.all(np.isfinite(values)) or np.any(values[:3] >= values[3:]):
        raise UserError(f"--geofence {text}: six numbers x0,y0,z0,x1,y1,z1 (m) with each low below its high")
    return values[:3], values[3:]


def _check_flight_mode(driver: str, action_mode: str, policy: str) -> None:
    """A one-line error unless the flight ``driver`` can carry the policy's ``action_mode`` (before connecting)."""
    from sim2real.errors import UserError

    if driver == "crazyflie":
        from sim2real.hal.crazyflie import CrazyflieDriver as Driver
    else:
        from sim2real.hal.mavlink import MavlinkDriver as Driver
    if action_mode not in Driver.ACTION_MODES:
        raise UserError(f"--driver {driver} flies policies with env.control_mode {', '.join(Driver.ACTION_MODES)}; "
                        f"{policy} was trained with {action_mode}")


def run_multirotor(args: argparse.Namespace) -> int:
    """``deploy`` for a quadrotor policy through the Crazyflie (cflib) or MAVLink (pymavlink) driver."""
    from robots.quadrotor import get_quadrotor_spec
    from sim2real.deploy.loop import LoopConfig, run_connected
    from sim2real.deploy.multirotor import MultirotorDeploymentLoop
    from sim2real.policy_files import load_policy
    from sim2real.envs import control_modes
    from sim2real.errors import UserError
    from sim2real.hal.flight import LinkError
    from sim2real.hal.safety import MultirotorSafetyConfig, MultirotorSafetyLayer
    from sim2real.launch import resolve
    from sim2real.sim.quadrotor_physics import QuadPhysicsConfig
    from sim2real.tasks.quadrotor import QUAD_ENVS, make_quadrotor_task

    if args.driver == "crazyflie" and not args.uri:
        raise UserError("--uri is required for the crazyflie driver (e.g. udp://127.0.0.1:19850)")
    if args.driver == "mavlink" and not args.url:
        raise UserError("--url is required for the mavlink driver (e.g. udpout:127.0.0.1:14550)")
    config = resolve(args.launch) if args.launch else None
    policy, config = load_policy(args.policy, config)
    env_id = config["env"]["id"]
    if env_id not in QUAD_ENVS or config["env"]["obs_mode"] != "state":
        raise UserError(f"{env_id} ({config['env']['obs_mode']} observations) cannot fly through --driver "
                        f"{args.driver}: quadrotor tasks with state observations only")
    vehicle, task_name, _ = QUAD_ENVS[env_id]
    spec = get_quadrotor_spec(vehicle)
    action_mode = config["env"]["control_mode"] or control_modes(env_id)[0]
    if action_mode not in control_modes(env_id):
        raise UserError(f"env.control_mode {action_mode!r} is not a mode of {env_id} ({', '.join(control_modes(env_id))})")
    _check_flight_mode(args.driver, action_mode, args.policy)
    task = make_quadrotor_task(task_name, spec, action_mode, config["env"]["reward_type"])
    rate = args.rate_hz or QuadPhysicsConfig().control_hz
    if not 0 < rate <= 500:
        raise UserError(f"--rate-hz must be in (0, 500], got {rate}")
    low, high = _geofence(args.geofence, task.size)
    safety = MultirotorSafetyLayer(MultirotorSafetyConfig.from_spec(spec, low, high), spec.max_rpm)
    loop_config = LoopConfig(rate, args.episodes, args.steps or config["env"]["max_episode_steps"], seed=args.seed,
                             priority=args.priority, **_watchdog_limits(args, rate))
    log_path = _log_path(args)
    if args.driver == "crazyflie":
        from sim2real.hal.crazyflie import CrazyflieDriver
        from sim2real.hal.thrust_map import load_thrust_map

        thrust_map = load_thrust_map(args.calibration) if args.calibration else None
        robot = CrazyflieDriver(spec, args.uri, action_mode, thrust_map=thrust_map)
    else:
        from sim2real.hal.mavlink import MavlinkDriver

        robot = MavlinkDriver(spec, args.url)
    with _disconnected_on_failure(robot, LinkError):
        robot.connect()
    result, problems = run_connected(robot, log_path, args.stop_file, lambda log, estop: MultirotorDeploymentLoop(
        robot, task, policy, safety, log, loop_config, estop, tolerance=args.tolerance))
    return _summarize(result, log_path, problems, lambda e: f", RMS after 1 s {e['rms_distance'] * 100:.1f} cm")


def _camera(source: str, env_id: str, robot, scene):
    """``render``: the simulated camera of an emulated arm (``scene``: its workspace); anything else: OpenCV cameras
    at the policy's size, one source per view the policy was trained with (comma-separated, left to right)."""
    from sim2real.errors import UserError
    from sim2real.hal.camera import CameraRig, OpenCVCamera
    from sim2real.hal.rendered_camera import RenderedCamera, env_views

    views = env_views(env_id)  # what the policy saw in training: cameras, image size (pixels)
    if source == "render":
        return RenderedCamera(robot, scene, views)
    sources = [s.strip() for s in source.split(",")]
    if len(sources) != len(views) or not all(sources):
        raise UserError(f"--camera {source}: {env_id} sees {len(views)} view(s) side by side: give one OpenCV "
                        "source per view, comma-separated in the training order, or `render` on an emulated arm")
    cameras = [OpenCVCamera(int(s) if s.isdigit() else s, v.width, v.height) for s, v in zip(sources, views)]
    return cameras[0] if len(cameras) == 1 else CameraRig(cameras)


def _scene(args: argparse.Namespace, task) -> ContextManager:
    """The deployment's scene, as a context manager. With ``--camera render`` (an emulated arm) the emulated
    workspace, which simulates the task's objects around the measured arm; on hardware the lab scene, which tracks
    no objects (tasks with objects are refused in one line)."""
    if args.camera == "render":
        from sim2real.hal.emulated_workspace import EmulatedWorkspace

        return EmulatedWorkspace(task)
    from sim2real.hal.lab_scene import LabScene

    scene = LabScene()
    task.setup(scene)
    return contextlib.nullcontext(scene)


def run(args: argparse.Namespace) -> int:
    from sim2real.deploy.goals import GoalSource, check_goals, load_goals, parse_goal
    from sim2real.deploy.loop import DeploymentLoop, LoopConfig, run_connected
    from sim2real.policy_files import load_policy
    from sim2real.envs import ARM_ENVS, env_task
    from sim2real.errors import UserError
    from sim2real.hal.camera import CameraError
    from sim2real.hal.drivers import make_robot
    from sim2real.hal.safety import SafetyConfig, SafetyLayer
    from sim2real.hal.servo_bus import BusError
    from sim2real.launch import resolve
    from sim2real.tasks import make_controller

    import torch

    torch.set_num_threads(1)  # one observation per control period: a second thread only adds latency spikes
    if args.driver in QUAD_DRIVERS:
        return run_multirotor(args)
    if args.driver == "ros2":
        from sim2real.hal.ros2 import require_rclpy

        require_rclpy()  # before the slow part: say at once when ROS 2 is not available
    config = resolve(args.launch) if args.launch else None
    policy, config = load_policy(args.policy, config)
    env_id = config["env"]["id"]
    if env_id not in ARM_ENVS:
        raise UserError(f"{env_id} cannot be deployed through --driver {args.driver}: arm tasks only")
    if (config["env"]["obs_mode"] == "rgb") != bool(args.camera):
        raise UserError("--camera is required for camera policies (obs_mode rgb) and only for them: a device index, "
                        "path or URL, or `render` on an emulated arm")
    task = env_task(env_id, config["env"]["reward_type"])
    spec, task_name = task.spec, task.name
    base = task.layout.robot_base
    controller = make_controller(config["env"]["control_mode"], spec, task.uses_gripper, base)
    rate = args.rate_hz or spec.control_rate_hz
    if not 0 < rate <= 1000:
        raise UserError(f"--rate-hz must be in (0, 1000], got {rate}")
    safety_config = SafetyConfig.from_spec(spec, base)
    goals = [parse_goal(g) for g in args.goal or []] + (load_goals(args.goals_file) if args.goals_file else [])
    if goals and task_name != "reach":
        raise UserError(f"--goal/--goals-file: fixed goals are for reach; {task_name} places its object and goal "
                        "with the task's sampler (--seed)")
    check_goals(goals, safety_config.workspace_low, safety_config.workspace_high)
    loop_config = LoopConfig(rate, args.episodes, args.steps or config["env"]["max_episode_steps"], seed=args.seed,
                             priority=args.priority, **_watchdog_limits(args, rate))
    log_path = _log_path(args)
    robot = make_robot(args.driver, spec, base, args.port, args.baud, args.calibration, args.bus_watchdog,
                       args.latency_ms)
    with _scene(args, task) as scene:  # an emulated workspace is closed on every way out
        camera = _camera(args.camera, env_id, robot, scene) if args.camera else None
        with _disconnected_on_failure(robot, BusError, CameraError):
            robot.connect()
            if camera is not None:
                camera.connect()

        def build(log, estop):
            safety = SafetyLayer(safety_config, robot.model, 1.0 / rate)
            return DeploymentLoop(robot, task, controller, policy, scene, GoalSource(goals or None), safety, log,
                                  loop_config, estop, camera=camera)

        result, problems = run_connected(robot, log_path, args.stop_file, build,
                                         [camera.disconnect if camera is not None else None])
    return _summarize(result, log_path, problems)
