"""The deployment loop: fixed rate on a monotonic clock, task-built observations, the safety layer before every
command, a watchdog, an e-stop, and a log of everything.

Each control step: wait for the step's deadline (``start + k · period``, so timing errors never accumulate),
read the state, trip the watchdog if the state is older than ``stale_after_s`` or the step started later than
``overrun_after_s`` past its deadline, build the observation with the task, act, filter, send, log.
With a :class:`~sim2real.hal.camera.Camera` (camera policies: vision pipelines, pixel policies) the observation is
``{"image": camera frame, "proprio": the task's robot observation}``, as the simulator's camera envs give it; a
frame older than ``stale_after_s`` trips the watchdog, and the policy's perceived goal is logged.
A trip (watchdog, e-stop, lost link, a non-finite action) calls ``robot.safe_stop()`` at once and ends the
deployment; so does any exception raised inside the loop (policy, task, driver, camera, log): :meth:`run` turns it
into a stop of kind ``error`` whose reason names the exception and where it was raised. If the safe stop itself
fails, that is recorded too (``safe_stop_error``); the summary record is written whenever the log still can be.
Before the clock starts the policy acts once on a real observation (warm-up: a torch policy's first call is slow,
and a policy that raises or returns NaN is stopped before the robot moves).
Before each episode the arm is driven home through the same safety layer, then the task places its objects and goal.
Each action's reward (the task's, from the state the next step reads, as the simulator rewards it) and the episode's
end (truncated, after its last step) go to ``policy.observe``: a recurrent (RL²) policy keeps its memory across the
episodes of a deployment (one trial) and gets the inputs it was trained with.
Every state read is handed to the scene (:meth:`~sim2real.hal.scene.Scene.track`), so an emulated workspace moves
its objects with the arm before the achieved goal, success and final distance read them.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from sim2real.deploy.estop import EStop
from sim2real.deploy.faults import describe, fault_reason, release
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog
from sim2real.agents import Policy
from sim2real.deploy.timing import OVERRUN_PERIODS, STALE_PERIODS, raised_priority
from sim2real.hal.camera import Camera, CameraError
from sim2real.hal.robot import Robot
from sim2real.hal.safety import SafetyLayer
from sim2real.hal.scene import Scene
from sim2real.hal.servo_bus import BusError
from sim2real.hal.types import JointCommand, RobotState
from sim2real.tasks.base import ArmTask
from sim2real.tasks.control import Controller


@dataclass(frozen=True)
class LoopConfig:
    """Rates in Hz, times in s, tolerances in rad."""

    rate_hz: float
    episodes: int
    steps_per_episode: int
    stale_after_s: float | None = None  # default: STALE_PERIODS
    overrun_after_s: float | None = None  # default: OVERRUN_PERIODS
    home_steps: int = 100
    home_tolerance: float = 0.05
    seed: int = 0
    priority: str = "none"  # the loop thread's priority while running, where permitted (sim2real.deploy.timing)

    @property
    def period(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def stale_limit(self) -> float:
        return STALE_PERIODS * self.period if self.stale_after_s is None else self.stale_after_s

    @property
    def overrun_limit(self) -> float:
        return OVERRUN_PERIODS * self.period if self.overrun_after_s is None else self.overrun_after_s


class Trip(Exception):
    """Something requires an immediate safe stop; ``kind``: watchdog, estop, link, home, envelope, policy (a
    non-finite action) or error (an exception inside the loop; ``detail``: its traceback)."""

    def __init__(self, kind: str, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.detail = kind, reason, detail

    @classmethod
    def from_exception(cls, err: BaseException) -> "Trip":
        return cls("error", *fault_reason(err))


@dataclass
class DeployResult:
    episodes: list[dict] = field(default_factory=list)
    stopped: dict | None = None  # the trip that ended the run, if any
    log_error: str | None = None  # why the log could not take the stop or summary records, if it could not

    @property
    def success_rate(self) -> float:
        return float(np.mean([e["success"] for e in self.episodes])) if self.episodes else 0.0


def halt(robot: Robot) -> dict:
    """``robot.safe_stop()``; ``{"safe_stop_error": None}``, or what failed (a dead driver: recorded, never raised,
    so the command still disconnects what it can)."""
    try:
        robot.safe_stop()
    except Exception as err:
        return {"safe_stop_error": describe(err)}
    return {"safe_stop_error": None}


class DeploymentLoop:
    """Runs ``policy`` on ``robot`` for ``task``; the robot must be connected."""

    def __init__(self, robot: Robot, task: ArmTask, controller: Controller, policy: Policy, scene: Scene,
                 goals: GoalSource, safety: SafetyLayer, log: DeploymentLog, config: LoopConfig,
                 estop: EStop | None = None, clock: Callable[[], float] = time.monotonic,
                 camera: Camera | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.robot, self.task, self.controller, self.policy = robot, task, controller, policy
        self.scene, self.goals, self.safety, self.log, self.config = scene, goals, safety, log, config
        self.estop, self.clock, self.camera, self.sleep = estop, clock, camera, sleep
        self.log_error: str | None = None
        self._priority = "unchanged"
        self._start = 0.0
        self._tick = 0
        self._logged_interventions = 0

    # --- timing ----------------------------------------------------------------------------------------------
    def _wait(self) -> tuple[float, float]:
        """Sleep until this tick's deadline; returns (deadline, lateness) in s."""
        deadline = self._start + self._tick * self.config.period
        self._tick += 1
        remaining = deadline - self.clock()
        if remaining > 0.0015:
            self.sleep(remaining - 0.001)
        while self.clock() < deadline:  # the last millisecond is spun for low jitter
            pass
        return deadline, self.clock() - deadline

    def _read(self, lateness: float) -> RobotState:
        if lateness > self.config.overrun_limit:
            raise Trip("watchdog", f"loop overrun: step started {lateness * 1e3:.1f} ms late")
        try:
            state = self.robot.read_state()
        except (BusError, OSError) as err:
            raise Trip("link", f"read failed: {err}") from None
        age = self.clock() - state.timestamp
        if age > self.config.stale_limit:
            raise Trip("watchdog", f"stale state: {age * 1e3:.1f} ms old")
        if self.scene is not None:  # None: a loop without a task scene (multirotors)
            self.scene.track(state)  # e.g. an emulated workspace moves what the arm pushed
        return state

    def _observe(self, state: RobotState, goal: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """(policy observation, facts to log): the task's goal observation, or camera frame + proprioception."""
        if self.camera is None:
            return self.task.goal_observation(state, self.scene, goal), {}
        try:
            frame = self.camera.read_frame()
        except CameraError as err:
            raise Trip("link", f"camera: {err}") from None
        age = self.clock() - frame.timestamp
        if age > self.config.stale_limit:
            raise Trip("watchdog", f"stale image: {age * 1e3:.1f} ms old")
        proprio = self.task.robot_observation(state).astype(np.float32)
        return {"image": frame.image, "proprio": proprio}, {"image_age": age, "image_mean": float(frame.image.mean())}

    def _policy_action(self, obs, step: int | None) -> np.ndarray:
        """The policy's action; a non-finite one is a trip (it never reaches the robot, and a policy that produced
        one is not trusted with the next step). ``step`` None: the warm-up."""
        action = np.asarray(self.policy.act(obs), dtype=float)
        if not np.all(np.isfinite(action)):
            where = "at the warm-up call" if step is None else f"at step {step}"
            raise Trip("policy", f"non-finite action {np.round(action, 3).tolist()} {where}")
        return action

    def _act(self, obs, step: int) -> np.ndarray:
        """The policy's action through the safety layer's action check (clipped to [-1, 1], logged)."""
        return self.safety.check_action(self._policy_action(obs, step), step)

    def _warm_up(self) -> None:
        """One policy call on a real observation before the clock starts (untimed: a torch policy's first call is
        slow), then a fresh trial (recurrent state then carries over between the episodes)."""
        self._policy_action(self._warm_up_observation(self._read(0.0)), None)
        self.policy.reset_trial()

    def _warm_up_observation(self, state: RobotState):
        """The observation of the warm-up call (goal: the origin; nothing acts on it)."""
        return self._observe(state, np.zeros(3))[0]

    def _send(self, command: JointCommand, state: RobotState, step: int) -> JointCommand:
        safe = self.safety.filter(command, state, step)
        try:
            return self.robot.send_command(safe)
        except (BusError, OSError) as err:
            raise Trip("link", f"write failed: {err}") from None

    def _interventions(self) -> list[dict]:
        new = self.safety.interventions[self._logged_interventions:]
        self._logged_interventions = len(self.safety.interventions)
        return [i.as_dict() for i in new]

    def _check_estop(self) -> None:
        reason = self.estop.poll() if self.estop is not None else None
        if reason is not None:
            raise Trip("estop", reason)

    # --- phases ----------------------------------------------------------------------------------------------
    def _go_home(self, episode: int) -> None:
        home = np.asarray(self.task.spec.home, dtype=float)
        for step in range(self.config.home_steps):
            deadline, lateness = self._wait()
            state = self._read(lateness)
            if np.max(np.abs(state.positions - home)) < self.config.home_tolerance:
                return
            if step == self.config.home_steps - 1:
                raise Trip("home", f"home pose not reached in {step + 1} steps: joints at "
                                   f"{np.round(state.positions, 2).tolist()} rad")
            applied = self._send(JointCommand(home.copy()), state, -1)
            self.log.write("step", phase="home", episode=episode, t=deadline - self._start, late=lateness,
                           positions=state.positions, command=applied.positions,
                           interventions=self._interventions())
            self._check_estop()

    def _episode(self, episode: int, rng: np.random.Generator) -> dict:
        self._go_home(episode)  # first: the way home must not sweep the objects the task is about to place
        goal = self.goals.next(episode, self.task, self.robot, self.scene, rng)
        self.log.write("episode_start", episode=episode, goal=goal)
        distances, localization = [], []
        for step in range(self.config.steps_per_episode):
            deadline, lateness = self._wait()
            state = self._read(lateness)
            achieved = self.task.achieved_goal(state, self.scene)
            if step > 0:  # what the previous action earned, measured now (as the simulator rewards it)
                self.policy.observe(float(self.task.compute_reward(achieved, goal)), False, False)
            obs, seen = self._observe(state, goal)
            started = self.clock()
            action = self._act(obs, step)
            estimate = self.policy.goal_estimate()
            if estimate is not None:
                seen["goal_estimate"] = np.asarray(estimate, dtype=float)
                localization.append(float(np.linalg.norm(seen["goal_estimate"] - goal)))
                seen["localization_error"] = localization[-1]
            command = self.controller.to_command(action, state, self.robot)
            applied = self._send(command, state, step)
            compute = self.clock() - started
            distance = float(np.linalg.norm(achieved - goal))
            distances.append(distance)
            self.log.write("step", phase="policy", episode=episode, step=step, t=deadline - self._start,
                           late=lateness, compute=compute, state_age=started - state.timestamp,
                           positions=state.positions, velocities=state.velocities, ee=state.ee_position,
                           action=action, command=command.positions, applied=applied.positions,
                           distance=distance, interventions=self._interventions(), **seen)
            self._check_estop()
        final = self._read(self._wait()[1])  # one period later: where the last command took the arm
        achieved = self.task.achieved_goal(final, self.scene)
        # the last action's reward; the episode ends by its time limit, as a training episode is truncated
        self.policy.observe(float(self.task.compute_reward(achieved, goal)), False, True)
        distance = float(np.linalg.norm(achieved - goal))
        record = {"episode": episode, "goal": goal.tolist(), "final_distance": distance,
                  "min_distance": min(distances + [distance]),
                  "success": bool(self.task.is_success(achieved, goal))}
        if localization:
            record["localization_error"] = float(np.mean(localization))
        self.log.write("episode", **record)
        return record

    # --- the way out ------------------------------------------------------------------------------------------
    def _halt(self) -> dict:
        """The robot's safe stop (an arm holds its measured pose); facts for the stop record. Never raises."""
        return halt(self.robot)

    def _stop(self, trip: Trip) -> dict:
        """Safe stop at once, then the event record naming the cause."""
        fired = self.clock()
        facts = self._halt()
        record = {"kind": trip.kind, "reason": trip.reason, "t": fired - self._start,
                  "stop_latency": self.clock() - fired, **facts}
        if trip.detail is not None:
            record["traceback"] = trip.detail
        self._record("event", **record)
        return record

    def _record(self, record_type: str, **fields) -> None:
        """A record written on the way out: a log that fails now is noted (``log_error``) and told on stderr,
        never raised, so a broken log cannot keep the robot from stopping or the summary from being printed."""
        try:
            self.log.write(record_type, **fields)
        except Exception as err:
            if self.log_error is None:
                self.log_error = describe(err)
                print(f"deployment log: could not write the {record_type} record: {self.log_error}", file=sys.stderr)

    def _meta(self) -> dict:
        """The log's first record."""
        return dict(rate_hz=self.config.rate_hz, period=self.config.period,
                    stale_after_s=self.config.stale_limit, overrun_after_s=self.config.overrun_limit,
                    joints=list(self.task.spec.joint_names), lower=self.safety.config.lower,
                    upper=self.safety.config.upper, task=self.task.name,
                    distance_threshold=self.task.distance_threshold,
                    camera=None if self.camera is None else [self.camera.height, self.camera.width],
                    priority=self._priority)

    def _body(self, result: DeployResult) -> None:
        """Everything between connect and the summary: meta record, warm-up, the episodes (appended to
        ``result``); multirotors arm before the clock starts and land after the last episode."""
        self.log.write("meta", **self._meta())
        self._warm_up()
        rng = np.random.default_rng(self.config.seed)
        self._before_start()
        self._start, self._tick = self.clock(), 0
        for episode in range(self.config.episodes):
            result.episodes.append(self._episode(episode, rng))
        self._after_episodes(result)

    def _before_start(self) -> None:
        """Hook: what a robot does once before the clock starts (nothing for an arm)."""

    def _after_episodes(self, result: DeployResult) -> None:
        """Hook: what a robot does after the last episode (an arm holds its last goal)."""

    def run(self) -> DeployResult:
        """All episodes, or until a trip or an exception, either of which ends in the safe stop; always ends with
        the log's summary record. Exceptions are not raised (the stop record has them), except those that are
        not errors (KeyboardInterrupt, SystemExit), which propagate after the safe stop and the summary."""
        result = DeployResult()
        self._start, self._tick = self.clock(), 0
        with raised_priority(self.config.priority) as self._priority:
            try:
                self._body(result)
            except Trip as trip:
                result.stopped = self._stop(trip)
            except BaseException as err:  # the one guard: policy, task, driver, camera or log, the robot stops
                result.stopped = self._stop(Trip.from_exception(err))
                if not isinstance(err, Exception):
                    self._summarize(result)
                    raise
            self._summarize(result)
        return result

    def _summarize(self, result: DeployResult) -> None:
        self._record("summary", episodes=len(result.episodes), success_rate=result.success_rate,
                     stopped=result.stopped, interventions=len(self.safety.interventions))
        result.log_error = self.log_error


def run_connected(robot: Robot, log_path: str, stop_file: str | None,
                  build: Callable[[DeploymentLog, EStop], DeploymentLoop],
                  devices: Sequence[Callable[[], None] | None] = ()) -> tuple[DeployResult, list[str]]:
    """Open the log and the e-stop, build the loop with ``build(log, estop)`` and run it on the connected ``robot``;
    then close the log, release ``devices`` (e.g. a camera's disconnect) and disconnect the robot, each even when
    another fails. A failure before the loop's own guard takes over (the log cannot be opened, the safety layer,
    e-stop or loop cannot be built) still ends in the robot's safe stop, as a stop of kind ``error`` (told on
    stderr when the log is not open). Returns the result and what failed on the way out, one line each."""
    log: DeploymentLog | None = None
    try:
        log = DeploymentLog(log_path)
        with EStop(stop_file) as estop:
            result = build(log, estop).run()
    except Exception as err:
        trip = Trip.from_exception(err)
        fired = time.monotonic()
        facts = halt(robot)
        result = DeployResult(stopped={"kind": trip.kind, "reason": trip.reason, "t": 0.0,
                                       "stop_latency": time.monotonic() - fired, **facts})
        print(f"deployment could not start: {trip.reason}", file=sys.stderr)
    finally:
        problems = release(log.close if log is not None else None, *devices, robot.disconnect)
    return result, problems
