"""Actuation randomization: action-frame rotation, action latency (sample-and-hold over control steps), action noise,
action repeat and control-period jitter."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from randomizers.params import Param, ParamSpace, Scalar
from randomizers.wrappers.base import RandomizationWrapper, SpaceSpec


class ActuationRandomizer(RandomizationWrapper):
    """Rotates, delays, perturbs and repeats actions in [-1, 1] (the env's normalized action space).

    Rotation θ (rad): the first two action components ``(a0, a1)`` are rotated by θ counter-clockwise, then clipped
    to the action bounds. Under end-effector delta control (``control_mode: ee``) these are the world-frame x, y
    displacement, so θ is a yaw miscalibration of the command frame (a robot or camera frame off by θ about z): the
    best action depends on θ, and θ can only be identified by acting and watching where the tool goes. The rotated
    command is what latency delays. Latency k: the action applied at step t is the one chosen at step t - k; for the
    first k steps of an episode the zero action is applied (no motion for delta controllers). Noise: N(0, std^2)
    per action element, then clipped to the action bounds. Repeat n: each step runs the inner env n times with the
    same action, rewards summed, stopping early at termination or truncation. Period jitter j: each control step
    lasts ``round(substeps * (1 + U(-j, j)))`` physics steps (at least one) instead of the nominal ``substeps``.
    """

    GROUP = "actuation"

    @classmethod
    def declare(cls) -> ParamSpace:
        return ParamSpace([
            Param("actuation.action_rotation", nominal=0.0, range=(0.0, 0.0), hard_limits=(-math.pi, math.pi),
                  unit="rad", description="yaw of the commanded displacement (rotation of action[0:2], "
                                          "counter-clockwise); off unless a launch file sets a range"),
            Param("actuation.latency", nominal=0, range=(0, 2), hard_limits=(0, 20), integer=True, physical=True,
                  unit="steps", description="action delay in control steps (sample-and-hold)"),
            Param("actuation.noise_std", nominal=0.0, range=(0.0, 0.05), hard_limits=(0.0, 1.0), physical=True,
                  unit="1 (normalized action)", description="gaussian action noise std"),
            Param("actuation.repeat", nominal=1, range=(1, 1), hard_limits=(1, 10), integer=True, physical=True,
                  unit="steps", description="inner env steps per action"),
            Param("actuation.period_jitter", nominal=0.0, range=(0.0, 0.1), hard_limits=(0.0, 0.9), physical=True,
                  unit="1 (fraction of the control period)", description="control-period jitter per step"),
        ])

    def __init__(self, env: gym.Env, space: SpaceSpec = None, enabled: bool = True) -> None:
        super().__init__(env, space, enabled)
        self._world = env.unwrapped.world  # type: ignore[attr-defined]
        self._substeps = int(self._world.physics.substeps)

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        if at_reset:
            self._queue: deque[Any] = deque()
            self._set_substeps(self._substeps)
        v = self.values  # read once here, not every step
        self._latency = int(v.get("actuation.latency", 0))
        self._std = float(v.get("actuation.noise_std", 0.0))
        self._jitter = float(v.get("actuation.period_jitter", 0.0))
        theta = float(v.get("actuation.action_rotation", 0.0))
        if theta and (len(self.action_space.shape) != 1 or self.action_space.shape[0] < 2):
            raise ValueError(f"actuation.action_rotation needs a vector action space with >= 2 components, "
                             f"got shape {self.action_space.shape}")
        self._rotation = (math.cos(theta), math.sin(theta)) if theta else None

    def _set_substeps(self, n: int) -> None:
        if self._world.physics.substeps != n:
            self._world.physics = replace(self._world.physics, substeps=n)

    def _rotate(self, action: Any) -> np.ndarray:
        """``action`` with components 0, 1 rotated by the sampled angle, clipped to the action bounds."""
        c, s = self._rotation  # type: ignore[misc]
        act = np.array(action, dtype=np.float64)
        act[0], act[1] = c * act[0] - s * act[1], s * act[0] + c * act[1]
        return self._clip(act)

    def _clip(self, act: np.ndarray) -> np.ndarray:
        """``act`` clipped to the action bounds in the space's dtype (np.clip's wrapper costs ~5 us a call)."""
        space = self.action_space
        if hasattr(space, "low"):
            act = np.minimum(np.maximum(act, space.low), space.high)
        return act.astype(space.dtype) if space.dtype is not None else act

    def transform_action(self, action: Any) -> Any:
        if self._rotation is not None:
            action = self._rotate(action)
        act = action
        if self._latency or self._queue:
            self._queue.append(np.array(action, dtype=np.float64))
            if len(self._queue) > self._latency:
                act = self._queue.popleft()
                while len(self._queue) > self._latency:  # latency shrank mid-episode: drop the oldest
                    act = self._queue.popleft()
            else:
                act = np.zeros(np.shape(action))
        if self._std > 0:
            act = self._clip(np.asarray(act, dtype=np.float64) + self.rng.normal(0.0, self._std, np.shape(act)))
        self._last_applied = act
        if self._jitter > 0:
            factor = 1.0 + self.rng.uniform(-self._jitter, self._jitter)
            self._set_substeps(max(1, int(round(self._substeps * factor))))
        return act

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        applied = self._last_applied
        total = float(reward)
        for _ in range(int(self.values.get("actuation.repeat", 1)) - 1):
            if terminated or truncated:
                break
            obs, reward, terminated, truncated, info = self.env.step(applied)
            total += float(reward)
            info = self._report(info)
        return obs, total, terminated, truncated, info
