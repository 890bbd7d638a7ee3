"""A multirotor's episodes inside the rate loop (:mod:`sim2real.deploy.loop`): arm, fly to the episode's start
position, run the policy, land.

Observations, setpoints and rewards come from the task the simulator runs, unchanged
(:class:`sim2real.tasks.quadrotor.QuadrotorTask`: ``reference``, ``observe``, ``action_to_setpoint``, ``reward``): each
action's reward (measured at the next step's state) and the episode's end (truncated after its last step) go to
``policy.observe``, so a recurrent (RL²) policy gets the inputs it was trained with. Every setpoint passes the
:class:`MultirotorSafetyLayer`; a measured state outside the geofence or tilted past its limit trips the safe stop
(land), as does the vehicle's own crash report (``FlightVehicle.crash``: an alarm in flight, or its motors stopped
in the air; a trip of kind ``envelope``). The land record says ``took_off`` (a measured height over
``TAKEOFF_RISE_M`` above the lowest), ``landed`` (took off and came down with no crash report: a vehicle that never
lifted is reported as not having taken off, not as landed) and ``crash`` (the report, None without one). Frames:
world ENU, body FLU; units SI.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from sim2real.agents import Policy
from sim2real.deploy.estop import EStop
from sim2real.deploy.faults import describe
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.loop import DeployResult, EpisodeRunner, LoopConfig, RateLoop, Trip
from sim2real.hal.flight import FlightVehicle
from sim2real.hal.multirotor import MultirotorState, Position
from sim2real.hal.safety import MultirotorSafetyLayer
from sim2real.tasks.quadrotor import QuadrotorTask, Reference, position_error

TAKEOFF_RISE_M = 0.05  # m above the lowest measured height: the vehicle has taken off
APPROACH_TIMEOUT_S = 30.0  # s to reach an episode's start: a heavy vehicle first winds up its thrust integrator


def _setpoint_record(setpoint) -> dict:
    return {"type": type(setpoint).__name__,
            **{k: (np.asarray(v, dtype=float) if not isinstance(v, float) else v) for k, v in vars(setpoint).items()}}


class MultirotorEpisodes(EpisodeRunner):
    """``task``'s episodes on a connected :class:`FlightVehicle`.

    Before each episode the vehicle flies (position setpoints through the safety layer) to the start the task
    draws, within ``approach_tolerance`` m and 0.2 m/s, in at most ``approach_timeout_s`` s. After the last episode
    it lands (``robot.safe_stop()``), as it does on any trip or exception inside the loop (the loop's guard).
    An episode succeeds when it ends within ``tolerance`` m of the reference.
    """

    def __init__(self, task: QuadrotorTask, approach_tolerance: float = 0.1,
                 approach_timeout_s: float = APPROACH_TIMEOUT_S, tolerance: float = 0.1) -> None:
        self.task = task
        self.approach_tolerance, self.approach_timeout_s = approach_tolerance, approach_timeout_s
        self.tolerance = tolerance
        self._heights: tuple[float, float] | None = None  # (lowest, highest) measured z (m) of this run

    @property
    def took_off(self) -> bool:
        """Whether a state of this run was over ``TAKEOFF_RISE_M`` above the lowest one measured."""
        return self._heights is not None and self._heights[1] - self._heights[0] > TAKEOFF_RISE_M

    def track(self, loop: RateLoop, state: MultirotorState) -> None:
        """Record the height range and check the flight envelope (geofence, tilt) of every state read."""
        z = float(state.position[2])
        self._heights = (z, z) if self._heights is None else (min(self._heights[0], z), max(self._heights[1], z))
        reason = loop.safety.breach(state.position, state.rotation)
        if reason is not None:
            raise Trip("envelope", reason)
        crash = getattr(loop.robot, "crash", None)
        if crash is not None:
            raise Trip("envelope", f"crash: {crash}")

    def _approach(self, loop: RateLoop, episode: int, start: np.ndarray) -> None:
        settled = 0
        for _ in range(int(self.approach_timeout_s * loop.config.rate_hz)):
            deadline, lateness = loop.wait()
            state = loop.read(lateness)
            close = (np.linalg.norm(state.position - start) < self.approach_tolerance
                     and np.linalg.norm(state.velocity) < 0.2)
            settled = settled + 1 if close else 0
            applied = loop.send(Position(start.copy(), 0.0), state, -1)
            loop.log.write("step", phase="approach", episode=episode, t=loop.elapsed(deadline), late=lateness,
                           position=state.position, velocity=state.velocity, applied=_setpoint_record(applied),
                           interventions=loop.interventions())
            loop.check_estop()
            if settled >= max(int(0.5 * loop.config.rate_hz), 1):
                return
        raise Trip("home", f"start {np.round(start, 3).tolist()} m not reached in {self.approach_timeout_s:g} s")

    def episode(self, loop: RateLoop, episode: int, rng: np.random.Generator) -> dict:
        goal = self.task.reset(rng)
        start = goal.start[0]
        self._approach(loop, episode, start)
        reference = self.task.reference(goal, 0.0, start)
        loop.log.write("episode_start", episode=episode, goal=reference.position, start=start)
        previous = np.zeros(4)
        distances = []
        t0 = None
        for step in range(loop.config.steps_per_episode):
            deadline, lateness = loop.wait()
            t0 = deadline if t0 is None else t0
            state = loop.read(lateness)
            reference = self.task.reference(goal, deadline - t0, state.position)
            if step > 0:  # what the previous action earned, measured now (as the simulator rewards it)
                self._reward(loop, state, reference, episode, step - 1, truncated=False)
            obs = self.task.observe(state, reference, previous)
            started = loop.clock()
            action = loop.act(obs, step)
            setpoint = self.task.action_to_setpoint(action)
            applied = loop.send(setpoint, state, step)
            compute = loop.clock() - started
            previous = action
            distance = position_error(state.position, reference)
            distances.append(distance)
            loop.log.write("step", phase="policy", episode=episode, step=step, t=loop.elapsed(deadline),
                           late=lateness, compute=compute, state_age=started - state.timestamp,
                           position=state.position, velocity=state.velocity, reference=reference.position,
                           body_rates=state.body_rates, observation=obs, action=action,
                           setpoint=_setpoint_record(setpoint), applied=_setpoint_record(applied),
                           distance=distance, interventions=loop.interventions())
            loop.check_estop()
        last = loop.read(loop.wait()[1])  # one period later: where the last setpoint took the vehicle
        final_reference = self.task.reference(goal, loop.clock() - t0, last.position)
        final = position_error(last.position, final_reference)
        # the last action's reward; the episode ends by its time limit, as a training episode is truncated
        self._reward(loop, last, final_reference, episode, loop.config.steps_per_episode - 1, truncated=True)
        settle = min(len(distances), int(loop.config.rate_hz))  # the first second: approach from the start offset
        held = np.array(distances[settle:] or distances)
        record = {"episode": episode, "goal": reference.position.tolist(), "final_distance": final,
                  "min_distance": float(min(distances + [final])), "rms_distance": float(np.sqrt(np.mean(held ** 2))),
                  "max_distance_after_1s": float(held.max()), "success": bool(final < self.tolerance)}
        loop.log.write("episode", **record)
        return record

    def _reward(self, loop: RateLoop, state: MultirotorState, reference: Reference, episode: int, step: int,
                truncated: bool) -> None:
        """Tell the policy the reward the action of ``step`` earned, measured at ``state`` (logged)."""
        reward = float(self.task.reward(position_error(state.position, reference), state.body_rates))
        loop.policy.observe(reward, False, truncated)
        loop.log.write("reward", episode=episode, step=step, reward=reward, truncated=truncated)

    def warm_up_observation(self, loop: RateLoop, state: MultirotorState) -> np.ndarray:
        """The warm-up observation: the vehicle asked to stay where it is (nothing acts on it)."""
        here = np.asarray(state.position, dtype=float)
        return self.task.observe(state, Reference(here, np.zeros(3), here), np.zeros(4))

    def meta(self, loop: RateLoop) -> dict:
        c = loop.safety.config
        return dict(kind="multirotor", vehicle=self.task.spec.name, task=self.task.name,
                    action_mode=self.task.action_mode, geofence_low=c.geofence_low, geofence_high=c.geofence_high,
                    max_thrust=c.max_thrust, max_body_rate=c.max_body_rate, max_tilt=c.max_tilt,
                    max_speed=c.max_speed, distance_threshold=self.tolerance)

    def before_start(self, loop: RateLoop) -> None:
        try:
            loop.robot.arm()
        except OSError as err:
            raise Trip("link", f"arming failed: {err}") from None

    def after_episodes(self, loop: RateLoop, result: DeployResult) -> None:
        """Land; a landing that fails is the run's stop record (it did not end safely)."""
        record = {"kind": "land", "reason": "episodes done", "t": loop.elapsed(loop.clock()), **self.halt(loop)}
        if record["safe_stop_error"] is not None:
            result.stopped = record
        loop.log.write("event", **record)

    def halt(self, loop: RateLoop) -> dict:
        """Safe stop: land (whether the vehicle came down, and the error if landing failed)."""
        fired = loop.clock()
        try:
            down = loop.robot.land()
            error = None
        except Exception as err:  # a dead link: the vehicle's own failsafe is all that is left; say so
            down, error = False, describe(err)
        took_off = self.took_off  # a vehicle that never lifted did not land: it did not take off
        crash = getattr(loop.robot, "crash", None)
        return {"landed": bool(down and took_off and crash is None), "took_off": took_off, "crash": crash,
                "stop_latency": loop.clock() - fired, "safe_stop_error": error}


class MultirotorDeploymentLoop(RateLoop):
    """The rate loop with a multirotor's episodes (:class:`MultirotorEpisodes`); the vehicle must be connected."""

    def __init__(self, robot: FlightVehicle, task: QuadrotorTask, policy: Policy, safety: MultirotorSafetyLayer,
                 log: DeploymentLog, config: LoopConfig, estop: EStop | None = None,
                 clock: Callable[[], float] = time.monotonic, approach_tolerance: float = 0.1,
                 approach_timeout_s: float = APPROACH_TIMEOUT_S, tolerance: float = 0.1,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(robot, MultirotorEpisodes(task, approach_tolerance, approach_timeout_s, tolerance), policy,
                         safety, log, config, estop, clock, sleep)
