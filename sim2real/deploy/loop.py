"""The deployment rate loop shared by every vehicle: fixed rate on a monotonic clock, the safety layer before every
command, a watchdog, an e-stop, stop reasons and a log of everything. What a vehicle does within it (its episodes,
observations, homing or approach, its safe stop) is an :class:`EpisodeRunner`: arms
(:class:`sim2real.deploy.arm.ArmEpisodes`) and multirotors (:class:`sim2real.deploy.multirotor.MultirotorEpisodes`).

Each control step: wait for the step's deadline (``start + k · period``, so timing errors never accumulate; the
clock and sleep are injectable, so the timing runs on a fake clock in tests), read the state, trip the watchdog if
the state is older than ``stale_after_s`` or the step started later than ``overrun_after_s`` past its deadline, hand
the state to the runner (an emulated workspace tracks it, a multirotor checks its flight envelope), let the runner
build the observation, act, filter, send and log.
A trip (watchdog, servos whose bus watchdog expired, e-stop, lost link, a non-finite action, the flight envelope,
home or start not reached) calls the runner's safe stop (arms hold, multirotors land) at once and ends the
deployment; so does any exception raised inside the loop (policy, task, driver, camera, log): :meth:`RateLoop.run`
turns it into a stop of kind ``error`` whose reason names the exception and where it was raised. If the safe stop itself fails, that is recorded too
(``safe_stop_error``); the summary record is written whenever the log still can be.
Before the clock starts the policy acts once on a real observation (warm-up: a torch policy's first call is slow,
and a policy that raises or returns NaN is stopped before the robot moves), then starts a fresh trial: each action's
reward (the task's, from the state the next step reads, as the simulator rewards it) and the episode's end
(truncated, after its last step) go to ``policy.observe``, so a recurrent (RL²) policy keeps its memory across the
episodes of a deployment (one trial) and gets the inputs it was trained with.
"""
from __future__ import annotations

import abc
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from sim2real.agents import Policy
from sim2real.deploy.estop import EStop
from sim2real.deploy.faults import describe, fault_reason, release
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.timing import OVERRUN_PERIODS, STALE_PERIODS, raised_priority
from sim2real.hal.robot import Robot
from sim2real.hal.safety import SafetyLayer
from sim2real.hal.servo_bus import BusError, ServosStopped


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
    """Something requires an immediate safe stop; ``kind``: watchdog (the loop's, or the servos' bus watchdog),
    estop, link, home, envelope, policy (a non-finite action) or error (an exception inside the loop; ``detail``:
    its traceback)."""

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


class EpisodeRunner(abc.ABC):
    """What one kind of vehicle does inside the rate loop; every method gets the loop (its clock, reads, sends,
    policy and log) as ``loop``."""

    @abc.abstractmethod
    def meta(self, loop: RateLoop) -> dict:
        """The vehicle's part of the log's first record."""

    def track(self, loop: RateLoop, state) -> None:
        """See every state the loop reads (before anything acts on it); raise :class:`Trip` to stop."""

    @abc.abstractmethod
    def warm_up_observation(self, loop: RateLoop, state):
        """The observation of the warm-up call (nothing acts on it)."""

    def before_start(self, loop: RateLoop) -> None:
        """Once before the clock starts (a multirotor arms)."""

    @abc.abstractmethod
    def episode(self, loop: RateLoop, episode: int, rng: np.random.Generator) -> dict:
        """One episode at the loop's rate; returns its ``episode`` record (``success``, ``final_distance``, ...)."""

    def after_episodes(self, loop: RateLoop, result: DeployResult) -> None:
        """After the last episode (a multirotor lands)."""

    def halt(self, loop: RateLoop) -> dict:
        """The safe stop; facts for the stop record. Never raises."""
        return halt(loop.robot)


