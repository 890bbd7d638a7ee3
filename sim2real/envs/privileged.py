"""Privileged observation keys for an asymmetric critic: the true state of a camera arm env, the sampled world."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

STATE_KEY = "state"


class PrivilegedState(gym.ObservationWrapper):
    """Adds ``obs["state"]``: the task's goal observation of the true simulator state, concatenated as
    (``observation``, ``achieved_goal``, ``desired_goal``) — EE position m, EE velocity m/s, finger opening m, object
    state, goals m (world frame), float32.

    It reads the simulator directly, so sensing randomizers (noise, latency) underneath never touch it: what the
    critic sees is the truth. Only the critic may use this key (see ``network.critic_keys`` and
    :class:`sim2real.sb3_asymmetric.AsymmetricActorCriticPolicy`); deployments never provide it.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        arm = env.unwrapped
        if not all(hasattr(arm, name) for name in ("task", "robot", "world", "goal")):
            raise ValueError(f"{type(arm).__name__}: the privileged state needs an arm env (task, robot, world, goal)")
        if not isinstance(env.observation_space, spaces.Dict) or STATE_KEY in env.observation_space.spaces:
            raise ValueError(f"observation space must be a Dict without a {STATE_KEY!r} key")
        size = self._state().shape[0]
        self.observation_space = spaces.Dict({**env.observation_space.spaces,
                                              STATE_KEY: spaces.Box(-np.inf, np.inf, (size,), np.float32)})

    def _state(self) -> np.ndarray:
        arm = self.env.unwrapped
        obs = arm.task.goal_observation(arm.robot.read_state(), arm.world, arm.goal)
        return np.concatenate((obs["observation"], obs["achieved_goal"], obs["desired_goal"])).astype(np.float32)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, STATE_KEY: self._state()}


WORLD_KEY = "world"


class WorldParameters(gym.ObservationWrapper):
    """Adds ``obs["world"]``: the trial's sampled randomization values, for an asymmetric critic (RL²).

    One entry per continuous Param of the randomizers underneath (sorted by name), as
    ``(value − nominal) / scale`` where ``scale`` is half the hard-limit span when both limits are finite, else half
    the range given at construction, else 1 — so a yaw in rad (limits ±π) becomes θ/π and an actuator strength of
    ×1.5 (limits ×[0.05, 5]) becomes +0.2. A vector-valued Param contributes its mean; categorical Params are left
    out. Put it outside the randomizers: it reads their current ``values`` (drawn at the trial start, redrawn when
    a Param resamples every k steps). Only the critic may see this key (``network.critic_keys``); the actor and
    every export never do — a deployed policy must infer the world.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        from randomizers.wrappers.base import randomizers_in

        if not isinstance(env.observation_space, spaces.Dict) or WORLD_KEY in env.observation_space.spaces:
            raise ValueError(f"observation space must be a Dict without a {WORLD_KEY!r} key")
        owned = sorted(((p, w) for w in randomizers_in(env) for p in w.space if not p.is_categorical),
                       key=lambda pair: pair[0].name)
        if not owned:
            raise ValueError("world parameters: no continuous randomization Param underneath (add randomizers)")
        params = [p for p, _ in owned]
        self._owners = [w for _, w in owned]  # the randomizer holding each Param's current value
        self.names = [p.name for p in params]
        self._nominal = np.array([float(p.nominal) for p in params])
        self._scale = np.array([_scale(p.limits, (p.low, p.high)) for p in params])
        self.observation_space = spaces.Dict({**env.observation_space.spaces,
                                              WORLD_KEY: spaces.Box(-np.inf, np.inf, (len(params),), np.float32)})

    def _values(self) -> np.ndarray:
        raw = np.array([float(np.mean(w.values.get(name, nominal)))
                        for w, name, nominal in zip(self._owners, self.names, self._nominal)])
        return ((raw - self._nominal) / self._scale).astype(np.float32)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, WORLD_KEY: self._values()}


def _scale(limits: tuple[float, float], current_range: tuple[float, float]) -> float:
    """Half the finite hard-limit span, else half the current range, else 1."""
    for low, high in (limits, current_range):
        if np.isfinite(low) and np.isfinite(high) and high > low:
            return (high - low) / 2.0
    return 1.0
