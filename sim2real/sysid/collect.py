"""``sysid collect`` for arms: the excitation targets flown through the ordinary deployment loop.

:class:`ExcitationLoop` is a :class:`~sim2real.deploy.loop.DeploymentLoop` whose steps come from a target table
instead of a policy: the same fixed-rate clock, watchdog, e-stop, safety layer before every write, safe stop on any
trip and the same JSON-lines log (step records of phase ``excitation`` with the fields a policy step has:
``t``, ``late``, ``positions``, ``velocities``, ``command``, ``applied``, ``interventions``). The arm goes home
first through the safety layer, as before every policy episode.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robots.spec import RobotSpec
from sim2real.deploy.arm import DeploymentLoop
from sim2real.deploy.loop import DeployResult, LoopConfig, run_connected
from sim2real.hal.robot import Robot
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.types import JointCommand


@dataclass(frozen=True)
class ExcitationTask:
    """What the deployment loop needs of a task when no policy runs: the robot spec (home pose, joint names)."""

    spec: RobotSpec
    name: str = "sysid-excitation"
    distance_threshold: float = 0.0


class ExcitationLoop(DeploymentLoop):
    """Sends ``targets`` (steps, joints; rad) one per control period after going home."""

    def __init__(self, robot: Robot, spec: RobotSpec, targets: np.ndarray, safety: SafetyLayer, log, config,
                 estop=None, **timing) -> None:
        super().__init__(robot, ExcitationTask(spec), None, None, None, None, safety, log, config, estop, **timing)
        self.targets = np.asarray(targets, dtype=float)

    def _meta(self) -> dict:
        return {**super()._meta(), "kind": "arm", "excitation_steps": int(len(self.targets))}

    def _body(self, result: DeployResult) -> None:
        self.log.write("meta", **self._meta())
        self._start, self._tick = self.clock(), 0
        self.runner.go_home(self, 0)
        for step, target in enumerate(self.targets):
            deadline, lateness = self.wait()
            state = self.read(lateness)
            applied = self.send(JointCommand(target.copy()), state, step)
            self.log.write("step", phase="excitation", episode=0, step=step, t=deadline - self._start,
                           late=lateness, positions=state.positions, velocities=state.velocities,
                           command=target, applied=applied.positions, interventions=self.interventions())
            self.check_estop()
        final = self.read(self.wait()[1])
        result.episodes.append({"episode": 0, "success": True, "final_distance": 0.0, "min_distance": 0.0,
                                "goal": [], "steps": int(len(self.targets)),
                                "tracking_rms": float(np.sqrt(np.mean((final.positions - self.targets[-1]) ** 2)))})


def collect_arm(robot: Robot, spec: RobotSpec, base_position, targets: np.ndarray, log_path: str, rate_hz: float,
                stop_file: str | None = None, **timing) -> tuple[DeployResult, list[str]]:
    """Run the excitation on the connected ``robot``; returns the result and what failed on the way out (the
    robot is disconnected afterwards, as after a deployment)."""
    config = LoopConfig(rate_hz, 1, len(targets), **timing)
    safety_config = SafetyConfig.from_spec(spec, base_position)

    def build(log, estop):
        return ExcitationLoop(robot, spec, targets, SafetyLayer(safety_config, robot.model, 1.0 / rate_hz), log,
                              config, estop)

    return run_connected(robot, log_path, stop_file, build)
