"""Perception → state policy: a Reach or Push policy trained on state observations, driven from camera images.

A pipeline folder holds ``pipeline.json`` (``{"perception": DIR, "state_policy": RUN_DIR, "goal_filter": F}``,
paths relative to the folder), the perception files and ``launch.yaml`` (the camera env: ``obs_mode: rgb``). A
pipeline is confined to its folder: every file it reads must lie inside it once symlinks are resolved (absolute
paths and ``..`` escapes are refused), and its state policy's model zip loads without unpickling
(:mod:`sim2real.sb3_safe_load`). Each step the CNN localizes the goal (and, for Push, the cube) in the image; the
state policy gets the robot part of the observation (``proprio``), then for Push the perceived cube position, as
``observation``; the EE position (Reach) or the perceived cube (Push) as achieved goal; the perceived goal as
desired goal — the layout of :meth:`sim2real.tasks.base.ArmTask.goal_observation` (Push with
``object_state="position"``). A pipeline is a :class:`~sim2real.agents.BatchPolicy`; its state policy is loaded by
the loader it is handed (:func:`sim2real.policy_files.load_state_policy`).

A goal does not move during an episode, so the per-frame estimates can be fused (``goal_filter``): ``none``
uses each frame's own estimate, ``first`` holds the estimate of the episode's first frame (the arm is at home and
hides nothing), ``median`` the element-wise median of every estimate so far. A slot forgets its estimates at a
trial start (``reset_trials``) and when its episode ends (``observe_batch``); before the first ``reset_trials``
every filter acts like ``none``.
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable, Sequence

import numpy as np

from sim2real.errors import UserError
from sim2real.agents import BatchPolicy
from sim2real.io import atomic_write_json
from sim2real.user_files import read_json
from sim2real.vision.model import Perception

PIPELINE = "pipeline.json"
STATE_DIR = "state"  # where write_pipeline puts the state policy run (launch.yaml + final/model.zip)
GOAL_FILTERS = ("none", "first", "median")


def state_observation(proprio: np.ndarray, goal: np.ndarray, cube: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The state policy's observation (float32) from the robot part, the goal and, for Push, the cube position (m):
    the layout of :meth:`~sim2real.tasks.base.ArmTask.goal_observation` (Push with ``object_state="position"``)."""
    proprio, goal = np.asarray(proprio, dtype=np.float32), np.asarray(goal, dtype=np.float32)
    if cube is None:
        return {"observation": proprio, "achieved_goal": proprio[:3], "desired_goal": goal}
    cube = np.asarray(cube, dtype=np.float32)
    return {"observation": np.concatenate((proprio, cube)), "achieved_goal": cube, "desired_goal": goal}


