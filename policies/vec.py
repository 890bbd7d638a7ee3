"""Vectorized trial environments as the trainer sees them: batched torch tensors, trial-level resets.

Any object with the :class:`TrialVecEnv` shape can be trained on: :class:`SyncTrialVecEnv` (gymnasium
env factories), :class:`GymVectorTrialEnv` (a gymnasium ``VectorEnv`` with same-step autoreset),
:class:`SB3TrialVecEnv` (an SB3 ``VecEnv`` of trial-wrapped envs) and the torch-native
bandit/MDP envs in :mod:`policies.envs`. The observation returned on a trial's last step is already the
next trial's first one (auto-reset in the same step).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import gymnasium as gym
import numpy as np
import torch

from policies.spaces import OBS_KEY


@dataclass
class TrialStep:
    """One batched step. Shapes (N,) unless said; ``final_obs`` holds the last observations of trials
    that were *truncated* at this step (None when none were), for value bootstrapping. ``episode_success`` is 1
    where an episode ended at this step with ``info["is_success"]`` true (None when the envs report no success)."""

    obs: dict[str, torch.Tensor]
    reward: torch.Tensor
    episode_done: torch.Tensor
    trial_terminated: torch.Tensor
    trial_truncated: torch.Tensor
    final_obs: dict[str, torch.Tensor] | None = None
    episode_success: torch.Tensor | None = None


class TrialVecEnv(Protocol):
    """What the recurrent PPO trainer needs from a vectorized environment.

    Optionally, ``stages`` (env ranges, each a union of :func:`policies.subproc.pipeline_blocks` halves),
    ``step_async(stage, action)`` and ``step_wait(stage) -> TrialStep`` let the trainer compute one stage's actions
    while another steps (:class:`~policies.subproc.SubprocTrialVecEnv` with 2+ workers).
    """

    num_envs: int
    observation_space: gym.Space
    action_space: gym.Space

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]: ...

    def step(self, action: torch.Tensor) -> TrialStep: ...

    def close(self) -> None: ...


def _stack(obs_list: Sequence[Any]) -> dict[str, torch.Tensor]:
    if isinstance(obs_list[0], dict):
        return {k: torch.as_tensor(np.stack([o[k] for o in obs_list]), dtype=torch.float32) for k in obs_list[0]}
    return {OBS_KEY: torch.as_tensor(np.stack(obs_list), dtype=torch.float32)}


def _successes(infos: Sequence[dict[str, Any]], episode_done: Sequence[bool]) -> torch.Tensor | None:
    """(N,) 1.0 where an episode ended with ``is_success`` true; None when no env reports ``is_success``."""
    if not any("is_success" in info for info in infos):
        return None
    return torch.tensor([float(d and bool(info.get("is_success", False))) for info, d in zip(infos, episode_done)])


def _to_numpy_actions(action: torch.Tensor, space: gym.Space) -> np.ndarray:
    a = action.detach().cpu().numpy()
    return a.astype(np.int64) if isinstance(space, gym.spaces.Discrete) else a.astype(space.dtype)


class SyncTrialVecEnv:
    """Step gymnasium envs (each ending in a :class:`~policies.trial.TrialWrapper`) in this process."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]]) -> None:
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        return _stack([env.reset(seed=None if seed is None else seed + i)[0] for i, env in enumerate(self.envs)])

    def step(self, action: torch.Tensor) -> TrialStep:
        actions = _to_numpy_actions(action, self.action_space)
        obs_l, rew, ep_done, term, trunc, finals, infos = [], [], [], [], [], {}, []
        for i, env in enumerate(self.envs):
            obs, r, te, tr, info = env.step(actions[i])
            infos.append(info)
            ep_done.append(bool(info.get("episode_done", te or tr)) or te or tr)
            if te or tr:
                if tr and not te:
                    finals[i] = obs
                obs, _ = env.reset()
            obs_l.append(obs)
            rew.append(float(r))
            term.append(bool(te))
            trunc.append(bool(tr and not te))
        final_obs = None
        if finals:
            filled = [finals.get(i, obs_l[i]) for i in range(self.num_envs)]
            final_obs = _stack(filled)
        return TrialStep(_stack(obs_l), torch.tensor(rew), torch.tensor(ep_done, dtype=torch.float32),
                         torch.tensor(term, dtype=torch.float32), torch.tensor(trunc, dtype=torch.float32), final_obs,
                         _successes(infos, ep_done))

    def env_method(self, name: str, *args: Any, indices: Sequence[int] | None = None) -> list[Any]:
        """Call ``env.get_wrapper_attr(name)(*args)`` in the envs ``indices`` (default all); results in that order."""
        wanted = range(self.num_envs) if indices is None else indices
        return [self.envs[i].get_wrapper_attr(name)(*args) for i in wanted]

    def close(self) -> None:
        for env in self.envs:
            env.close()


