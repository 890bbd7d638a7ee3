"""``ExperimentEnv``: the physics-experiment tasks (:mod:`sim2real.tasks.experiments`) as gymnasium environments,
and the ``experiment`` randomization group that moves their difficulty, block masses, friction and colours."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
from gymnasium import spaces

from randomizers.params import Param, ParamSpace, Scalar
from randomizers.registry import register_group
from randomizers.wrappers.base import RandomizationWrapper, SpaceSpec
from sim2real.envs.arm_env import ArmEnv
from sim2real.tasks.experiments import POKE_FORCE, ExperimentTask, Heavier, Towers

EXPERIMENT_TASKS: dict[str, type[ExperimentTask]] = {"heavier": Heavier, "towers": Towers}
EXPERIMENT_ENVS: dict[str, tuple[str, str]] = {
    "sim2real/PandaHeavier-v0": ("panda", "heavier"),
    "sim2real/SO101Heavier-v0": ("so101", "heavier"),
    "sim2real/PandaTowers-v0": ("panda", "towers"),
    "sim2real/SO101Towers-v0": ("so101", "towers"),
}
BUDGET_STEPS = 50  # control steps per episode (2 s at 25 Hz): the interaction budget, answer included


class ExperimentEnv(ArmEnv):
    """Poke blocks, then answer (see :mod:`sim2real.tasks.experiments` for the question, reward and difficulty).

    Observation: a Box (float32) from :meth:`ExperimentTask.experiment_observation` — tool position (m) and
    velocity (m/s), per block its tracked pose and (Heavier) the mean arm–block contact force over the control
    period (units of the nominal block weight), and the fraction of ``budget`` left. Action: the controller's
    components (``ee`` or ``joints``, in [-1, 1]), then the answer gate and one score per choice. The episode
    terminates at the answer or at the ``budget``-th step (an unanswered episode scores −1); ``info`` reports
    ``answered``, ``answer`` (−1 before), ``correct_answer``, ``poked`` (blocks touched with more than
    ``POKE_FORCE`` nominal weights so far), ``difficulty`` and ``is_success`` (answered right).
    """

    def __init__(self, robot: str = "panda", task: str = "heavier", obs_mode: str = "state",
                 control_mode: str = "ee", reward_type: str = "sparse", render_mode: str | None = None,
                 budget: int = BUDGET_STEPS, n_blocks: int = 3, difficulty: float = 0.5) -> None:
        if obs_mode != "state":
            raise ValueError(f"the experiment envs observe state only (obs_mode 'state'), got {obs_mode!r}")
        if reward_type != "sparse":
            raise ValueError(f"the experiment envs reward the answer only (reward_type 'sparse'), got {reward_type!r}")
        if budget < 2:
            raise ValueError(f"budget must be at least 2 steps, got {budget}")
        super().__init__(robot=robot, task=task, obs_mode=obs_mode, control_mode=control_mode,
                         reward_type=reward_type, render_mode=render_mode,
                         task_options={"n_blocks": n_blocks} if task == "heavier" else None)
        if not isinstance(self.task, ExperimentTask):
            raise ValueError(f"task must be one of {', '.join(EXPERIMENT_TASKS)}, got {task!r}")
        self.budget = int(budget)
        self.task.difficulty = float(difficulty)
        tail = 1 + self.task.n_choices
        self.action_space = spaces.Box(-1.0, 1.0, (self.controller.action_dim + tail,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.task.observation_size,), np.float32)
        self._forces = np.zeros(self.task.n_blocks)
        self._steps, self._poked = 0, np.zeros(self.task.n_blocks, dtype=bool)
        self._answer = -1

    def _build_scene(self) -> None:
        # Overlapping pairs sorted: the solver's order over stacked blocks must not depend on the contact history.
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=self.world.client)
        super()._build_scene()

    def _make_observation_space(self) -> spaces.Box:
        return spaces.Box(-np.inf, np.inf, (self.task.observation_size,), np.float32)

    # --- physics -----------------------------------------------------------------------------------------------
    def _apply_block_dynamics(self) -> None:
        """Put the task's masses (kg) and the friction factor on the blocks."""
        for name, mass in zip(self.task.block_names, self.task.masses):
            self.world.set_box_dynamics(name, float(mass), self.task.friction_scale)

    def _step_measuring(self) -> None:
        """One control period of physics, averaging each block's normal contact force with the arm (N)."""
        n, names = self.world.physics.substeps, self.task.block_names
        total = np.zeros(len(names))
        for _ in range(n):
            self.world.step(1)
            total += self.world.contact_forces(self.robot.handle.body, names)
        self._forces = total / n

    def _observe(self) -> np.ndarray:
        return self.task.experiment_observation(self._state, self.world, self._forces,
                                                1.0 - self._steps / self.budget)

    def _info(self) -> dict[str, Any]:
        return {"is_success": self._answer == self.task.correct, "answered": self._answer >= 0,
                "answer": self._answer, "correct_answer": self.task.correct, "poked": int(self._poked.sum()),
                "difficulty": self.task.difficulty}

    # --- gymnasium API -----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._steps, self._answer = 0, -1
        self._poked[:] = False
        self._forces = np.zeros(self.task.n_blocks)
        super().reset(seed=seed, options=options)
        self._apply_block_dynamics()
        return self._observe(), self._info()

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if not np.isfinite(action).all():  # a policy bug: hold still and do not answer
            action = np.nan_to_num(action, nan=-1.0)
        arm, answer = self.task.split_action(action)
        self._steps += 1
        if answer.given:
            self._answer = answer.choice
            return self._observe(), self.task.score(answer), True, False, self._info()
        self.robot.send_command(self.controller.to_command(arm, self._state, self.robot))
        self._step_measuring()
        self._state = self.robot.read_state()
        self._poked |= self._forces > POKE_FORCE * self.task.nominal_weight
        out_of_budget = self._steps >= self.budget
        return self._observe(), (-1.0 if out_of_budget else 0.0), out_of_budget, False, self._info()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "budget": self.budget, "n_blocks": self.task.n_blocks}


