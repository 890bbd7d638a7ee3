"""Scripted experimenters for the physics-experiment tasks (end-effector control): the poke-all baseline of
"Which is heavier?" and a knock-down-and-look baseline of "Towers", and a random-answer baseline for both.

They act on the observation :meth:`sim2real.tasks.experiments.ExperimentTask.experiment_observation` builds, so
they run wherever the task runs; each keeps the memory of one episode (call :meth:`reset` at every episode start).
"""
from __future__ import annotations

import numpy as np

from sim2real.tasks.experiments import ExperimentTask, Heavier, Towers

EE_STEP = 0.05  # m of tool travel per unit action (the end-effector controller's default)


class _Experimenter:
    """Common action layout: ``[dx, dy, dz, gate, scores...]``; the tool moves by ``EE_STEP`` m per unit."""

    def __init__(self, task: ExperimentTask) -> None:
        if task.uses_gripper:
            raise ValueError("the scripted experimenters drive a tool without gripper")
        self.task = task
        self.edge = task.layout.object_size
        self.robot = task.robot_observation_size

    def _move(self, target: np.ndarray, tool: np.ndarray, limit: float = 1.0) -> np.ndarray:
        return self._action(np.clip(0.5 * (target - tool) / EE_STEP, -limit, limit))

    def _action(self, motion: np.ndarray, choice: int | None = None) -> np.ndarray:
        tail = np.full(1 + self.task.n_choices, -1.0)
        if choice is not None:
            tail[0], tail[1 + choice] = 1.0, 1.0
        return np.concatenate((motion, tail)).astype(np.float32)


