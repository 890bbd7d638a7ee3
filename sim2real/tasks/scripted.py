"""Hand-written controllers for the arm tasks (end-effector control): baselines (they evaluate like any policy), and
demonstrations that seed an off-policy learner's replay buffer (``algo.demonstrations``)."""
from __future__ import annotations

import numpy as np

from sim2real.agents import StatelessPolicy
from sim2real.tasks.base import ArmTask

SCRIPTED_TASKS = ("reach", "push")


class ScriptedExpert(StatelessPolicy):
    """Acts on the goal-conditioned observation of ``task`` (:meth:`ArmTask.goal_observation`; the tool position
    is ``observation[:3]``, Push's cube position follows the robot part) with actions for the end-effector
    controller (``ee_step`` m of tool travel per unit action).

    Reach: straight to the goal. Push: to a point behind the cube as seen from the goal, above the cube's height;
    down to push height once there; then along the cube → goal line at a slow push speed until the cube is within
    a third of the success radius (then hold). Lengths scale with the task's cube edge.
    """

    def __init__(self, task: ArmTask, ee_step: float = 0.05) -> None:
        if task.name not in SCRIPTED_TASKS:
            raise ValueError(f"no scripted controller for task {task.name!r} (have: {', '.join(SCRIPTED_TASKS)})")
        self.task, self.ee_step = task, ee_step
        edge = task.layout.object_size
        self.behind = edge / 2 + 0.022  # m from the cube centre to where the tool starts pushing
        self.push_height = 0.6 * edge  # m, tool height while pushing
        self.travel_height = edge + 0.025  # m, tool height while moving around the cube

    def _toward(self, target: np.ndarray, tool: np.ndarray, limit: float = 1.0) -> np.ndarray:
        return np.clip(0.5 * (target - tool) / self.ee_step, -limit, limit)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One action in [-1, 1] (float32) for one observation."""
        tool, goal = obs["observation"][:3].astype(float), obs["desired_goal"].astype(float)
        if self.task.name == "reach":
            return self._toward(goal, tool).astype(np.float32)
        robot = self.task.robot_observation_size
        cube = obs["observation"][robot:robot + 3].astype(float)
        if np.linalg.norm(goal[:2] - cube[:2]) < self.task.distance_threshold / 3:
            return np.zeros(3, dtype=np.float32)
        line = (goal[:2] - cube[:2]) / max(float(np.linalg.norm(goal[:2] - cube[:2])), 1e-6)
        along = float((tool[:2] - cube[:2]) @ line)
        lateral = float(np.linalg.norm(tool[:2] - cube[:2] - along * line))
        start = cube[:2] - self.behind * line
        if along < -0.01 and lateral < 0.01 and tool[2] < self.travel_height - 0.02:  # in place: push, slowly
            return self._toward(np.append(goal[:2] - 0.02 * line, self.push_height), tool, 0.2).astype(np.float32)
        height = self.push_height if np.linalg.norm(tool[:2] - start) < 0.01 else self.travel_height
        return self._toward(np.append(start, height), tool).astype(np.float32)

    def act_batch(self, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Actions for a batch of observations (the :class:`~sim2real.agents.BatchPolicy` interface)."""
        return np.stack([self.act(o) for o in observations])