class VisionPipeline:
    """``act_batch`` on ``{"image", "proprio"}`` observations; ``goal_estimates`` are the goals (m) handed to the
    state policy at the last ``act_batch`` (after ``goal_filter``)."""

    def __init__(self, perception: Perception, state_policy: BatchPolicy, goal_filter: str = "none") -> None:
        if goal_filter not in GOAL_FILTERS:
            raise ValueError(f"goal_filter must be one of {GOAL_FILTERS}, got {goal_filter!r}")
        self.perception, self.state_policy, self.goal_filter = perception, state_policy, goal_filter
        self._estimates: np.ndarray | None = None
        self._seen: list[list[np.ndarray]] | None = None  # per observation slot: this episode's raw estimates

    @property
    def recurrent(self) -> bool:
        return self.state_policy.recurrent

    @property
    def episodes_per_trial(self) -> int:
        return self.state_policy.episodes_per_trial

    def reset_trials(self, n: int) -> None:
        """New trials begin in all ``n`` observation slots: forget the estimates of the previous episodes."""
        self._seen = [[] for _ in range(n)]
        self.state_policy.reset_trials(n)

    def observe_batch(self, rewards: Sequence[float], terminated: Sequence[bool],
                      truncated: Sequence[bool]) -> None:
        """A slot whose episode ended starts its next one from its own first frame."""
        for slot, ended in enumerate(bool(a or b) for a, b in zip(terminated, truncated)):
            if ended and self._seen is not None and slot < len(self._seen):
                self._seen[slot] = []
        self.state_policy.observe_batch(rewards, terminated, truncated)

    def _filtered(self, goals: np.ndarray) -> np.ndarray:
        if self.goal_filter == "none" or self._seen is None or len(self._seen) != len(goals):
            return goals
        for seen, goal in zip(self._seen, goals):
            seen.append(goal)
        if self.goal_filter == "first":
            return np.stack([seen[0] for seen in self._seen])
        return np.stack([np.median(seen, axis=0) for seen in self._seen]).astype(np.float32)

    def state_observations(self, observations: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        located = self.perception.locate(np.stack([o["image"] for o in observations]))
        goals = self._estimates = self._filtered(located["goal"].astype(np.float32))
        cubes = located.get("object")
        return [state_observation(o["proprio"], goal, None if cubes is None else cubes[k])
                for k, (o, goal) in enumerate(zip(observations, goals))]

    def act_batch(self, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
        return self.state_policy.act_batch(self.state_observations(observations))

    def goal_estimates(self) -> np.ndarray | None:
        return self._estimates


def write_pipeline(out_dir: str, perception_dir: str, state_policy: str, config: dict[str, Any],
                   goal_filter: str = "none") -> str:
    """Write a self-contained pipeline folder ``out_dir``: ``pipeline.json`` + ``launch.yaml``, the perception
    files (copied unless already there) and the state policy run's launch file and model (copied to ``state/``).
    Returns the pipeline.json path."""
    if goal_filter not in GOAL_FILTERS:
        raise UserError(f"goal filter must be one of {', '.join(GOAL_FILTERS)}, got {goal_filter!r}")
    from sim2real.launch import dump
    from sim2real.checkpoints import run_model_path
    from sim2real.vision.training import META, WEIGHTS

    _, model_path = run_model_path(state_policy)
    os.makedirs(os.path.join(out_dir, STATE_DIR, "final"), exist_ok=True)
    copies = [(os.path.join(perception_dir, name), os.path.join(out_dir, name)) for name in (META, WEIGHTS)]
    copies += [(os.path.join(state_policy, "launch.yaml"), os.path.join(out_dir, STATE_DIR, "launch.yaml")),
               (model_path, os.path.join(out_dir, STATE_DIR, "final", "model.zip"))]
    from sim2real.vec_normalize import STATS_FILE  # the state policy's normalize.obs statistics, where it has them

    stats = os.path.join(os.path.dirname(model_path), STATS_FILE)
    if os.path.isfile(stats):
        copies.append((stats, os.path.join(out_dir, STATE_DIR, "final", STATS_FILE)))
    for source, target in copies:
        if not os.path.exists(target) or not os.path.samefile(source, target):
            shutil.copyfile(source, target)
    dump(config, os.path.join(out_dir, "launch.yaml"))
    path = os.path.join(out_dir, PIPELINE)
    atomic_write_json(path, {"perception": ".", "state_policy": STATE_DIR, "goal_filter": goal_filter})
    return path


def _inside(folder: str, reference: str) -> str:
    """A path ``pipeline.json`` gives (relative to the pipeline ``folder``), symlinks resolved; a
    :class:`UserError` when it is absolute or leads outside the folder."""
    if os.path.isabs(reference):
        raise UserError(f"{folder}: {reference} is refused: a pipeline may only reference files inside its own "
                        "folder (give a path relative to it)")
    return _confined(folder, os.path.join(folder, reference))


def _confined(folder: str, path: str) -> str:
    """``path`` with symlinks resolved; a :class:`UserError` unless it lies inside the pipeline ``folder``."""
    root, resolved = os.path.realpath(folder), os.path.realpath(path)
    if os.path.commonpath([root, resolved]) != root:
        raise UserError(f"{folder}: {path} is refused: it leads outside the pipeline folder (to {resolved}); a "
                        "pipeline may only reference files inside its own folder")
    return resolved


def _check_state_policy(path: str, state_policy: BatchPolicy, env_id: str) -> None:
    """One line when the state policy observes another number of values than the pipeline hands it (robot part,
    plus the cube's position for tasks with an object)."""
    from sim2real.envs import env_task

    space = getattr(getattr(state_policy, "model", None), "observation_space", None)
    if space is None or "observation" not in getattr(space, "spaces", {}):
        return
    task = env_task(env_id)
    given = task.robot_observation_size + (0 if task.name == "reach" else 3)
    wanted = space["observation"].shape[0]
    if wanted != given:
        hint = "" if task.name == "reach" else \
            " (train it on sim2real/SO101PushObjectPosition-v0: the cube's position only)"
        raise UserError(f"{path}: its state policy observes {wanted} values and the pipeline gives {given} for "
                        f"{env_id}{hint}")


StateLoader = Callable[[str, dict[str, Any]], tuple[BatchPolicy, dict[str, Any]]]


def load_pipeline(path: str, config: dict[str, Any] | None,
                  load_state_policy: StateLoader) -> tuple[VisionPipeline, dict[str, Any]]:
    """(pipeline, camera-env launch config) from a pipeline folder; ``config`` overrides its launch.yaml;
    ``load_state_policy(model_path, state_config)`` loads the state policy (an SB3 model zip)."""
    from sim2real.envs import ARM_ENVS
    from sim2real.launch import resolve, same_env
    from sim2real.checkpoints import run_model_path
    from sim2real.vision.dataset import target_names
    from sim2real.vision.training import META, WEIGHTS, load

    spec = read_json(os.path.join(path, PIPELINE), "vision pipeline file")
    try:
        perception_dir = _inside(path, spec["perception"])
        for name in (META, WEIGHTS):
            _confined(path, os.path.join(perception_dir, name))
        perception = load(perception_dir)
        state_path = _inside(path, spec["state_policy"])
        goal_filter = spec.get("goal_filter", "none")
    except (OSError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a usable vision pipeline ({err})") from None
    _confined(path, os.path.join(state_path, "launch.yaml"))
    state_config, model_path = run_model_path(state_path)  # a run directory: launch.yaml + a model zip
    _confined(path, model_path)
    config = same_env(path, resolve(_inside(path, "launch.yaml")), config)  # a --launch of another env is refused
    env_id = config["env"]["id"]
    if config["env"]["obs_mode"] != "rgb" or env_id not in ARM_ENVS or ARM_ENVS[env_id][1] not in ("reach", "push"):
        raise UserError(f"{path}: a vision pipeline runs an arm Reach or Push env with obs_mode rgb, not {env_id} "
                        f"({config['env']['obs_mode']})")
    if tuple(perception.meta.targets) != target_names(ARM_ENVS[env_id][1]):
        raise UserError(f"{path}: its perception locates {', '.join(perception.meta.targets)}, and {env_id} needs "
                        f"{', '.join(target_names(ARM_ENVS[env_id][1]))}")
    state_policy, _ = load_state_policy(model_path, state_config)
    _check_state_policy(path, state_policy, env_id)
    try:
        return VisionPipeline(perception, state_policy, goal_filter), config
    except ValueError as err:  # a goal_filter this version does not know
        raise UserError(f"{path}: {err}") from None