class RateLoop:
    """Runs ``policy`` on the connected ``robot`` for ``config.episodes`` episodes of ``runner``."""

    def __init__(self, robot: Robot, runner: EpisodeRunner, policy: Policy, safety: SafetyLayer, log: DeploymentLog,
                 config: LoopConfig, estop: EStop | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.robot, self.runner, self.policy, self.safety = robot, runner, policy, safety
        self.log, self.config, self.estop, self.clock, self.sleep = log, config, estop, clock, sleep
        self.log_error: str | None = None
        self._priority = "unchanged"
        self._start = 0.0
        self._tick = 0
        self._logged_interventions = 0

    # --- services the runners use --------------------------------------------------------------------------
    def wait(self) -> tuple[float, float]:
        """Sleep until this tick's deadline; returns (deadline, lateness) in s."""
        deadline = self._start + self._tick * self.config.period
        self._tick += 1
        remaining = deadline - self.clock()
        if remaining > 0.0015:
            self.sleep(remaining - 0.001)
        while self.clock() < deadline:  # the last millisecond is spun for low jitter
            pass
        return deadline, self.clock() - deadline

    def elapsed(self, deadline: float) -> float:
        """Seconds from the start of the clock to ``deadline`` (the log's ``t``)."""
        return deadline - self._start

    def read(self, lateness: float):
        """The robot's state; trips the watchdog (step started late, state too old) or on a lost link; the runner
        sees the state before it is returned."""
        if lateness > self.config.overrun_limit:
            raise Trip("watchdog", f"loop overrun: step started {lateness * 1e3:.1f} ms late")
        try:
            state = self.robot.read_state()
        except ServosStopped as err:
            raise Trip("watchdog", f"servos stopped: {err}") from None
        except (BusError, OSError) as err:
            raise Trip("link", f"read failed: {err}") from None
        age = self.clock() - state.timestamp
        if age > self.config.stale_limit:
            raise Trip("watchdog", f"stale state: {age * 1e3:.1f} ms old")
        self.runner.track(self, state)
        return state

    def policy_action(self, obs, step: int | None) -> np.ndarray:
        """The policy's action; a non-finite one is a trip (it never reaches the robot, and a policy that produced
        one is not trusted with the next step). ``step`` None: the warm-up."""
        action = np.asarray(self.policy.act(obs), dtype=float)
        if not np.all(np.isfinite(action)):
            where = "at the warm-up call" if step is None else f"at step {step}"
            raise Trip("policy", f"non-finite action {np.round(action, 3).tolist()} {where}")
        return action

    def act(self, obs, step: int) -> np.ndarray:
        """The policy's action through the safety layer's action check (clipped to [-1, 1], logged)."""
        return self.safety.check_action(self.policy_action(obs, step), step)

    def send(self, command, state, step: int):
        """``command`` through the safety layer to the robot; returns what was applied (a failed write trips)."""
        safe = self.safety.filter(command, state, step)
        try:
            return self.robot.send_command(safe)
        except ServosStopped as err:
            raise Trip("watchdog", f"servos stopped: {err}") from None
        except (BusError, OSError) as err:
            raise Trip("link", f"write failed: {err}") from None

    def interventions(self) -> list[dict]:
        """The safety interventions since the last call (for the step record)."""
        new = self.safety.interventions[self._logged_interventions:]
        self._logged_interventions = len(self.safety.interventions)
        return [i.as_dict() for i in new]

    def check_estop(self) -> None:
        reason = self.estop.poll() if self.estop is not None else None
        if reason is not None:
            raise Trip("estop", reason)

    # --- the run ---------------------------------------------------------------------------------------------
    def _warm_up(self) -> None:
        """One policy call on a real observation before the clock starts (untimed: a torch policy's first call is
        slow), then a fresh trial (recurrent state then carries over between the episodes)."""
        self.policy_action(self.runner.warm_up_observation(self, self.read(0.0)), None)
        self.policy.reset_trial()

    def _stop(self, trip: Trip) -> dict:
        """Safe stop at once, then the event record naming the cause."""
        fired = self.clock()
        facts = self.runner.halt(self)
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
        """The log's first record: the vehicle's facts and the loop's timing."""
        return dict(**self.runner.meta(self), rate_hz=self.config.rate_hz, period=self.config.period,
                    stale_after_s=self.config.stale_limit, overrun_after_s=self.config.overrun_limit,
                    priority=self._priority)

    def _body(self, result: DeployResult) -> None:
        """Everything between connect and the summary: meta record, warm-up, the episodes (appended to
        ``result``) between the runner's before-start and after-episodes steps."""
        self.log.write("meta", **self._meta())
        self._warm_up()
        rng = np.random.default_rng(self.config.seed)
        self.runner.before_start(self)
        self._start, self._tick = self.clock(), 0
        for episode in range(self.config.episodes):
            result.episodes.append(self.runner.episode(self, episode, rng))
        self.runner.after_episodes(self, result)

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
                  build: Callable[[DeploymentLog, EStop], RateLoop],
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
