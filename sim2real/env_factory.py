"""The launch file's environment, built the same way for training, evaluation and loading a policy's spaces.

A bottom module (as SB3's ``common/env_util.py``): it builds environments and imports nothing from training.
"""
from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym

from sim2real.errors import UserError


def make_env_fn(config: dict[str, Any], rank: int, seed_offset: int = 0) -> Callable[[], gym.Env]:
    """A picklable factory building the launch file's environment (for SubprocVecEnv workers).

    Layers, env outward: the registered env with gymnasium's TimeLimit, the launch file's randomizers
    (:func:`randomizers.launch.wrap`; outside the TimeLimit, so action repeat cannot stretch an episode past it),
    with ``asymmetric_critic`` the privileged true state (:class:`sim2real.envs.privileged.PrivilegedState`,
    outside the randomizers so their noise never reaches it), with ``critic_sees_world`` the sampled world
    (:class:`sim2real.envs.privileged.WorldParameters`), then SB3's Monitor.
    ``VecEnv.env_method("set_randomization_values", ...)`` reaches the randomizers through Monitor (SB3 looks
    methods up with ``get_wrapper_attr``).
    """
    env_cfg = config["env"]

    def build() -> gym.Env:
        import sim2real  # noqa: F401  (registers the environments inside worker processes)
        from stable_baselines3.common.monitor import Monitor

        env = gym.make(env_cfg["id"], obs_mode=env_cfg["obs_mode"], control_mode=env_cfg["control_mode"],
                       reward_type=env_cfg["reward_type"], max_episode_steps=env_cfg["max_episode_steps"])
        env = _randomized(env, config.get("randomizers") or [])
        if config.get("asymmetric_critic"):
            from sim2real.envs.privileged import PrivilegedState

            env = PrivilegedState(env)
        if config.get("critic_sees_world"):
            from sim2real.envs.privileged import WorldParameters

            env = WorldParameters(env)
        env = Monitor(env, info_keywords=("is_success",))
        env.reset(seed=config["seed"] + seed_offset + rank)
        return env

    return build


def _randomized(env: gym.Env, entries: list[Any]) -> gym.Env:
    """``env`` wrapped with the launch file's randomizers (entries were validated when the file was resolved)."""
    if not entries:
        return env
    from randomizers.launch import RandomizerConfigError, wrap

    try:
        return wrap(env, entries)
    except RandomizerConfigError as err:
        raise UserError(str(err)) from None


def make_batched_vec_env(config: dict[str, Any], seed_offset: int = 0, episodes_per_trial: int = 1):
    """``env.simulator: batched``: the launch file's ``n_envs`` quadrotors as one SB3 ``VecEnv`` on the numpy model
    (:class:`sim2real.envs.batched_quadrotor_env.BatchedQuadrotorVecEnv`), with its quadrotor randomization, reward
    and episode length; ``episodes_per_trial`` > 1 makes RL² trials of each vehicle."""
    from sim2real.envs.batched_quadrotor_env import BatchedQuadrotorVecEnv

    env_cfg = config["env"]
    try:
        return BatchedQuadrotorVecEnv(env_cfg["id"], config["n_envs"], control_mode=env_cfg["control_mode"],
                                      reward_type=env_cfg["reward_type"],
                                      max_episode_steps=env_cfg["max_episode_steps"],
                                      randomizers=config.get("randomizers") or [], seed=config["seed"] + seed_offset,
                                      episodes_per_trial=episodes_per_trial,
                                      action_rate_penalty=env_cfg.get("action_rate_penalty", 0.0))
    except ValueError as err:  # a randomizer entry the batched model cannot take
        raise UserError(str(err)) from None
