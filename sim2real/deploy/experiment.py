"""The physics-experiment tasks on an arm through the HAL: poke the blocks, then answer (issue 24).

:class:`ExperimentEpisodes` is an arm's episode runner for the rate loop (:class:`sim2real.deploy.loop.RateLoop`:
timing, watchdogs, safety layer, e-stop, log, and the safe stop on any failure) with the experiment's episode: the
observation is :meth:`ExperimentTask.experiment_observation` (tracked block poses and per-block contact forces),
the action's answer part ends the episode with +1/−1 as in simulation, and an unanswered episode scores −1 at the
last step of its budget (``steps_per_episode``).

The scene must track the blocks and measure what each pushes back with: the emulated workspace
(:class:`sim2real.hal.emulated_workspace.EmulatedWorkspace`, blocks simulated around the measured arm) does both;
a lab needs a block tracker and a wrist force sensor, which the HAL does not have yet.
"""
from __future__ import annotations

import numpy as np

from sim2real.agents import Policy
from sim2real.deploy.arm import ArmEpisodes
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.loop import LoopConfig, RateLoop
from sim2real.hal.emulated_workspace import EmulatedWorkspace
from sim2real.hal.robot import Robot
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.types import RobotState
from sim2real.tasks.control import Controller, make_controller
from sim2real.tasks.experiments import POKE_FORCE, ExperimentTask


class ExperimentEpisodes(ArmEpisodes):
    """Experiment episodes in an emulated workspace; the task's ``difficulty``, ``mass_scale`` and
    ``friction_scale`` are the caller's (set them on the task before the loop runs). Each episode record has
    ``answer`` (−1: none), ``correct_answer``, ``success``, ``poked`` and ``steps``."""

    task: ExperimentTask
    scene: EmulatedWorkspace

    def __init__(self, task: ExperimentTask, controller: Controller, scene: EmulatedWorkspace) -> None:
        if not isinstance(task, ExperimentTask) or not isinstance(scene, EmulatedWorkspace):
            raise ValueError("ExperimentEpisodes runs an experiment task in an emulated workspace")
        super().__init__(task, controller, scene, GoalSource())
        scene.force_names = task.block_names
        scene.forces = np.zeros(task.n_blocks)

    def _observation(self, loop: RateLoop, state: RobotState, step: int) -> np.ndarray:
        time_left = 1.0 - step / loop.config.steps_per_episode
        return self.task.experiment_observation(state, self.scene, self.scene.forces, time_left)

    def warm_up_observation(self, loop: RateLoop, state: RobotState):
        return self._observation(loop, state, 0)

    def episode(self, loop: RateLoop, episode: int, rng: np.random.Generator) -> dict:
        self.go_home(loop, episode)
        task, scene = self.task, self.scene
        task.reset(loop.robot, scene, rng)
        for name, mass in zip(task.block_names, task.masses):
            scene.set_box_dynamics(name, float(mass), task.friction_scale)
        loop.log.write("episode_start", episode=episode, masses=task.masses, correct_answer=task.correct)
        poked = np.zeros(task.n_blocks, dtype=bool)
        answer, reward, steps = -1, -1.0, loop.config.steps_per_episode
        for step in range(steps):
            deadline, lateness = loop.wait()
            state = loop.read(lateness)  # the workspace tracks the arm and measures the contact forces
            poked |= scene.forces > POKE_FORCE * task.nominal_weight
            if step > 0:
                loop.policy.observe(0.0, False, False)
            action = loop.act(self._observation(loop, state, step), step)
            arm, given = task.split_action(action)
            if given.given:
                answer, reward, steps = given.choice, task.score(given), step + 1
                break
            applied = loop.send(self.controller.to_command(arm, state, loop.robot), state, step)
            loop.log.write("step", phase="policy", episode=episode, step=step, t=loop.elapsed(deadline),
                           late=lateness, positions=state.positions, ee=state.ee_position, action=action,
                           applied=applied.positions, forces=scene.forces, interventions=loop.interventions())
            loop.check_estop()
        loop.policy.observe(reward, True, False)
        record = {"episode": episode, "answer": answer, "correct_answer": task.correct, "success": reward > 0,
                  "poked": int(poked.sum()), "steps": steps}
        loop.log.write("episode", **record)
        return record


def experiment_loop(robot: Robot, task: ExperimentTask, workspace: EmulatedWorkspace, policy: Policy,
                    log: DeploymentLog, config: LoopConfig, control_mode: str = "ee") -> RateLoop:
    """The rate loop running ``task``'s experiments with ``policy`` on the connected ``robot`` (its spec's safety
    limits, ``control_mode`` actions) in ``workspace``."""
    spec, base = task.spec, task.layout.robot_base
    safety = SafetyLayer(SafetyConfig.from_spec(spec, base), robot.model, config.period)
    runner = ExperimentEpisodes(task, make_controller(control_mode, spec, task.uses_gripper, base), workspace)
    return RateLoop(robot, runner, policy, safety, log, config)
