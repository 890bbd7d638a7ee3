"""Where reaching goals come from: the task's own seeded sampler, a file, or the command line (m, world frame)."""
from __future__ import annotations

import numpy as np

from sim2real.errors import UserError
from sim2real.hal.robot import Robot
from sim2real.hal.scene import Scene
from sim2real.tasks.base import ArmTask
from sim2real.user_files import read_json


class GoalSource:
    """Goals in order; ``None`` means "ask the task" (its ``reset`` samples and shows the goal)."""

    def __init__(self, fixed: list[np.ndarray] | None = None) -> None:
        self.fixed = fixed

    def next(self, episode: int, task: ArmTask, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        if self.fixed is None:
            return task.reset(robot, scene, rng)
        goal = self.fixed[episode % len(self.fixed)]
        scene.set_pose("goal", goal)
        return goal.copy()


def _point(values: object, where: str) -> np.ndarray:
    try:
        point = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        point = np.zeros(0)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise UserError(f"{where}: a goal is three finite numbers x, y, z (m), got {values!r}")
    return point


def parse_goal(text: str) -> np.ndarray:
    """``"x,y,z"`` (m) from the command line."""
    return _point(text.split(","), f"--goal {text}")


def load_goals(path: str) -> list[np.ndarray]:
    """A JSON list of [x, y, z] goals (m, world frame)."""
    data = read_json(path, "goals file")
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: expected a non-empty JSON list of [x, y, z] goals")
    return [_point(g, f"{path}: goal {i}") for i, g in enumerate(data)]


def check_goals(goals: list[np.ndarray], low: np.ndarray, high: np.ndarray) -> None:
    """Refuse goals outside the safety workspace box (the arm could never reach them)."""
    for goal in goals:
        if np.any(goal < low) or np.any(goal > high):
            raise UserError(f"goal {goal.tolist()} is outside the workspace box {low.tolist()}..{high.tolist()} m")
