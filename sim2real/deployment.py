"""The one builder of a deployment stack: from a launch config and a robot link to the task, robot driver, scene,
camera, safety layer and rate loop. ``sim2real deploy`` and ``sim2real eval --conditions emulated`` both build
through :func:`build_stack`, so a deployment and an emulated evaluation run the same stack.

Arms (``--driver dynamixel | feetech | ros2``): the arm task of the env id, its controller, the arm safety layer,
a lab scene (or, with ``emulated_workspace``, an :class:`~sim2real.hal.emulated_workspace.EmulatedWorkspace` that
simulates the task's objects around the measured arm) and, for camera policies, a camera. Multirotors
(``--driver crazyflie | mavlink``): the quadrotor task of the env id (:mod:`sim2real.tasks.quadrotor`), the flight
driver and the geofenced multirotor safety layer. Every user mistake is one :class:`~sim2real.errors.UserError`
line, raised by :func:`build_stack` before anything connects.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from sim2real.agents import Policy
from sim2real.deploy.estop import EStop
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.loop import DeployResult, EpisodeRunner, LoopConfig, RateLoop, run_connected
from sim2real.deploy.multirotor import APPROACH_TIMEOUT_S
from sim2real.errors import UserError
from sim2real.hal.drivers import DRIVERS as ARM_DRIVERS
from sim2real.hal.drivers import FLIGHT_DRIVERS

MAX_ARM_RATE_HZ = 1000.0
MAX_FLIGHT_RATE_HZ = 500.0


@dataclass(frozen=True)
class Link:
    """How to reach the robot: the ``driver`` and its address (a servo bus ``port`` at ``baud`` with its
    ``calibration`` file, ``bus_watchdog_s`` and USB ``latency_ms``; a cflib ``uri``; a pymavlink ``url``), the
    ``camera`` of a camera policy (OpenCV sources, comma-separated, or ``render``) and whether the scene is an
    ``emulated_workspace`` (an emulated arm: objects simulated around the measured arm)."""

    driver: str
    port: str | None = None
    baud: int = 1_000_000
    calibration: str | None = None
    bus_watchdog_s: float = 0.1
    latency_ms: float = 16.0
    uri: str | None = None
    url: str | None = None
    camera: str | None = None
    emulated_workspace: bool = False


@dataclass(frozen=True)
class RunSettings:
    """What to run: ``episodes`` of ``steps`` control steps (None: the launch file's) at ``rate_hz`` (None: the
    robot's training rate), the goal sampler's ``seed``, the loop's ``priority``, watchdog limits in control periods
    (None: the loop's defaults), fixed reach ``goals`` (m, world), a multirotor's ``geofence`` (text
    ``x0,y0,z0,x1,y1,z1`` m; None: 1.5 m × vehicle size around the origin), episode success ``tolerance`` (m) and
    ``approach_timeout_s``, the time a multirotor's own position controller has to reach each episode's start (s)."""

    episodes: int = 1
    steps: int | None = None
    rate_hz: float | None = None
    seed: int = 0
    priority: str = "none"
    overrun_periods: float | None = None
    stale_periods: float | None = None
    goals: Sequence[np.ndarray] = ()
    geofence: str | None = None
    tolerance: float = 0.1
    approach_timeout_s: float = APPROACH_TIMEOUT_S

    def loop_config(self, rate_hz: float, default_steps: int) -> LoopConfig:
        limits = {field: None if periods is None else periods / rate_hz
                  for periods, field in ((self.overrun_periods, "overrun_after_s"),
                                         (self.stale_periods, "stale_after_s"))}
        return LoopConfig(rate_hz, self.episodes, self.steps or default_steps, seed=self.seed,
                          priority=self.priority, **limits)


class DeploymentStack:
    """A built, not yet connected deployment (``kind`` ``arm`` or ``multirotor``): ``robot``, ``task``, the episode
    runner's and the safety layer's factories, ``loop_config``, the policy's ``camera`` (camera policies) and
    ``closers`` (an emulated workspace's close). Use as a context manager (closes the scene), :meth:`connect`, then
    :meth:`run` (one deployment, then disconnect) or :meth:`loop` (several loops on one connection, e.g. one per
    evaluation trial, then :meth:`disconnect`)."""

    def __init__(self, kind: str, robot, task, make_runner: Callable[[], EpisodeRunner], make_safety: Callable[[], Any],
                 loop_config: LoopConfig, connect_errors: tuple[type[Exception], ...],
                 camera=None, closers: Sequence[Callable[[], None]] = ()) -> None:
        self.kind, self.robot, self.task, self.loop_config, self.camera = kind, robot, task, loop_config, camera
        self._make_runner, self._make_safety = make_runner, make_safety
        self._connect_errors, self._closers = connect_errors, list(closers)

    def connect(self) -> None:
        """Connect the robot (and the camera); any failure disconnects what was opened, and a link that does not
        answer (bus, radio, UDP, camera) is one :class:`UserError` line."""
        try:
            self.robot.connect()
            if self.camera is not None:
                self.camera.connect()
        except BaseException as err:
            self.robot.disconnect()
            if isinstance(err, self._connect_errors):
                raise UserError(str(err)) from None
            raise

    def loop(self, policy: Policy, log: DeploymentLog, estop: EStop | None = None,
             config: LoopConfig | None = None, **timing) -> RateLoop:
        """A rate loop on the connected robot with a fresh safety layer and episode runner (``config``: another
        loop config, e.g. a trial's seed; ``timing``: ``clock``/``sleep`` for tests)."""
        return RateLoop(self.robot, self._make_runner(), policy, self._make_safety(), log,
                        config or self.loop_config, estop, **timing)

    def run(self, policy: Policy, log_path: str, stop_file: str | None) -> tuple[DeployResult, list[str]]:
        """One deployment on the connected robot (:func:`~sim2real.deploy.loop.run_connected`): the e-stop and the
        log around the loop, then the camera and the robot are released."""
        return run_connected(self.robot, log_path, stop_file, lambda log, estop: self.loop(policy, log, estop),
                             [self.camera.disconnect if self.camera is not None else None])

    def disconnect(self) -> list[str]:
        """Release the camera and the robot (after :meth:`loop` runs); what failed, one line each."""
        from sim2real.deploy.faults import release

        return release(self.camera.disconnect if self.camera is not None else None, self.robot.disconnect)

    def close(self) -> None:
        for close in self._closers:
            close()

    def __enter__(self) -> DeploymentStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_stack(config: dict[str, Any], link: Link, settings: RunSettings = RunSettings()) -> DeploymentStack:
    """The deployment stack of a policy trained with launch ``config`` on the robot behind ``link``."""
    from sim2real.tasks.quadrotor import QUAD_ENVS

    env_id = config["env"]["id"]
    if link.driver in FLIGHT_DRIVERS:
        if env_id not in QUAD_ENVS or config["env"]["obs_mode"] != "state":
            raise UserError(f"{env_id} ({config['env']['obs_mode']} observations) cannot fly through --driver "
                            f"{link.driver}: quadrotor tasks with state observations only")
        return _flight_stack(config, link, settings)
    if link.driver not in ARM_DRIVERS:
        raise UserError(f"--driver must be one of {', '.join(ARM_DRIVERS + FLIGHT_DRIVERS)}, got {link.driver!r}")
    return _arm_stack(config, link, settings)


def _rate(settings: RunSettings, default: float, most: float) -> float:
    rate = settings.rate_hz or default
    if not 0 < rate <= most:
        raise UserError(f"--rate-hz must be in (0, {most:g}], got {rate}")
    return rate


# --- arms -----------------------------------------------------------------------------------------------------------
def _arm_stack(config: dict[str, Any], link: Link, settings: RunSettings) -> DeploymentStack:
    from sim2real.deploy.arm import ArmEpisodes
    from sim2real.deploy.goals import GoalSource, check_goals
    from sim2real.envs import ARM_ENVS, env_task
    from sim2real.hal.camera import CameraError
    from sim2real.hal.drivers import make_robot
    from sim2real.hal.safety import SafetyConfig, SafetyLayer
    from sim2real.hal.servo_bus import BusError
    from sim2real.tasks import make_controller

    env_id = config["env"]["id"]
    if env_id not in ARM_ENVS:
        raise UserError(f"{env_id} cannot be deployed through --driver {link.driver}: arm tasks only")
    if (config["env"]["obs_mode"] == "rgb") != bool(link.camera):
        raise UserError("--camera is required for camera policies (obs_mode rgb) and only for them: a device index, "
                        "path or URL, or `render` on an emulated arm")
    task = env_task(env_id, config["env"]["reward_type"])
    spec, base = task.spec, task.layout.robot_base
    controller = make_controller(config["env"]["control_mode"], spec, task.uses_gripper, base)
    rate = _rate(settings, spec.control_rate_hz, MAX_ARM_RATE_HZ)
    safety_config = SafetyConfig.from_spec(spec, base)
    goals = list(settings.goals)
    if goals and task.name != "reach":
        raise UserError(f"--goal/--goals-file: fixed goals are for reach; {task.name} places its object and goal "
                        "with the task's sampler (--seed)")
    check_goals(goals, safety_config.workspace_low, safety_config.workspace_high)
    loop_config = settings.loop_config(rate, config["env"]["max_episode_steps"])
    robot = make_robot(link.driver, spec, base, link.port, link.baud, link.calibration, link.bus_watchdog_s,
                       link.latency_ms)
    with contextlib.ExitStack() as undo:  # a camera refused after the workspace opened closes the workspace
        scene, closers = _scene(task, link.emulated_workspace)
        for close in closers:
            undo.callback(close)
        camera = _camera(link.camera, env_id, robot, scene) if link.camera else None
        undo.pop_all()
    return DeploymentStack(
        "arm", robot, task, lambda: ArmEpisodes(task, controller, scene, GoalSource(goals or None), camera),
        lambda: SafetyLayer(safety_config, robot.model, 1.0 / rate), loop_config, (BusError, CameraError), camera,
        closers)


def _scene(task, emulated_workspace: bool):
    """(scene, its closers): an emulated workspace, which simulates the task's objects around the measured arm, or
    the lab scene, which tracks no objects (tasks with objects are refused in one line)."""
    if emulated_workspace:
        from sim2real.hal.emulated_workspace import EmulatedWorkspace

        workspace = EmulatedWorkspace(task)
        return workspace, [workspace.close]
    from sim2real.hal.lab_scene import LabScene

    scene = LabScene()
    task.setup(scene)
    return scene, []


def _camera(source: str, env_id: str, robot, scene):
    """``render``: the simulated camera of an emulated arm (``scene``: its workspace); anything else: OpenCV cameras
    at the policy's size, one source per view the policy was trained with (comma-separated, left to right)."""
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


# --- multirotors ----------------------------------------------------------------------------------------------------
def _flight_stack(config: dict[str, Any], link: Link, settings: RunSettings) -> DeploymentStack:
    from robots.quadrotor import get_quadrotor_spec
    from sim2real.deploy.multirotor import MultirotorEpisodes
    from sim2real.hal.flight import LinkError
    from sim2real.hal.safety import MultirotorSafetyConfig, MultirotorSafetyLayer
    from sim2real.sim.quadrotor_physics import QuadPhysicsConfig
    from sim2real.tasks.quadrotor import ACTION_MODES, QUAD_ENVS, make_quadrotor_task

    if link.driver == "crazyflie" and not link.uri:
        raise UserError("--uri is required for the crazyflie driver (e.g. udp://127.0.0.1:19850)")
    if link.driver == "mavlink" and not link.url:
        raise UserError("--url is required for the mavlink driver (e.g. udpout:127.0.0.1:14550)")
    env_id = config["env"]["id"]
    vehicle, task_name, _ = QUAD_ENVS[env_id]
    spec = get_quadrotor_spec(vehicle)
    action_mode = config["env"]["control_mode"] or "ctbr"
    if action_mode not in ACTION_MODES:
        raise UserError(f"env.control_mode {action_mode!r} is not a mode of {env_id} ({', '.join(ACTION_MODES)})")
    driver_class = _flight_driver(link.driver)
    if action_mode not in driver_class.ACTION_MODES:
        raise UserError(f"--driver {link.driver} flies policies with env.control_mode "
                        f"{', '.join(driver_class.ACTION_MODES)}; this policy was trained with {action_mode}")
    task = make_quadrotor_task(task_name, spec, action_mode, config["env"]["reward_type"])
    rate = _rate(settings, QuadPhysicsConfig().control_hz, MAX_FLIGHT_RATE_HZ)  # the training control rate
    low, high = geofence(settings.geofence, task.size)
    safety_config = MultirotorSafetyConfig.from_spec(spec, low, high)
    loop_config = settings.loop_config(rate, config["env"]["max_episode_steps"])
    if link.driver == "crazyflie":
        from sim2real.hal.thrust_map import load_thrust_map

        thrust_map = load_thrust_map(link.calibration) if link.calibration else None
        robot = driver_class(spec, link.uri, action_mode, thrust_map=thrust_map)
    else:
        robot = driver_class(spec, link.url)
    episodes = lambda: MultirotorEpisodes(task, approach_timeout_s=settings.approach_timeout_s,  # noqa: E731
                                          tolerance=settings.tolerance)
    return DeploymentStack("multirotor", robot, task, episodes,
                           lambda: MultirotorSafetyLayer(safety_config, spec.max_rpm), loop_config, (LinkError,))


def _flight_driver(driver: str):
    if driver == "crazyflie":
        from sim2real.hal.crazyflie import CrazyflieDriver

        return CrazyflieDriver
    from sim2real.hal.mavlink import MavlinkDriver

    return MavlinkDriver


def geofence(text: str | None, size: float) -> tuple[np.ndarray, np.ndarray]:
    """The geofence box (low, high corners; m, world ENU) from ``x0,y0,z0,x1,y1,z1``, or the default: 1.5 m × the
    vehicle ``size`` around the origin, -0.1 to 2 m × size high."""
    if text is None:
        return np.array([-1.5, -1.5, -0.1]) * size, np.array([1.5, 1.5, 2.0]) * size
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        values = np.zeros(0)
    if values.shape != (6,) or not np.all(np.isfinite(values)) or np.any(values[:3] >= values[3:]):
        raise UserError(f"--geofence {text}: six numbers x0,y0,z0,x1,y1,z1 (m) with each low below its high")
    return values[:3], values[3:]


@contextlib.contextmanager
def connected(stack: DeploymentStack) -> Iterator[DeploymentStack]:
    """``stack`` connected for several loops, then released (the camera and the robot)."""
    stack.connect()
    try:
        yield stack
    finally:
        stack.disconnect()
