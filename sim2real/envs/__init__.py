"""Gymnasium registration of the toolkit's environments (``sim2real/<Robot><Task>-v0``)."""
from __future__ import annotations

import gymnasium as gym

from sim2real.envs.arm_env import SO101_FRONT_CAMERA, SO101_SIDE_CAMERA, ArmEnv, GoalArmEnv, make_arm_env
from sim2real.envs.experiment_env import register_experiment_envs
from sim2real.envs.quadrotor_env import register_quadrotor_envs
from sim2real.tasks.quadrotor import ACTION_MODES, QUAD_ENVS

ARM_ENVS: dict[str, tuple[str, str]] = {
    "sim2real/PandaReach-v0": ("panda", "reach"),
    "sim2real/PandaPush-v0": ("panda", "push"),
    "sim2real/PandaPickAndPlace-v0": ("panda", "pick_and_place"),
    "sim2real/KukaReach-v0": ("kuka", "reach"),
    "sim2real/KukaPush-v0": ("kuka", "push"),
    "sim2real/SO101Reach-v0": ("so101", "reach"),
    "sim2real/SO101PickAndPlace-v0": ("so101", "pick_and_place"),
    "sim2real/SO101ReachTwoView-v0": ("so101", "reach"),
    "sim2real/SO101Push-v0": ("so101", "push"),
    "sim2real/SO101PushObjectPosition-v0": ("so101", "push"),
    "sim2real/SO101PushTwoView-v0": ("so101", "push"),
}
# Constructor options beyond robot and task, per id: the two-view ids are SO-101 tasks seen by a front and a side
# camera framing its workspace (``obs_mode: rgb`` images are 64 x 128: the views side by side); the ObjectPosition
# id observes only the cube's position (what the Push vision pipeline's perception gives its state policy).
_TWO_VIEWS = {"camera": SO101_FRONT_CAMERA, "extra_cameras": (SO101_SIDE_CAMERA,)}
ARM_ENV_OPTIONS: dict[str, dict] = {
    "sim2real/SO101ReachTwoView-v0": _TWO_VIEWS,
    "sim2real/SO101PushObjectPosition-v0": {"object_state": "position"},
    "sim2real/SO101PushTwoView-v0": {**_TWO_VIEWS, "object_state": "position"},
}
EPISODE_STEPS = 50  # panda-gym's episode length (2 s at 25 Hz)


def register_envs() -> None:
    """Register every environment id once (idempotent)."""
    for env_id, (robot, task) in ARM_ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim2real.envs.arm_env:make_arm_env", max_episode_steps=EPISODE_STEPS,
                         kwargs={"robot": robot, "task": task, **ARM_ENV_OPTIONS.get(env_id, {})})
    register_quadrotor_envs()
    register_experiment_envs()


def env_task(env_id: str, reward_type: str = "sparse"):
    """The :class:`~sim2real.tasks.base.ArmTask` a registered arm env id runs (its robot's layout and the id's
    ``object_state``), for code that runs the task outside the env (deployment, emulation, scripted episodes)."""
    from robots.registry import get_robot_spec
    from sim2real.tasks import make_task

    robot, task = ARM_ENVS[env_id]
    return make_task(task, get_robot_spec(robot), reward_type,
                     object_state=ARM_ENV_OPTIONS.get(env_id, {}).get("object_state"))


def control_modes(env_id: str) -> tuple[str, ...]:
    """Control (action) modes an environment id accepts; the first is its default."""
    if env_id in QUAD_ENVS:
        return ("ctbr",) + tuple(m for m in ACTION_MODES if m != "ctbr")
    return ("ee", "joints")


def registered_ids() -> list[str]:
    return sorted(i for i in gym.registry if i.startswith("sim2real/"))


register_envs()

__all__ = ["ArmEnv", "GoalArmEnv", "make_arm_env", "ARM_ENVS", "QUAD_ENVS", "register_envs", "registered_ids",
           "control_modes", "env_task"]