class PokeAll(_Experimenter):
    """Heavier: push every block in turn by the same tool motion (``push_steps`` steps at ``push_speed`` of the
    full step, from ``behind`` m behind it, reached within 4 mm or after ``approach_steps`` steps), sum the
    contact force each one pushed back with, then answer the block that pushed back hardest. With ``stop_ratio``
    it answers as soon as one poked block pushed back more than ``stop_ratio`` times every other poked one (with
    the others between half and all of the second-heaviest's mass, a ratio above 2 can only be the heaviest)."""

    def __init__(self, task: Heavier, push_steps: int = 4, push_speed: float = 0.3, approach_steps: int = 8,
                 stop_ratio: float | None = None) -> None:
        if not isinstance(task, Heavier):
            raise ValueError(f"PokeAll plays the heavier task, not {task.name!r}")
        super().__init__(task)
        self.push_steps, self.push_speed, self.approach_steps = int(push_steps), float(push_speed), int(approach_steps)
        self.stop_ratio = stop_ratio
        self.behind = self.edge / 2 + 0.02
        self.height = 0.6 * self.edge
        self.reset()

    def reset(self) -> None:
        self.block, self.pushed, self.approached, self.phase = 0, 0, 0, "approach"
        self.felt = np.zeros(self.task.n_blocks)

    def _sure(self) -> bool:
        """Whether a stop ratio is set and one of the blocks poked so far stands out by it."""
        if self.stop_ratio is None or self.block < 2:
            return False
        felt = np.sort(self.felt[:self.block])
        return bool(felt[-1] > self.stop_ratio * felt[-2])

    def _blocks(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part = np.asarray(obs[self.robot:self.robot + 4 * self.task.n_blocks], dtype=float).reshape(-1, 4)
        return part[:, :3], part[:, 3]

    def act(self, obs: np.ndarray) -> np.ndarray:
        tool = np.asarray(obs[:3], dtype=float)
        positions, forces = self._blocks(obs)
        if self.phase == "push":
            self.felt[self.block] += forces[self.block]
        if self.block >= self.task.n_blocks or self._sure():
            return self._action(np.zeros(3), int(np.argmax(self.felt)))
        start = np.array([positions[self.block, 0] - self.behind, positions[self.block, 1], self.height])
        if self.phase == "approach":
            self.approached += 1
            if np.linalg.norm(tool - start) > 0.004 and self.approached <= self.approach_steps:
                return self._move(start, tool)
            self.phase, self.pushed, self.approached = "push", 0, 0
        if self.phase == "push":
            if self.pushed < self.push_steps:
                self.pushed += 1
                return self._action(np.array([self.push_speed, 0.0, 0.0]))
            self.phase = "retreat"
        back = np.array([tool[0] - 2 * self.push_speed * EE_STEP, tool[1], self.height])
        self.block, self.phase = self.block + 1, "approach"
        return self._move(back, tool)


class KnockDown(_Experimenter):
    """Towers: push through the tower at its top block's height and then at its bottom block's (each leg of the
    sweep ends within 6 mm of its target or after ``leg_steps`` steps: the tool may not reach the lowest height),
    wait ``settle_steps`` steps, and count rigid bodies: neighbours that kept their stacked relative position
    (within ``tolerance`` m) are taken as glued."""

    def __init__(self, task: Towers, settle_steps: int = 6, tolerance: float = 0.003, leg_steps: int = 10) -> None:
        if not isinstance(task, Towers):
            raise ValueError(f"KnockDown plays the towers task, not {task.name!r}")
        super().__init__(task)
        self.settle_steps, self.tolerance, self.leg_steps = int(settle_steps), float(tolerance), int(leg_steps)
        self.reset()

    def reset(self) -> None:
        self.stage, self.waited, self.in_stage = 0, 0, 0
        self.start: np.ndarray | None = None

    def _tower(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part = np.asarray(obs[self.robot:self.robot + 8 * self.task.n_blocks], dtype=float).reshape(-1, 8)
        present = part[:, 0] > 0.5
        return part[present, 1:4], part[present, 4:8]

    def count(self, positions: np.ndarray, orientations: np.ndarray) -> int:
        """Rigid bodies among the stacked blocks (bottom first) from where each now is relative to the one below."""
        from sim2real.frames import quaternion_to_matrix

        bodies = 1
        for lower in range(len(positions) - 1):
            offset = quaternion_to_matrix(orientations[lower]).T @ (positions[lower + 1] - positions[lower])
            bodies += int(np.linalg.norm(offset - (0.0, 0.0, self.edge)) > self.tolerance)
        return bodies

    def act(self, obs: np.ndarray) -> np.ndarray:
        tool = np.asarray(obs[:3], dtype=float)
        positions, orientations = self._tower(obs)
        if self.start is None:
            self.start = positions[0].copy()
        heights = [(len(positions) - 0.5) * self.edge, 0.5 * self.edge]
        if self.stage < 2 * len(heights):
            sweep, leg = divmod(self.stage, 2)
            x = self.start[0] + (-1.0 if leg == 0 else 1.0) * (self.edge + 0.03)
            target = np.array([x, self.start[1], heights[sweep]])
            if leg == 0 and tool[0] > self.start[0] - self.edge:  # go round the tower's front: up, back, down
                target = np.array([x, tool[1], max(tool[2], (len(positions) + 1) * self.edge)])
                if tool[0] - x > 0.004:
                    return self._move(target, tool)
                target[2] = heights[sweep]
            self.in_stage += 1
            if np.linalg.norm(target - tool) > 0.006 and self.in_stage <= self.leg_steps:
                return self._move(target, tool, 0.6)
            self.stage, self.in_stage = self.stage + 1, 0
            return self._action(np.zeros(3))
        if self.waited < self.settle_steps:
            self.waited += 1
            return self._action(np.array([-0.5, 0.0, 0.5]))
        return self._action(np.zeros(3), self.count(positions, orientations) - 1)


class RandomAnswer(_Experimenter):
    """Answers a uniformly drawn choice at the first step, without touching anything."""

    def __init__(self, task: ExperimentTask, rng: np.random.Generator) -> None:
        super().__init__(task)
        self.rng = rng

    def reset(self) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._action(np.zeros(3), int(self.rng.integers(self.task.n_choices)))


class EpisodePolicy:
    """A scripted experimenter in the single-environment :class:`sim2real.agents.Policy` form (what a deployment
    loop drives): its memory is cleared at every trial start and episode end."""

    recurrent = False

    def __init__(self, player: PokeAll | KnockDown | RandomAnswer) -> None:
        self.player = player

    def reset_trial(self) -> None:
        self.player.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.player.act(obs)

    def observe(self, reward: float, terminated: bool, truncated: bool) -> None:
        if terminated or truncated:
            self.player.reset()

    def goal_estimate(self) -> None:
        return None
