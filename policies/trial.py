"""Trials for RL²: K inner episodes of one sampled environment.

:class:`TrialWrapper` turns an episodic env into a *trial* env. It resets the inner env itself
between the K episodes and reports ``terminated=True`` only after the K-th; the inner episode end
is exposed as ``info["episode_done"]`` (the RL² done-flag input), never as ``terminated``.

Randomization contract (chosen here, honoured by ``randomizers`` wrappers underneath): the wrapper
calls the inner ``reset`` with ``options["randomize"] = True`` at a trial start and
``options["randomize"] = False`` between the episodes of a trial. A domain-randomization wrapper
must resample its parameters only when ``options.get("randomize", True)`` is true. Caller options
passed to :meth:`TrialWrapper.reset` are forwarded (with ``randomize`` set to True).
"""
from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym

RANDOMIZE_OPTION = "randomize"


class TrialWrapper(gym.Wrapper):
    """Run ``episodes_per_trial`` inner episodes as one trial.

    Info keys on every step: ``episode_done`` (inner episode ended at this step), ``episode_index``
    (index of the episode the returned observation belongs to), ``inner_terminated``,
    ``inner_truncated`` and, when an inner episode ended inside the trial, ``final_observation``
    (the inner episode's last observation; the returned one is the next episode's first).
    ``truncated`` is True only if the *trial* was cut short by a wrapper outside this one.
    """

    def __init__(self, env: gym.Env, episodes_per_trial: int) -> None:
        super().__init__(env)
        if int(episodes_per_trial) < 1:
            raise ValueError(f"episodes_per_trial: expected an integer >= 1, got {episodes_per_trial!r}")
        self.episodes_per_trial = int(episodes_per_trial)
        self.episode_index = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Start a new trial: the inner reset is asked to resample (``options["randomize"]=True``)."""
        self.episode_index = 0
        obs, info = self.env.reset(seed=seed, options={**(options or {}), RANDOMIZE_OPTION: True})
        return obs, {**info, "trial_start": True, "episode_done": False, "episode_index": 0}

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "episode_done": bool(terminated or truncated), "inner_terminated": bool(terminated),
                "inner_truncated": bool(truncated), "episode_index": self.episode_index}
        if not (terminated or truncated):
            return obs, reward, False, False, info
        self.episode_index += 1
        if self.episode_index >= self.episodes_per_trial:
            return obs, reward, True, False, info
        final = obs
        obs, reset_info = self.env.reset(options={RANDOMIZE_OPTION: False})
        info = {**reset_info, **info, "final_observation": final, "episode_index": self.episode_index}
        return obs, reward, False, False, info


def find_trial_wrapper(env: gym.Env) -> TrialWrapper | None:
    """The outermost :class:`TrialWrapper` in ``env``'s wrapper chain, or None."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TrialWrapper):
            return env
        env = env.env
    return None
