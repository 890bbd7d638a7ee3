"""An arm's episodes inside the rate loop (:mod:`sim2real.deploy.loop`): home, goal, task-built observations,
the controller's joint command, the task's reward; the arm's safe stop holds its measured pose.

Before each episode the arm is driven home through the same safety layer, then the task places its objects and goal.
With a :class:`~sim2real.hal.camera.Camera` (camera policies: vision pipelines, pixel policies) the observation is
``{"image": camera frame, "proprio": the task's robot observation}``, as the simulator's camera envs give it; a
frame older than ``stale_after_s`` trips the watchdog, and the policy's perceived goal is logged.
Every state read is handed to the scene (:meth:`~sim2real.hal.scene.Scene.track`), so an emulated workspace moves
its objects with the arm before the achieved goal, success and final distance read them.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from robots.spec import RobotSpec
from sim2real.agents import Policy
from sim2real.deploy.estop import EStop
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.loop import EpisodeRunner, LoopConfig, RateLoop, Trip
from sim2real.hal.camera import Camera, CameraError
from sim2real.hal.robot import Robot
from sim2real.hal.safety import SafetyLayer
from sim2real.hal.scene import Scene
from sim2real.hal.servo_bus import BusError
from sim2real.hal.types import JointCommand, RobotState
from sim2real.tasks.base import ArmTask
from sim2real.tasks.control import Controller


def at_home(spec: RobotSpec, uses_gripper: bool, positions: np.ndarray, tolerance: float) -> bool:
    """Every arm joint within ``tolerance`` (rad) of ``spec.home``, and the gripper's joints too when the task uses
    the gripper (a weak gripper servo that stops short of closed does not change where the tool starts)."""
    counted = [i for i, name in enumerate(spec.joint_names) if uses_gripper or name in spec.arm_joint_names]
    error = np.abs(np.asarray(positions, dtype=float) - np.asarray(spec.home, dtype=float))[counted]
    return bool(np.max(error) < tolerance)

class ArmEpisodes(EpisodeRunner):
    """``task``'s episodes on an arm: goals from ``goals``, actions through ``controller``; ``scene`` is the
    task's scene (a lab scene or an emulated workspace), ``camera`` the policy's eyes (camera policies only)."""

    def __init__(self, task: ArmTask, controller: Controller, scene: Scene, goals: GoalSource,
                 camera: Camera | None = None) -> None:
        self.task, self.controller, self.scene, self.goals, self.camera = task, controller, scene, goals, camera

    def meta(self, loop: RateLoop) -> dict:
        return dict(kind="arm", joints=list(self.task.spec.joint_names), lower=loop.safety.config.lower,
                    upper=loop.safety.config.upper, task=self.task.name,
                    distance_threshold=self.task.distance_threshold,
                    camera=None if self.camera is None else [self.camera.height, self.camera.width])

    def track(self, loop: RateLoop, state: RobotState) -> None:
        if self.scene is not None:
            self.scene.track(state)  # e.g. an emulated workspace moves what the arm pushed

    def observe(self, loop: RateLoop, state: RobotState, goal: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """(policy observation, facts to log): the task's goal observation, or camera frame + proprioception."""
        if self.camera is None:
            return self.task.goal_observation(state, self.scene, goal), {}
        try:
            frame = self.camera.read_frame()
        except CameraError as err:
            raise Trip("link", f"camera: {err}") from None
        age = loop.clock() - frame.timestamp
        if age > loop.config.stale_limit:
            raise Trip("watchdog", f"stale image: {age * 1e3:.1f} ms old")
        proprio = self.task.robot_observation(state).astype(np.float32)
        return {"image": frame.image, "proprio": proprio}, {"image_age": age, "image_mean": float(frame.image.mean())}

    def warm_up_observation(self, loop: RateLoop, state: RobotState):
        """The observation of the warm-up call (goal: the origin; nothing acts on it)."""
        return self.observe(loop, state, np.zeros(3))[0]

    def before_start(self, loop: RateLoop) -> None:
        """The robot takes control (a servo arm whose bus watchdog expired during the untimed warm-up or since
        connect holds its present pose and is re-armed); a bus that does not answer is a lost link."""
        try:
            loop.robot.take_control()
        except (BusError, OSError) as err:
            raise Trip("link", f"take control failed: {err}") from None

    def go_home(self, loop: RateLoop, episode: int) -> None:
        """Drive the arm to the spec's home pose through the safety layer (``home_steps`` at most; :func:`at_home`)."""
        home = np.asarray(self.task.spec.home, dtype=float)
        for step in range(loop.config.home_steps):
            deadline, lateness = loop.wait()
            state = loop.read(lateness)
            if at_home(self.task.spec, self.task.uses_gripper, state.positions, loop.config.home_tolerance):
                return
            if step == loop.config.home_steps - 1:
                raise Trip("home", f"home pose not reached in {step + 1} steps: joints at "
                                   f"{np.round(state.positions, 2).tolist()} rad")
            applied = loop.send(JointCommand(home.copy()), state, -1)
            loop.log.write("step", phase="home", episode=episode, t=loop.elapsed(deadline), late=lateness,
                           positions=state.positions, command=applied.positions, interventions=loop.interventions())
            loop.check_estop()

    def episode(self, loop: RateLoop, episode: int, rng: np.random.Generator) -> dict:
        self.go_home(loop, episode)  # first: the way home must not sweep the objects the task is about to place
        goal = self.goals.next(episode, self.task, loop.robot, self.scene, rng)
        loop.log.write("episode_start", episode=episode, goal=goal)
        distances, localization = [], []
        for step in range(loop.config.steps_per_episode):
            deadline, lateness = loop.wait()
            state = loop.read(lateness)
            achieved = self.task.achieved_goal(state, self.scene)
            if step > 0:  # what the previous action earned, measured now (as the simulator rewards it)
                loop.policy.observe(float(self.task.compute_reward(achieved, goal)), False, False)
            obs, seen = self.observe(loop, state, goal)
            started = loop.clock()
            action = loop.act(obs, step)
            estimate = loop.policy.goal_estimate()
            if estimate is not None:
                seen["goal_estimate"] = np.asarray(estimate, dtype=float)
                localization.append(float(np.linalg.norm(seen["goal_estimate"] - goal)))
                seen["localization_error"] = localization[-1]
            command = self.controller.to_command(action, state, loop.robot)
            applied = loop.send(command, state, step)
            compute = loop.clock() - started
            distance = float(np.linalg.norm(achieved - goal))
            distances.append(distance)
            loop.log.write("step", phase="policy", episode=episode, step=step, t=loop.elapsed(deadline),
                           late=lateness, compute=compute, state_age=started - state.timestamp,
                           positions=state.positions, velocities=state.velocities, ee=state.ee_position,
                           action=action, command=command.positions, applied=applied.positions,
                           distance=distance, interventions=loop.interventions(), **seen)
            loop.check_estop()
        final = loop.read(loop.wait()[1])  # one period later: where the last command took the arm
        achieved = self.task.achieved_goal(final, self.scene)
        # the last action's reward; the episode ends by its time limit, as a training episode is truncated
        loop.policy.observe(float(self.task.compute_reward(achieved, goal)), False, True)
        distance = float(np.linalg.norm(achieved - goal))
        record = {"episode": episode, "goal": goal.tolist(), "final_distance": distance,
                  "min_distance": min(distances + [distance]),
                  "success": bool(self.task.is_success(achieved, goal))}
        if localization:
            record["localization_error"] = float(np.mean(localization))
        loop.log.write("episode", **record)
        return record


class DeploymentLoop(RateLoop):
    """The rate loop with an arm's episodes (:class:`ArmEpisodes`); the robot must be connected."""

    def __init__(self, robot: Robot, task: ArmTask, controller: Controller, policy: Policy, scene: Scene,
                 goals: GoalSource, safety: SafetyLayer, log: DeploymentLog, config: LoopConfig,
                 estop: EStop | None = None, clock: Callable[[], float] = time.monotonic,
                 camera: Camera | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(robot, ArmEpisodes(task, controller, scene, goals, camera), policy, safety, log, config,
                         estop, clock, sleep)

