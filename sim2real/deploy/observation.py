"""The goal-conditioned observation built from task code only, exactly as :class:`ArmEnv` builds it in simulation."""
from __future__ import annotations

import numpy as np

from sim2real.hal.scene import Scene
from sim2real.hal.types import RobotState
from sim2real.tasks.base import ArmTask


def goal_observation(task: ArmTask, state: RobotState, scene: Scene, goal: np.ndarray) -> dict[str, np.ndarray]:
    """``observation`` (robot part + object part), ``achieved_goal`` and ``desired_goal`` (m), float32."""
    return {
        "observation": np.concatenate((task.robot_observation(state), task.object_observation(scene))).astype(np.float32),
        "achieved_goal": task.achieved_goal(state, scene).astype(np.float32),
        "desired_goal": np.asarray(goal).astype(np.float32),
    }
