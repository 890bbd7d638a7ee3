"""Sensing randomization: vector observation noise and per-episode bias, observation delay, dropout (stale
values), and camera image corruptions (gaussian, salt-and-pepper, blur, JPEG)."""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from randomizers.image_noise import corrupt
from randomizers.params import Param, ParamSpace, Scalar
from randomizers.wrappers.base import EnvTraits, RandomizationWrapper

VECTOR_KEYS = ("observation", "proprio")  # dict observation entries that come from sensors
IMAGE_KEY = "image"


class SensingRandomizer(RandomizationWrapper):
    """Corrupts what the policy sees; goals (``desired_goal``/``achieved_goal``) are left exact for HER.

    Vector entries (units of the observation: m, m/s, ...): ``obs + bias + N(0, noise_std^2)`` where ``bias`` is
    drawn N(0, bias_std^2) per element once per episode; each element keeps its previous value with probability
    ``dropout``; the whole observation is delayed by ``delay`` control steps (the first one repeated at start).
    """

    GROUP = "sensing"

    @classmethod
    def declare(cls) -> ParamSpace:
        return ParamSpace([
            Param("sensing.obs.noise_std", nominal=0.0, range=(0.0, 0.002), hard_limits=(0.0, 0.1), physical=True,
                  unit="obs unit", description="gaussian noise std per step"),
            Param("sensing.obs.bias_std", nominal=0.0, range=(0.0, 0.002), hard_limits=(0.0, 0.1), physical=True,
                  unit="obs unit", description="std of a constant per-episode bias"),
            Param("sensing.obs.delay", nominal=0, range=(0, 1), hard_limits=(0, 20), integer=True, physical=True,
                  unit="steps", description="observation delay"),
            Param("sensing.obs.dropout", nominal=0.0, range=(0.0, 0.0), hard_limits=(0.0, 1.0), physical=True,
                  unit="1", description="probability an element is stale (previous value)"),
            Param("sensing.image.noise_std", nominal=0.0, range=(0.0, 5.0), hard_limits=(0.0, 64.0), physical=True,
                  unit="intensity levels"),
            Param("sensing.image.salt_pepper", nominal=0.0, range=(0.0, 0.01), hard_limits=(0.0, 0.5),
                  physical=True, unit="1", description="fraction of pixels set to black or white"),
            Param("sensing.image.blur_sigma", nominal=0.0, range=(0.0, 0.8), hard_limits=(0.0, 5.0), physical=True,
                  unit="px"),
            Param("sensing.image.jpeg_quality", nominal=100, range=(60, 100), hard_limits=(1, 100), integer=True,
                  physical=True, unit="1"),
        ])

    @classmethod
    def applicable_to(cls, declared: ParamSpace, traits: EnvTraits) -> ParamSpace:
        return ParamSpace(q for q in declared if traits.rgb or not q.name.startswith("sensing.image."))

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        if at_reset:
            self._bias: dict[str, np.ndarray] = {}
            self._biased = False
            self._previous: dict[str, np.ndarray] = {}
            self._history: deque[Any] = deque()
            self._keys: list[str] | None = None  # vector entries of this env's observations, found at first use
        v = self.values  # read once here, not every step
        self._image = any(k.startswith("sensing.image.") for k in v)
        self._std, self._drop = float(v.get("sensing.obs.noise_std", 0.0)), float(v.get("sensing.obs.dropout", 0.0))
        self._delay = int(v.get("sensing.obs.delay", 0))

    def begin_episode(self, obs: Any) -> Any:
        bias_std = float(self.values.get("sensing.obs.bias_std", 0.0))
        for key in self._vector_keys(obs):
            shape = np.shape(obs[key])
            self._bias[key] = self.rng.normal(0.0, bias_std, shape) if bias_std > 0 else np.zeros(shape)
        self._biased = bias_std > 0
        return obs

    def _vector_keys(self, obs: Any) -> list[str]:
        if self._keys is None:
            self._keys = [k for k in VECTOR_KEYS if isinstance(obs, Mapping) and k in obs]
        return self._keys

    def transform_observation(self, obs: Any) -> Any:
        v, std, drop, delay = self.values, self._std, self._drop, self._delay
        keys = self._vector_keys(obs)
        image = self._image and IMAGE_KEY in obs
        if not (image or delay or std > 0 or drop > 0 or self._biased or self._history):
            return obs  # nothing to do this episode: no copies per step
        out = dict(obs)
        for key in keys:
            raw = obs[key]
            x = raw + self._bias[key]  # float64: noise is added before rounding back to the obs dtype
            if std > 0:
                x += self.rng.normal(0.0, std, x.shape)
            if drop > 0 and key in self._previous:
                x = np.where(self.rng.random(x.shape) < drop, self._previous[key], x)
            self._previous[key] = x
            out[key] = x.astype(raw.dtype)
        if image:
            out[IMAGE_KEY] = corrupt(np.asarray(out[IMAGE_KEY]), self.rng,
                                     gaussian_std=float(v.get("sensing.image.noise_std", 0.0)),
                                     salt_pepper=float(v.get("sensing.image.salt_pepper", 0.0)),
                                     blur_sigma=float(v.get("sensing.image.blur_sigma", 0.0)),
                                     jpeg_quality=int(v.get("sensing.image.jpeg_quality", 100)))
        if not delay and not self._history:
            return out
        self._history.append(out)
        while len(self._history) > delay + 1:
            self._history.popleft()
        return self._history[0]
