"""Observation and reward normalization (launch key ``normalize``) with its statistics stored as data.

Training wraps the vectorized env in SB3's ``VecNormalize``. SB3's own ``VecNormalize.save``/``load`` pickle the
whole wrapper, and loading a pickle runs whatever code it names; here only the numbers are written, as
``vecnormalize.json`` beside every model (``RUN/final/``, each checkpoint): per observation key the running mean
and variance, the sample count, the return statistics and the clip settings. A run resumes its statistics from
the checkpoint; evaluation and deployment apply them through :class:`ObservationNormalizer` (plain numpy, the
formula of ``VecNormalize.normalize_obs``). Only float vector keys are normalized, never camera images.
"""
from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np

from sim2real.errors import UserError
from sim2real.io import atomic_write_json
from sim2real.user_files import read_json

STATS_FILE = "vecnormalize.json"
FORMAT = "sim2real-vecnormalize"
WHOLE = ""  # the key of a plain Box observation (not a dict)


def enabled(config: dict[str, Any]) -> bool:
    """True when the launch file normalizes observations or rewards."""
    settings = config.get("normalize") or {}
    return bool(settings.get("obs") or settings.get("reward"))


def normalized_keys(space: gym.Space) -> list[str]:
    """The observation keys that are normalized: every float Box of a Dict space (images stay raw), or
    :data:`WHOLE` for a float Box space."""
    if isinstance(space, gym.spaces.Dict):
        return [key for key, sub in space.spaces.items()
                if isinstance(sub, gym.spaces.Box) and np.issubdtype(sub.dtype, np.floating)]
    return [WHOLE] if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating) else []


def wrap(venv: Any, config: dict[str, Any]) -> Any:
    """``venv`` in SB3's ``VecNormalize`` per the launch file's ``normalize`` section (``venv`` itself when it
    normalizes nothing); the return discount is the algorithm's ``gamma``."""
    if not enabled(config):
        return venv
    from stable_baselines3.common.vec_env import VecNormalize

    settings = config["normalize"]
    keys = normalized_keys(venv.observation_space)
    dict_space = isinstance(venv.observation_space, gym.spaces.Dict)
    return VecNormalize(venv, norm_obs=bool(settings["obs"]) and bool(keys), norm_reward=bool(settings["reward"]),
                        clip_obs=settings["clip_obs"], clip_reward=settings["clip_reward"],
                        gamma=config["algo"]["gamma"], norm_obs_keys=keys if dict_space else None)


def _statistics(rms: Any) -> dict[str, Any]:
    return {"mean": np.asarray(rms.mean, dtype=float).ravel().tolist(),
            "var": np.asarray(rms.var, dtype=float).ravel().tolist(), "count": float(rms.count)}


def save_statistics(vec: Any, folder: str) -> None:
    """Write ``vec``'s (a ``VecNormalize``) statistics to ``folder``/:data:`STATS_FILE` (atomically)."""
    obs = {}
    if vec.norm_obs:
        rms = vec.obs_rms if isinstance(vec.obs_rms, dict) else {WHOLE: vec.obs_rms}
        obs = {key: _statistics(value) for key, value in rms.items()}
    atomic_write_json(os.path.join(folder, STATS_FILE), {
        "format": FORMAT, "version": 1, "norm_obs": bool(vec.norm_obs), "norm_reward": bool(vec.norm_reward),
        "clip_obs": float(vec.clip_obs), "clip_reward": float(vec.clip_reward), "epsilon": float(vec.epsilon),
        "gamma": float(vec.gamma), "obs": obs, "return": _statistics(vec.ret_rms)})


def _read(path: str) -> dict[str, Any]:
    """The statistics file at ``path``, its structure checked (a :class:`UserError` naming what is wrong)."""
    data = read_json(path, "normalization statistics")
    try:
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
        for section in [*data["obs"].values(), data["return"]]:
            mean, var = np.asarray(section["mean"], dtype=float), np.asarray(section["var"], dtype=float)
            if mean.shape != var.shape or not (np.isfinite(mean).all() and np.isfinite(var).all()) \
                    or (var < 0).any() or not math.isfinite(float(section["count"])):
                raise ValueError("a mean/var pair is not finite, of unequal length or negative")
        for key in ("clip_obs", "clip_reward", "epsilon"):
            if not float(data[key]) > 0:
                raise ValueError(f"{key} must be > 0")
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: not normalization statistics written by sim2real ({err})") from None
    return data


def restore_statistics(vec: Any, folder: str) -> None:
    """Load ``folder``'s statistics into ``vec`` (a ``VecNormalize`` built for the same launch file): resume."""
    path = os.path.join(folder, STATS_FILE)
    data = _read(path)
    rms = vec.obs_rms if isinstance(vec.obs_rms, dict) else {WHOLE: vec.obs_rms}
    targets = [(key, rms[key], data["obs"].get(key)) for key in rms] if vec.norm_obs else []
    for key, target, saved in targets + [("return", vec.ret_rms, data["return"])]:
        if saved is None or np.size(target.mean) != len(saved["mean"]):
            raise UserError(f"{path}: its statistics of {key!r} do not fit this launch file's observations")
        target.mean = np.asarray(saved["mean"], dtype=np.float64).reshape(np.shape(target.mean))
        target.var = np.asarray(saved["var"], dtype=np.float64).reshape(np.shape(target.var))
        target.count = float(saved["count"])


class ObservationNormalizer:
    """What eval and deploy apply before the policy acts: ``(obs - mean) / sqrt(var + epsilon)`` clipped to
    ``[-clip_obs, clip_obs]``, per normalized key, on a batch (leading axis) or a single observation."""

    def __init__(self, statistics: dict[str, dict[str, Any]], clip_obs: float, epsilon: float) -> None:
        self.statistics = {key: (np.asarray(s["mean"], dtype=np.float64), np.asarray(s["var"], dtype=np.float64))
                           for key, s in statistics.items()}
        self.clip_obs, self.epsilon = float(clip_obs), float(epsilon)

    def _one(self, key: str, value: Any) -> np.ndarray:
        mean, var = self.statistics[key]
        value = np.asarray(value)
        if value.shape[-1:] != mean.shape:
            raise ValueError(f"normalization: observation {key or 'vector'} has {value.shape[-1:]} values, the "
                             f"statistics {mean.shape}")
        out = np.clip((value - mean) / np.sqrt(var + self.epsilon), -self.clip_obs, self.clip_obs)
        return out.astype(value.dtype if np.issubdtype(value.dtype, np.floating) else np.float32)

    def __call__(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return {key: self._one(key, value) if key in self.statistics else value for key, value in obs.items()}
        return self._one(WHOLE, obs) if WHOLE in self.statistics else obs


def load_normalizer(model_path: str, config: dict[str, Any]) -> ObservationNormalizer | None:
    """The observation normalizer saved beside ``model_path`` when the launch file normalized observations (None
    otherwise); a :class:`UserError` when its statistics file is missing or malformed."""
    if not (config.get("normalize") or {}).get("obs"):
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), STATS_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{model_path}: its launch file sets normalize.obs, and there is no {STATS_FILE} beside it "
                        "(the statistics the policy was trained with)")
    data = _read(path)
    if not data["norm_obs"]:
        return None
    return ObservationNormalizer(data["obs"], data["clip_obs"], data["epsilon"])