class ExperimentRandomizer(RandomizationWrapper):
    """The ``experiment`` group: difficulty, the blocks' common mass and friction factors (the same for every
    block of an episode, so absolute forces tell nothing alone) and every block's colour, drawn independently of
    its mass so that the look carries no information. Applied before the env's reset places the blocks."""

    GROUP = "experiment"

    @classmethod
    def declare(cls) -> ParamSpace:
        each = "drawn independently for every block"
        return ParamSpace([
            Param("experiment.difficulty", nominal=0.5, range=(0.0, 1.0), hard_limits=(0.0, 1.0), unit="1",
                  description="Heavier: heaviest/second-heaviest mass ratio 3.0 (0) to 1.1 (1); Towers: tallest "
                              "tower 2 (0) to 5 (1) blocks"),
            Param("experiment.block.mass", range=(0.5, 2.0), hard_limits=(0.05, 20.0), distribution="loguniform",
                  apply="scale", physical=True, unit="1", description="factor on every block's mass"),
            Param("experiment.block.friction", range=(0.7, 1.3), hard_limits=(0.05, 5.0), apply="scale",
                  physical=True, unit="1", description="every block's lateral friction coefficient (nominal 1)"),
            *(Param(f"experiment.block.color_{c}", nominal=0.55, range=(0.1, 0.9), hard_limits=(0.0, 1.0),
                    unit="1", description=f"block colour {c}, {each}") for c in "rgb"),
        ])

    def __init__(self, env: gym.Env, space: SpaceSpec = None, enabled: bool = True) -> None:
        super().__init__(env, space, enabled)
        if not isinstance(env.unwrapped, ExperimentEnv):
            raise ValueError("the experiment randomizer applies to the physics-experiment envs only")

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        base: ExperimentEnv = self.env.unwrapped
        task, sp = base.task, self.space
        if "experiment.difficulty" in values:
            task.difficulty = float(values["experiment.difficulty"])
        if "experiment.block.mass" in values:
            task.mass_scale = sp.apply("experiment.block.mass", 1.0, values["experiment.block.mass"])
        if "experiment.block.friction" in values:
            task.friction_scale = sp.apply("experiment.block.friction", 1.0, values["experiment.block.friction"])
        colors = [f"experiment.block.color_{c}" for c in "rgb"]
        if at_reset and all(name in sp for name in colors):
            for body in (base.world.bodies[name] for name in base.task.block_names):
                rgb = [sp[name].nominal if not self.enabled else self._rng.uniform(*sp[name].range) for name in colors]
                p.changeVisualShape(body, -1, rgbaColor=[*map(float, rgb), 1.0], physicsClientId=base.world.client)

    def on_scene_rebuilt(self) -> None:
        self.apply_values(self.values, at_reset=True)


def make_experiment_env(**kwargs: Any) -> ExperimentEnv:
    """Gymnasium entry point of the experiment ids."""
    return ExperimentEnv(**kwargs)


def register_experiment_envs() -> None:
    """Register the experiment ids (idempotent) and the ``experiment`` randomization group."""
    register_group(ExperimentRandomizer.GROUP, ExperimentRandomizer.declare)
    for env_id, (robot, task) in EXPERIMENT_ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim2real.envs.experiment_env:make_experiment_env",
                         max_episode_steps=BUDGET_STEPS, kwargs={"robot": robot, "task": task})
