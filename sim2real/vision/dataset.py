"""Labelled renders: camera images of an arm env (with the launch file's randomizers), the positions of what a
perception must locate (:func:`target_names`: the goal, and the object of tasks that have one) and where each
appears in each camera view.

Image ``i`` of a set is the observation after ``reset(seed=seed + i)``: the randomizers reseed from the reset seed,
so a set does not depend on how its images were split between worker processes, and a cache file named by the
hash of (config, count, seed) can stand in for rendering it again.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, NamedTuple

import numpy as np

from sim2real.vision.cameras import keypoint_targets

Progress = Callable[[int, int, str], None]  # (units done, units in all, status) for progress displays
FORMAT = 4  # part of the cache key: bump when what a set holds changes


class Renders(NamedTuple):
    """``images`` (N, H, W, 3 uint8), ``goals`` (N, 3 × T; m, world frame: the positions of the T
    :func:`target_names`, in order) and ``keypoints`` (N, T × V, 2): target t in camera view v at row t × V + v,
    normalized image coordinates (see :func:`keypoint_targets`)."""

    images: np.ndarray
    goals: np.ndarray
    keypoints: np.ndarray


def target_names(task_name: str) -> tuple[str, ...]:
    """What a perception for this arm task locates: ``("goal",)`` for Reach, ``("object", "goal")`` with a cube."""
    return ("goal",) if task_name == "reach" else ("object", "goal")


def _targets(base) -> np.ndarray:
    """(T, 3) positions (m) of the env's :func:`target_names`."""
    return np.stack([np.asarray(base.goal if name == "goal" else base.world.pose(name)[0], dtype=np.float32)
                     for name in target_names(base.task.name)])


def _pose_arm(env, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Teleport the arm so its tool is part of the way from home to near the goal (fraction sqrt(U(0, 1)): most
    images near the end, where the arm covers the marker; 1.5 cm normal scatter), as during a Reach episode. With a
    cube (Push) the cube is first moved part of the way toward the goal and the tool goes to just behind it, low,
    as while pushing. Two control steps later (sensing randomizers act; an observation delayed by up to one step
    then shows the posed scene, not the one before) return the observation."""
    base = env.unwrapped
    robot = base.robot
    start = robot.read_state().ee_position
    aim = base.goal + rng.normal(0.0, 0.015, 3)
    if base.task.name != "reach":
        cube = base.world.pose("object")[0]
        along = rng.uniform(0.0, 1.0) * (base.goal[:2] - cube[:2]) + rng.normal(0.0, 0.01, 2)
        moved = np.append(cube[:2] + along, cube[2])
        base.world.set_pose("object", moved)
        away = moved[:2] - base.goal[:2]
        away = away / max(float(np.linalg.norm(away)), 1e-6)
        aim = np.append(moved[:2] + rng.uniform(0.02, 0.05) * away, rng.uniform(0.02, 0.06))
    target = start + np.sqrt(rng.uniform(0.0, 1.0)) * (aim - start)
    orientation = base.task.spec.end_effector.orientation
    for _ in range(10):  # damped-least-squares steps from the measured pose (ArmEnv's controller does one a step)
        base.set_arm_joints(robot.inverse_kinematics(target, orientation, robot.read_state()))
    hold = np.zeros(env.action_space.shape, dtype=np.float32)
    env.step(hold)
    return env.step(hold)[0]


def _render_range(config: dict[str, Any], start: int, stop: int, seed: int, progress: Progress | None = None,
                  arm_poses: float = 0.0) -> Renders:
    from sim2real.env_factory import make_env_fn

    env = make_env_fn({**config, "curriculum": None}, rank=0)()
    try:
        images, goals, keypoints = [], [], []
        for i in range(start, stop):
            obs, _ = env.reset(seed=seed + i)
            base = env.unwrapped
            rng = np.random.default_rng([seed + i, 1])
            if rng.random() < arm_poses:
                obs = _pose_arm(env, rng)
            images.append(obs["image"])
            targets = _targets(base)
            goals.append(targets.reshape(-1))
            views = (base.camera, *base.extra_cameras)
            keypoints.append(np.concatenate([keypoint_targets(views, t[None])[0] for t in targets]))
            if progress is not None:
                progress(i + 1 - start, stop - start, "")
    finally:
        env.close()
    return Renders(np.stack(images), np.stack(goals), np.stack(keypoints))


def render_dataset(config: dict[str, Any], n_images: int, seed: int, progress: Progress | None = None,
                   workers: int = 1, arm_poses: float = 0.0) -> Renders:
    """``n_images`` renders of the env's cameras after ``reset(seed=seed + i)``, made by ``workers`` processes.
    ``config`` must have ``obs_mode: rgb``; its randomizers are applied (the camera pose a randomizer moved is the
    one the keypoints are projected with). A fraction ``arm_poses`` of the images shows the arm moved toward the
    goal (:func:`_pose_arm`) instead of at home, so the arm in view and in front of the marker is no surprise."""
    workers = max(1, min(workers, n_images))
    if workers == 1:
        return _render_range(config, 0, n_images, seed, progress, arm_poses)
    bounds = np.linspace(0, n_images, workers + 1).astype(int)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = [pool.submit(_render_range, config, int(a), int(b), seed, None, arm_poses)
                 for a, b in zip(bounds[:-1], bounds[1:])]
        done = 0
        for finished in as_completed(parts):
            done += len(finished.result().images)
            if progress is not None:
                progress(done, n_images, f"{workers} processes")
        results = [part.result() for part in parts]
    return Renders(*(np.concatenate([r[k] for r in results]) for k in range(3)))


def dataset_key(config: dict[str, Any], n_images: int, seed: int, arm_poses: float = 0.0) -> str:
    """Hex digest naming the images :func:`render_dataset` makes from (env, randomizers, count, seed, arm poses)."""
    what = {"env": config["env"], "randomizers": config.get("randomizers") or [], "n": n_images, "seed": seed,
            "format": FORMAT}
    if arm_poses:
        what["arm_poses"] = arm_poses
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_dataset(config: dict[str, Any], n_images: int, seed: int, cache_dir: str | None,
                   progress: Progress | None = None, workers: int = 1, arm_poses: float = 0.0) -> Renders:
    """:func:`render_dataset`, read from / written to ``cache_dir/<key>.npz`` (atomically) when a folder is given."""
    if cache_dir is None:
        return render_dataset(config, n_images, seed, progress, workers, arm_poses)
    path = os.path.join(cache_dir, f"renders-{dataset_key(config, n_images, seed, arm_poses)}.npz")
    if os.path.isfile(path):
        with np.load(path) as data:
            if progress is not None:
                progress(n_images, n_images, f"read from {path}")
            return Renders(data["images"], data["goals"], data["keypoints"])
    renders = render_dataset(config, n_images, seed, progress, workers, arm_poses)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **renders._asdict())
    os.replace(tmp, path)
    return renders
