"""``sysid collect`` for arms: the excitation targets flown through the ordinary deployment loop.

:class:`ExcitationEpisodes` is the arm's episode runner inside the deployment rate loop
(:class:`~sim2real.deploy.loop.RateLoop`) with its steps taken from a target table instead of a policy: the same
fixed-rate clock, watchdog, e-stop, safety layer before every write, safe stop on any trip and the same JSON-lines
log (step records of phase ``excitation`` with the fields a policy step has: ``t``, ``late``, ``positions``,
``velocities``, ``command``, ``applied``, ``interventions``, plus what the fit uses beyond them: ``efforts`` (N·m,
the servos' present load/current), ``read_s`` (s from the state request to its reply) and ``sent`` (s, when the
write left)). The arm goes home first through the safety layer, as before every policy episode.

The safety layer is the deployment's own; only its rate limit may be set for the collect
(``velocity_fraction`` of each joint's speed limit, the deployment's by default, at most 1.0: a faster excitation
loads the servos, whose torque limit then shows in the log). Joint limits, the step limit from the measured pose
and the workspace box stay as they are.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from robots.spec import RobotSpec
from sim2real.deploy.arm import ArmEpisodes
from sim2real.deploy.loop import DeployResult, LoopConfig, RateLoop, run_connected
from sim2real.hal.robot import Robot
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.types import JointCommand, RobotState


@dataclass(frozen=True)
class ExcitationTask:
    """What the arm's episode runner needs of a task when no policy runs: the robot spec (home pose, joints)."""

    spec: RobotSpec
    name: str = "sysid-excitation"
    distance_threshold: float = 0.0
    uses_gripper: bool = True  # the way home counts every joint (the excitation moves the gripper too)


class HoldStill:
    """The loop's warm-up policy (nothing acts on its output: the excitation table drives the arm)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def act(self, obs) -> np.ndarray:
        return np.zeros(self.size)

    def reset_trial(self) -> None:
        return None


class ExcitationEpisodes(ArmEpisodes):
    """One episode: home through the safety layer, then ``targets`` (steps, joints; rad), one per period."""

    def __init__(self, spec: RobotSpec, targets: np.ndarray) -> None:
        super().__init__(ExcitationTask(spec), None, None, None)
        self.targets = np.asarray(targets, dtype=float)

    def meta(self, loop: RateLoop) -> dict:
        """The deployment's meta plus the excitation's length and the safety layer's rate limit (rad/s)."""
        return {**super().meta(loop), "excitation_steps": int(len(self.targets)),
                "rate_limit": np.round(loop.safety.config.max_velocity, 4).tolist()}

    def warm_up_observation(self, loop: RateLoop, state: RobotState):
        return state.positions

    def episode(self, loop: RateLoop, episode: int, rng: np.random.Generator) -> dict:
        self.go_home(loop, episode)
        for step, target in enumerate(self.targets):
            deadline, lateness = loop.wait()
            asked = loop.clock()
            state = loop.read(lateness)
            read_s = loop.clock() - asked  # request -> reply: the quickest of the log bounds the servos' latency
            applied = loop.send(JointCommand(target.copy()), state, step)
            sent = loop.elapsed(loop.clock())  # when the write left: the fit replays the target from then on
            loop.log.write("step", phase="excitation", episode=episode, step=step, t=loop.elapsed(deadline),
                           late=lateness, sent=sent, read_s=read_s, positions=state.positions,
                           velocities=state.velocities, efforts=state.efforts, command=target,
                           applied=applied.positions, interventions=loop.interventions())
            loop.check_estop()
        final = loop.read(loop.wait()[1])
        record = {"episode": episode, "success": True, "final_distance": 0.0, "min_distance": 0.0, "goal": [],
                  "steps": int(len(self.targets)),
                  "tracking_rms": float(np.sqrt(np.mean((final.positions - self.targets[-1]) ** 2)))}
        loop.log.write("episode", **record)
        return record


def collect_arm(robot: Robot, spec: RobotSpec, base_position, targets: np.ndarray, log_path: str, rate_hz: float,
                stop_file: str | None = None, limits: Mapping[str, float | None] | None = None,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                velocity_fraction: float | None = None) -> tuple[DeployResult, list[str]]:
    """Run the excitation on the connected ``robot``; ``limits``: the loop's watchdog limits (``stale_after_s``,
    ``overrun_after_s``, s) and ``priority`` (:class:`LoopConfig`); ``velocity_fraction``: the safety layer's
    rate limit as a fraction (0..1] of each joint's speed limit (None: the deployment's). Returns the result and
    what failed on the way out (the robot is disconnected afterwards, as after a deployment)."""
    if velocity_fraction is not None and not 0.0 < velocity_fraction <= 1.0:
        raise ValueError(f"rate limit {velocity_fraction}: a fraction of the joint speed limit in (0, 1]")
    config = LoopConfig(rate_hz, 1, len(targets), **dict(limits or {}))
    rate_limit = {} if velocity_fraction is None else {"velocity_fraction": velocity_fraction}
    safety_config = SafetyConfig.from_spec(spec, base_position, **rate_limit)

    def build(log, estop):
        return RateLoop(robot, ExcitationEpisodes(spec, targets), HoldStill(len(spec.joint_names)),
                        SafetyLayer(safety_config, robot.model, 1.0 / rate_hz), log, config, estop, clock, sleep)

    return run_connected(robot, log_path, stop_file, build)
