"""Deploying a quadrotor policy: the arm deployment loop (fixed rate on a monotonic clock, watchdog, e-stop, JSONL log,
safe stop on any trip) with a multirotor's phases — arm, fly to the episode's start position, run the policy, land.

Observations, setpoints and rewards come from the task the simulator runs, unchanged
(:class:`sim2real.tasks.quadrotor.QuadrotorTask`: ``reference``, ``observe``, ``action_to_setpoint``, ``reward``): each
action's reward (measured at the next step's state) and the episode's end (truncated after its last step) go to
``policy.observe``, so a recurrent (RL²) policy gets the inputs it was trained with. Every setpoint passes the
:class:`MultirotorSafetyLayer`; a measured state outside the geofence or tilted past its limit trips the safe stop
(land). The land record says
``took_off`` (a measured height over ``TAKEOFF_RISE_M`` above the lowest) and ``landed`` (took off and came down: a
vehicle that never lifted is reported as not having taken off, not as landed). Frames: world ENU, body FLU; units SI.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from sim2real.deploy.estop import EStop
from sim2real.deploy.faults import describe
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.loop import DeploymentLoop, DeployResult, LoopConfig, Trip
from sim2real.agents import Policy
from sim2real.hal.flight import FlightVehicle
from sim2real.hal.multirotor import MultirotorState, Position
from sim2real.hal.safety import MultirotorSafetyLayer
from sim2real.tasks.quadrotor import QuadrotorTask, Reference, position_error


TAKEOFF_RISE_M = 0.05  # m above the lowest measured height: the vehicle has taken off


def _setpoint_record(setpoint) -> dict:
    return {"type": type(setpoint).__name__,
            **{k: (np.asarray(v, dtype=float) if not isinstance(v, float) else v) for k, v in vars(setpoint).items()}}


class MultirotorDeploymentLoop(DeploymentLoop):
    """Runs ``policy`` on a connected :class:`FlightVehicle` for a quadrotor ``task``.

    Before each episode the vehicle flies (position setpoints through the safety layer) to the start the task
    draws, within ``approach_tolerance`` m and 0.2 m/s, in at most ``approach_timeout_s`` s. After the last episode
    it lands (``robot.safe_stop()``), as it does on any trip or exception inside the loop (the base loop's guard).
    """

    def __init__(self, robot: FlightVehicle, task: QuadrotorTask, policy: Policy, safety: MultirotorSafetyLayer,
                 log: DeploymentLog, config: LoopConfig, estop: EStop | None = None,
                 clock: Callable[[], float] = time.monotonic, approach_tolerance: float = 0.1,
                 approach_timeout_s: float = 15.0, tolerance: float = 0.1,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(robot, task, None, policy, None, None, safety, log, config, estop, clock,  # type: ignore
                         sleep=sleep)
        self.spec, self.action_mode = task.spec, task.action_mode
        self.approach_tolerance, self.approach_timeout_s = approach_tolerance, approach_timeout_s
        self.tolerance = tolerance
        self._heights: tuple[float, float] | None = None  # (lowest, highest) measured z (m) of this run

    @property
    def took_off(self) -> bool:
        """Whether a state of this run was over ``TAKEOFF_RISE_M`` above the lowest one measured."""
        return self._heights is not None and self._heights[1] - self._heights[0] > TAKEOFF_RISE_M

    def _state(self, lateness: float) -> MultirotorState:
        """Read, check age (watchdog) and the flight envelope (geofence, tilt)."""
        state = self._read(lateness)
        z = float(state.position[2])
        self._heights = (z, z) if self._heights is None else (min(self._heights[0], z), max(self._heights[1], z))
        reason = self.safety.breach(state.position, state.rotation)
        if reason is not None:
            raise Trip("envelope", reason)
        return state

    def _approach(self, episode: int, start: np.ndarray) -> None:
        settled = 0
        steps = int(self.approach_timeout_s * self.config.rate_hz)
        for _ in range(steps):
            deadline, lateness = self._wait()
            state = self._state(lateness)
            close = (np.linalg.norm(state.position - start) < self.approach_tolerance
                     and np.linalg.norm(state.velocity) < 0.2)
            settled = settled + 1 if close else 0
            applied = self._send(Position(start.copy(), 0.0), state, -1)
            self.log.write("step", phase="approach", episode=episode, t=deadline - self._start, late=lateness,
                           position=state.position, velocity=state.velocity, applied=_setpoint_record(applied),
                           interventions=self._interventions())
            self._check_estop()
            if settled >= max(int(0.5 * self.config.rate_hz), 1):
                return
        raise Trip("home", f"start {np.round(start, 3).tolist()} m not reached in {self.approach_timeout_s:g} s")

    def _episode(self, episode: int, rng: np.random.Generator) -> dict:
        goal = self.task.reset(rng)
        start = goal.start[0]
        self._approach(episode, start)
        reference = self.task.reference(goal, 0.0, start)
        self.log.write("episode_start", episode=episode, goal=reference.position, start=start)
        previous = np.zeros(4)
        distances = []
        t0 = None
        for step in range(self.config.steps_per_episode):
            deadline, lateness = self._wait()
            t0 = deadline if t0 is None else t0
            state = self._state(lateness)
            reference = self.task.reference(goal, deadline - t0, state.position)
            if step > 0:  # what the previous action earned, measured now (as the simulator rewards it)
                self._observe(state, reference, episode, step - 1, truncated=False)
            obs = self.task.observe(state, reference, previous)
            started = self.clock()
            action = self._act(obs, step)
            setpoint = self.task.action_to_setpoint(action)
            applied = self._send(setpoint, state, step)
            compute = self.clock() - started
            previous = action
            distance = position_error(state.position, reference)
            distances.append(distance)
            self.log.write("step", phase="policy", episode=episode, step=step, t=deadline - self._start,
                           late=lateness, compute=compute, state_age=started - state.timestamp,
                           position=state.position, velocity=state.velocity, reference=reference.position,
                           body_rates=state.body_rates, observation=obs, action=action,
                           setpoint=_setpoint_record(setpoint),
                           applied=_setpoint_record(applied), distance=distance,
                           interventions=self._interventions())
            self._check_estop()
        last = self._state(self._wait()[1])  # one period later: where the last setpoint took the vehicle
        final_reference = self.task.reference(goal, self.clock() - t0, last.position)
        final = position_error(last.position, final_reference)
        # the last action's reward; the episode ends by its time limit, as a training episode is truncated
        self._observe(last, final_reference, episode, self.config.steps_per_episode - 1, truncated=True)
        settle = min(len(distances), int(self.config.rate_hz))  # the first second: approach from the start offset
        held = np.array(distances[settle:] or distances)
        record = {"episode": episode, "goal": reference.position.tolist(), "final_distance": final,
                  "min_distance": float(min(distances + [final])), "rms_distance": float(np.sqrt(np.mean(held ** 2))),
                  "max_distance_after_1s": float(held.max()), "success": bool(final < self.tolerance)}
        self.log.write("episode", **record)
        return record

    def _observe(self, state: MultirotorState, reference: Reference, episode: int, step: int,
                 truncated: bool) -> None:
        """Tell the policy the reward the action of ``step`` earned, measured at ``state`` (logged)."""
        reward = float(self.task.reward(position_error(state.position, reference), state.body_rates))
        self.policy.observe(reward, False, truncated)
        self.log.write("reward", episode=episode, step=step, reward=reward, truncated=truncated)

    def _warm_up_observation(self, state: MultirotorState) -> np.ndarray:
        """The warm-up observation: the vehicle asked to stay where it is (nothing acts on it)."""
        here = np.asarray(state.position, dtype=float)
        return self.task.observe(state, Reference(here, np.zeros(3), here), np.zeros(4))

    def _meta(self) -> dict:
        c = self.safety.config
        return dict(kind="multirotor", vehicle=self.spec.name, task=self.task.name, action_mode=self.action_mode,
                    rate_hz=self.config.rate_hz, period=self.config.period, stale_after_s=self.config.stale_limit,
                    overrun_after_s=self.config.overrun_limit, geofence_low=c.geofence_low,
                    geofence_high=c.geofence_high, max_thrust=c.max_thrust, max_body_rate=c.max_body_rate,
                    max_tilt=c.max_tilt, max_speed=c.max_speed, distance_threshold=self.tolerance,
                    priority=self._priority)

    def _before_start(self) -> None:
        try:
            self.robot.arm()
        except OSError as err:
            raise Trip("link", f"arming failed: {err}") from None

    def _after_episodes(self, result: DeployResult) -> None:
        """Land; a landing that fails is the run's stop record (it did not end safely)."""
        record = {"kind": "land", "reason": "episodes done", "t": self.clock() - self._start, **self._land()}
        if record["safe_stop_error"] is not None:
            result.stopped = record
        self.log.write("event", **record)

    def _halt(self) -> dict:
        """Safe stop: land (whether the vehicle came down, and the error if landing failed)."""
        return self._land()

    def _land(self) -> dict:
        fired = self.clock()
        try:
            down = self.robot.land()
            error = None
        except Exception as err:  # a dead link: the vehicle's own failsafe is all that is left; say so
            down, error = False, describe(err)
        took_off = self.took_off  # a vehicle that never lifted did not land: it did not take off
        return {"landed": bool(down and took_off), "took_off": took_off, "stop_latency": self.clock() - fired,
                "safe_stop_error": error}
