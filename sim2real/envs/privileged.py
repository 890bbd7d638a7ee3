"""The privileged true state for an asymmetric critic, as one more observation key of a camera arm env."""
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
