"""What the policy needs to know about gymnasium spaces, as plain serialisable data.

A :class:`PolicySpec` is stored next to exported graphs (JSON), so a deployment can rebuild the
observation order and the action mapping without the training code or pickles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch
from gymnasium import spaces

from policies.errors import ConfigError

OBS_KEY = "obs"  # key used when the observation space is a plain Box


@dataclass(frozen=True)
class ObsPart:
    """One observation entry: ``key``, ``shape`` and whether it is an image (uint8 → /255).

    Images are (C, H, W), or (H, W, C) with ``channels_last`` (camera frames as envs and cameras give them; the
    encoder transposes them itself, so exported graphs take frames as they come).
    """

    key: str
    shape: tuple[int, ...]
    image: bool
    uint8: bool
    channels_last: bool = False

    @property
    def chw(self) -> tuple[int, int, int]:
        """Image shape as (C, H, W)."""
        c, h, w = (self.shape[2], self.shape[0], self.shape[1]) if self.channels_last else self.shape
        return int(c), int(h), int(w)


@dataclass(frozen=True)
class ActionSpec:
    """Action space summary.

    Attributes:
        discrete: True for ``Discrete(n)``.
        n: number of discrete actions, or the Box dimension.
        low, high: Box bounds in env units (empty for discrete).
        squash: ``"tanh"`` or ``"clip"`` mapping of the raw Gaussian sample into ``[-1, 1]``.
    """

    discrete: bool
    n: int
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    squash: str = "tanh"

    @property
    def input_size(self) -> int:
        """Width of the previous-action input: 1 (the index, −1 at trial start) or the Box dimension."""
        return 1 if self.discrete else self.n


@dataclass(frozen=True)
class PolicySpec:
    """Observation parts (in input order) and the action spec."""

    obs_parts: tuple[ObsPart, ...]
    action: ActionSpec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PolicySpec":
        parts = tuple(ObsPart(p["key"], tuple(p["shape"]), bool(p["image"]), bool(p["uint8"]),
                              bool(p.get("channels_last", False))) for p in data["obs_parts"])
        a = data["action"]
        action = ActionSpec(bool(a["discrete"]), int(a["n"]), tuple(a["low"]), tuple(a["high"]), str(a["squash"]))
        return cls(parts, action)


def make_spec(observation_space: spaces.Space, action_space: spaces.Space, squash: str = "tanh") -> PolicySpec:
    """Summarise gymnasium spaces; raise :class:`ConfigError` for unsupported ones.

    Supported: ``Box`` (vector, or image with shape (C, H, W), or (H, W, C) when the last axis has 1, 3 or 4
    channels and the first does not), ``Dict`` of those (keys sorted),
    and ``Discrete``/``Box`` actions.
    """
    if isinstance(observation_space, spaces.Dict):
        items = sorted(observation_space.spaces.items())
    elif isinstance(observation_space, spaces.Box):
        items = [(OBS_KEY, observation_space)]
    else:
        raise ConfigError(f"observation_space: must be Box or Dict of Box, got {type(observation_space).__name__}")
    parts = []
    for key, space in items:
        if not isinstance(space, spaces.Box):
            raise ConfigError(f"observation_space[{key}]: must be Box, got {type(space).__name__}")
        image = len(space.shape) == 3
        if len(space.shape) not in (1, 3):
            raise ConfigError(f"observation_space[{key}]: shape must be (D,), (C, H, W) or (H, W, C), got {space.shape}")
        shape = tuple(int(s) for s in space.shape)
        last = image and shape[2] in (1, 3, 4) and shape[0] not in (1, 3, 4)
        parts.append(ObsPart(key, shape, image, space.dtype == np.uint8, last))
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise ConfigError("action_space: Discrete must start at 0")
        action = ActionSpec(True, int(action_space.n))
    elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ConfigError("action_space: Box bounds must be finite")
        action = ActionSpec(False, int(action_space.shape[0]), tuple(map(float, action_space.low)),
                            tuple(map(float, action_space.high)), squash)
    else:
        raise ConfigError(f"action_space: must be Discrete or 1-D Box, got {action_space}")
    return PolicySpec(tuple(parts), action)


def obs_to_tensors(obs: Any, spec: PolicySpec) -> dict[str, torch.Tensor]:
    """Batched observation (array or dict of arrays, leading batch dim) → dict of float tensors."""
    if not isinstance(obs, Mapping):
        obs = {OBS_KEY: obs}
    return {p.key: torch.as_tensor(np.asarray(obs[p.key]), dtype=torch.float32) for p in spec.obs_parts}


def raw_to_env_action(raw: torch.Tensor, action: ActionSpec) -> torch.Tensor:
    """Map the policy's raw output (index, or pre-squash Gaussian sample) to env units."""
    if action.discrete:
        return raw.long()
    unit = normalized_action(raw, action)
    low = torch.tensor(action.low, dtype=unit.dtype)
    high = torch.tensor(action.high, dtype=unit.dtype)
    return low + (unit + 1.0) * 0.5 * (high - low)


def normalized_action(raw: torch.Tensor, action: ActionSpec) -> torch.Tensor:
    """Raw Gaussian sample → action in ``[-1, 1]`` (the previous-action input of the next step)."""
    return torch.tanh(raw) if action.squash == "tanh" else raw.clamp(-1.0, 1.0)


def prev_action_input(raw: torch.Tensor, action: ActionSpec) -> torch.Tensor:
    """Raw action of shape (B,) or (B, n) → previous-action input (B, input_size)."""
    if action.discrete:
        return raw.reshape(-1, 1).float()
    return normalized_action(raw, action)


def first_prev_action(batch: int, action: ActionSpec) -> torch.Tensor:
    """Previous-action input at a trial's first step: index −1 (one-hot of zeros) or a zero vector."""
    if action.discrete:
        return torch.full((batch, 1), -1.0)
    return torch.zeros(batch, action.n)
