"""Physics experiments (after Denil et al. 2017, "Learning to Perform Physics Experiments via Deep RL"): the arm
pokes blocks that all look alike and then *answers* a question about a property it cannot see.

* :class:`Heavier` — ``n_blocks`` blocks in a row in front of the tool; which one is the heaviest?
* :class:`Towers` — a tower of 1–5 stacked blocks, some glued into one rigid body; how many rigid bodies is it?

An episode has two phases: *interact* (the arm's usual end-effector or joint actions) and *answer*. The action is
``[arm action..., answer gate, one score per possible answer]``: the first step whose gate exceeds
:data:`ANSWER_GATE` answers with the highest-scoring choice and ends the episode with reward +1 (correct) or −1
(wrong). Every other step earns 0, except the last step of the budget, which counts as a wrong answer (−1): no
answer is no better than a wrong one, so guessing is never dominated by waiting. Difficulty ``d`` in [0, 1]
(``experiment.difficulty``, a Param curricula move) sets how close the masses are (Heavier) or how tall towers get
(Towers). Masses never appear in the observation: what a robot can sense does (tool state, tracked block poses,
the contact force on each block measured over the last control period).
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from sim2real.hal.robot import Robot
from sim2real.hal.scene import Scene
from sim2real.hal.types import RobotState
from sim2real.tasks.base import ArmTask

ANSWER_GATE = 0.5  # the answer component (in [-1, 1]) above which a step answers
EASY_MASS_RATIO = 3.0  # heaviest / second-heaviest block at difficulty 0
HARD_MASS_RATIO = 1.1  # ... at difficulty 1
LIGHTEST_FRACTION = 0.5  # the other blocks weigh between this fraction of the second-heaviest and all of it
MAX_TOWER = 5  # blocks in the tallest tower
POKE_FORCE = 0.1  # contact force (units of the nominal block weight) above which a block counts as poked
BLOCK_GREY = (0.55, 0.55, 0.6, 1.0)  # every block's nominal look (the experiment randomizer recolours them)
PARKED_DEPTH = 0.6  # m below the table top where a Towers block not in this episode's tower is held


@runtime_checkable
class GluingScene(Protocol):
    """A scene that can fix bodies together (the simulator; a lab has no such thing: towers are built by hand)."""

    def glue(self, name: str, to: str | None = None) -> None: ...
    def unglue_all(self) -> None: ...


def mass_ratio(difficulty: float) -> float:
    """Heaviest / second-heaviest mass (1): :data:`EASY_MASS_RATIO` at difficulty 0 down to
    :data:`HARD_MASS_RATIO` at 1, geometrically in between."""
    d = float(np.clip(difficulty, 0.0, 1.0))
    return math.exp((1.0 - d) * math.log(EASY_MASS_RATIO) + d * math.log(HARD_MASS_RATIO))


def heavier_masses(n_blocks: int, difficulty: float, base_mass: float, rng: np.random.Generator) -> np.ndarray:
    """Block masses (kg): the second-heaviest weighs ``base_mass``, the heaviest ``mass_ratio(difficulty)`` times
    that, the others log-uniformly between ``LIGHTEST_FRACTION * base_mass`` and ``base_mass``; shuffled."""
    others = base_mass * np.exp(rng.uniform(math.log(LIGHTEST_FRACTION), 0.0, size=n_blocks - 2))
    masses = np.concatenate(([base_mass * mass_ratio(difficulty), base_mass], others))
    return masses[rng.permutation(n_blocks)]


def tower_height_limit(difficulty: float) -> int:
    """Tallest tower (blocks) at ``difficulty``: 2 at 0 up to :data:`MAX_TOWER` at 1."""
    return 2 + int(round(float(np.clip(difficulty, 0.0, 1.0)) * (MAX_TOWER - 2)))


def tower_groups(height: int, rng: np.random.Generator, glue_probability: float = 0.5) -> list[int]:
    """Rigid-body index of each block of a ``height``-block tower, bottom first: each block is glued to the one
    below with ``glue_probability``; the count to answer is ``max + 1``."""
    groups = [0]
    for _ in range(height - 1):
        groups.append(groups[-1] + int(rng.random() >= glue_probability))
    return groups


@dataclass(frozen=True)
class Answer:
    """What one step's answer part says: whether it answers and which choice (index into the task's choices)."""

    given: bool
    choice: int


class ExperimentTask(ArmTask):
    """Blocks to poke and a question to answer. Subclasses place the blocks and know the right answer.

    ``difficulty`` (1), ``mass_scale`` (factor on the layout's block mass) and ``friction_scale`` (factor on the
    blocks' friction, 1.0 nominal) are set by the environment before each reset (the ``experiment`` randomizer
    moves them); they apply to every block alike, so a block's look and absolute force say nothing alone."""

    n_choices: int = 0

    def __init__(self, *args, n_blocks: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.n_blocks = int(n_blocks)
        self.difficulty, self.mass_scale, self.friction_scale = 0.5, 1.0, 1.0
        self.masses = np.full(self.n_blocks, self.layout.object_mass)
        self.correct = 0  # index of the right choice this episode

    # --- scene ---------------------------------------------------------------------------------------------
    @property
    def block_names(self) -> list[str]:
        return [f"block_{i}" for i in range(self.n_blocks)]

    def setup(self, scene: Scene) -> None:
        half = self.layout.object_size / 2.0
        for name in self.block_names:
            scene.add_box(name, (half, half, half), self.layout.object_mass, BLOCK_GREY)

    @property
    def nominal_weight(self) -> float:
        """Weight of one nominal block (N): the unit of the force observation."""
        return 9.81 * self.layout.object_mass

    # --- answer --------------------------------------------------------------------------------------------
    def split_action(self, action: np.ndarray) -> tuple[np.ndarray, Answer]:
        """(arm part, answer) of a full action; the answer part is the last ``1 + n_choices`` components."""
        tail = action[-(1 + self.n_choices):]
        return action[:-(1 + self.n_choices)], Answer(bool(tail[0] > ANSWER_GATE), int(np.argmax(tail[1:])))

    def score(self, answer: Answer) -> float:
        """+1 for the right choice, −1 for a wrong one; 0 when the step does not answer."""
        if not answer.given:
            return 0.0
        return 1.0 if answer.choice == self.correct else -1.0

    # --- observation ---------------------------------------------------------------------------------------
    @property
    def observation_size(self) -> int:
        return self.robot_observation_size + self.block_observation_size + 1

    @property
    @abc.abstractmethod
    def block_observation_size(self) -> int:
        """Length of :meth:`block_observation`."""

    @abc.abstractmethod
    def block_observation(self, scene: Scene, forces: np.ndarray) -> np.ndarray:
        """The blocks' part of the observation, from the tracked poses and ``forces`` (N, one per block)."""

    def experiment_observation(self, state: RobotState, scene: Scene, forces: np.ndarray,
                               time_left: float) -> np.ndarray:
        """Tool position (m) and velocity (m/s), the blocks' part, and the fraction of the step budget left.

        ``forces``: mean contact force (N) between the arm and each block over the last control period (in
        simulation from the solver; on hardware from a wrist force sensor and a tracker that says which block
        the tool touches)."""
        parts = (self.robot_observation(state), self.block_observation(scene, forces), (time_left,))
        return np.concatenate(parts).astype(np.float32)

    def achieved_goal(self, state: RobotState, scene: Scene) -> np.ndarray:
        return state.ee_position


class Heavier(ExperimentTask):
    """Which block is heaviest? ``n_blocks`` equal-looking cubes in a row across the table, in front of the tool's
    home position (the tool pushes them away from the robot); answer = the heaviest block's index."""

    name = "heavier"

    def __init__(self, *args, n_blocks: int = 3, **kwargs) -> None:
        if n_blocks < 2:
            raise ValueError(f"n_blocks must be at least 2, got {n_blocks}")
        super().__init__(*args, n_blocks=n_blocks, **kwargs)
        self.n_choices = self.n_blocks

    def row(self, home_x: float) -> tuple[float, np.ndarray]:
        """(x, the y of each block) of the row (m, world frame): one tool-to-block gap in front of ``home_x``,
        spread over two thirds of the layout's width."""
        size = self.layout.object_size
        half_width = self.layout.xy_range / 3.0
        return home_x + 1.5 * size + 0.01, np.linspace(-half_width, half_width, self.n_blocks) + self.layout.center[1]

    def reset(self, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        x, ys = self.row(float(robot.read_state().ee_position[0]))
        half = self.layout.object_size / 2.0
        jitter = 0.1 * self.layout.object_size
        for name, y in zip(self.block_names, ys):
            scene.set_pose(name, np.array([x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter), half]))
        self.masses = heavier_masses(self.n_blocks, self.difficulty, self.layout.object_mass * self.mass_scale, rng)
        self.correct = int(np.argmax(self.masses))
        return np.zeros(3)

    @property
    def block_observation_size(self) -> int:
        return 4 * self.n_blocks

    def block_observation(self, scene: Scene, forces: np.ndarray) -> np.ndarray:
        """Per block: tracked position (m) and contact force (units of the nominal block weight)."""
        return np.concatenate([np.append(scene.pose(name)[0], f / self.nominal_weight)
                               for name, f in zip(self.block_names, forces)])


class Towers(ExperimentTask):
    """How many rigid bodies is the tower made of? 1 to ``tower_height_limit(difficulty)`` stacked cubes in front
    of the tool, neighbours glued with probability 1/2; the blocks not in the tower are held under the table.
    Answer ``j`` means ``j + 1`` bodies."""

    name = "towers"
    n_choices = MAX_TOWER

    def __init__(self, *args, **kwargs) -> None:
        kwargs["n_blocks"] = MAX_TOWER
        super().__init__(*args, **kwargs)
        self.height = 1
        self.groups: list[int] = [0]

    def reset(self, robot: Robot, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(scene, GluingScene):
            raise TypeError("the Towers task needs a scene that can glue blocks (the PyBullet world)")
        scene.unglue_all()
        size = self.layout.object_size
        home = robot.read_state().ee_position
        base = np.array([home[0] + 1.5 * size + 0.01 + rng.uniform(-0.1, 0.1) * size,
                         self.layout.center[1] + rng.uniform(-0.1, 0.1) * size])
        self.height = int(rng.integers(1, tower_height_limit(self.difficulty) + 1))
        self.groups = tower_groups(self.height, rng)
        self.correct = self.groups[-1]
        for level, name in enumerate(self.block_names):
            if level < self.height:
                scene.set_pose(name, np.array([base[0], base[1], (level + 0.5) * size]))
            else:
                scene.set_pose(name, np.array([base[0], 0.1 * level, -PARKED_DEPTH]))
                scene.glue(name)
        for level in range(1, self.height):
            if self.groups[level] == self.groups[level - 1]:
                scene.glue(self.block_names[level], self.block_names[level - 1])
        self.masses = np.full(self.n_blocks, self.layout.object_mass * self.mass_scale)
        return np.zeros(3)

    @property
    def block_observation_size(self) -> int:
        return 8 * self.n_blocks

    def block_observation(self, scene: Scene, forces: np.ndarray) -> np.ndarray:
        """Per block slot: whether the block is in the tower (1/0), tracked position (m) and orientation
        (quaternion x, y, z, w); zeros for a block that is not in the tower."""
        parts = []
        for level, name in enumerate(self.block_names):
            if level < self.height:
                position, orientation = scene.pose(name)
                parts.append(np.concatenate(((1.0,), position, orientation)))
            else:
                parts.append(np.zeros(8))
        return np.concatenate(parts)