class SB3TrialVecEnv:
    """Adapt a stable-baselines3 ``VecEnv`` whose sub-envs end in a :class:`~policies.trial.TrialWrapper`.

    SB3 ``dones`` are trial ends; ``TimeLimit.truncated`` marks truncated trials and
    ``terminal_observation`` their last observation.
    """

    def __init__(self, venv: Any) -> None:
        self.venv = venv
        self.num_envs = venv.num_envs
        self.observation_space = venv.observation_space
        self.action_space = venv.action_space

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        if seed is not None:
            self.venv.seed(seed)
        obs = self.venv.reset()
        return _stack(list(obs)) if not isinstance(obs, dict) else {
            k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()}

    def step(self, action: torch.Tensor) -> TrialStep:
        obs, rew, dones, infos = self.venv.step(_to_numpy_actions(action, self.action_space))
        obs_t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()} if isinstance(obs, dict) \
            else {OBS_KEY: torch.as_tensor(obs, dtype=torch.float32)}
        trunc = [bool(d and info.get("TimeLimit.truncated", False)) for d, info in zip(dones, infos)]
        term = [bool(d) and not t for d, t in zip(dones, trunc)]
        ep_done = [bool(info.get("episode_done", d)) or bool(d) for d, info in zip(dones, infos)]
        final_obs = None
        if any(trunc):
            final_obs = {k: v.clone() for k, v in obs_t.items()}
            for i, t in enumerate(trunc):
                if t:
                    last = infos[i]["terminal_observation"]
                    for k in final_obs:
                        src = last[k] if isinstance(last, dict) else last
                        final_obs[k][i] = torch.as_tensor(src, dtype=torch.float32)
        return TrialStep(obs_t, torch.as_tensor(rew, dtype=torch.float32),
                         torch.tensor(ep_done, dtype=torch.float32), torch.tensor(term, dtype=torch.float32),
                         torch.tensor(trunc, dtype=torch.float32), final_obs, _successes(infos, ep_done))

    def close(self) -> None:
        self.venv.close()


class GymVectorTrialEnv:
    """Adapt a gymnasium (>= 1.1) ``VectorEnv`` of trial-wrapped envs built with
    ``autoreset_mode=AutoresetMode.SAME_STEP`` (the default next-step mode would feed the policy a
    step whose action is ignored)."""

    def __init__(self, venv: Any) -> None:
        mode = getattr(venv, "metadata", {}).get("autoreset_mode")
        if getattr(mode, "name", str(mode)) != "SAME_STEP":
            raise ValueError(f"autoreset_mode: the vector env must use AutoresetMode.SAME_STEP, got {mode}")
        self.venv = venv
        self.num_envs = venv.num_envs
        self.observation_space = venv.single_observation_space
        self.action_space = venv.single_action_space

    @staticmethod
    def _obs(obs: Any) -> dict[str, torch.Tensor]:
        if isinstance(obs, dict):
            return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()}
        return {OBS_KEY: torch.as_tensor(obs, dtype=torch.float32)}

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        return self._obs(self.venv.reset(seed=seed)[0])

    def step(self, action: torch.Tensor) -> TrialStep:
        obs, rew, term, trunc, info = self.venv.step(_to_numpy_actions(action, self.action_space))
        ep_done = np.asarray(info.get("episode_done", np.zeros(self.num_envs, bool)), bool) | term | trunc
        trunc_only = trunc & ~term
        final_obs = None
        if trunc_only.any():
            finals = info["final_obs"]
            final_obs = _stack([finals[i] if trunc_only[i] else _index(obs, i) for i in range(self.num_envs)])
        return TrialStep(self._obs(obs), torch.as_tensor(rew, dtype=torch.float32),
                         torch.as_tensor(ep_done, dtype=torch.float32), torch.as_tensor(term, dtype=torch.float32),
                         torch.as_tensor(trunc_only, dtype=torch.float32), final_obs,
                         _successes(_env_infos(info, term | trunc, self.num_envs), ep_done))

    def close(self) -> None:
        self.venv.close()


def _env_infos(info: dict[str, Any], reset: np.ndarray, n: int) -> list[dict[str, Any]]:
    """Env ``i``'s ``is_success`` from a gymnasium vector ``info`` (arrays with ``_key`` masks): from
    ``final_info`` where the env was reset in this step (SAME_STEP autoreset: ``info`` then holds the reset's)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        source = info.get("final_info", {}) if reset[i] else info
        present = "is_success" in source and bool(np.asarray(source.get("_is_success", np.ones(n, bool)))[i])
        out.append({"is_success": bool(np.asarray(source["is_success"])[i])} if present else {})
    return out


def _index(obs: Any, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]
