"""Common machinery of the randomization wrappers: declared Params, seeding, re-application, per-env setters.

Each wrapper owns one group of Params (``dynamics.*``, ``actuation.*``, ...). At every reset it draws values (or
takes values pinned from outside, or nominals when switched off), applies them *from the saved nominal state* so
nothing compounds, and reports them in ``info["randomization"]``. Params declared with ``resample: steps`` are drawn
again every k control steps.

Setters meant for ``VecEnv.env_method`` (they walk the whole wrapper chain, so calling them on the outermost env
reaches every randomizer): :meth:`set_randomization_enabled`, :meth:`set_randomization_values`,
:meth:`clear_randomization_values`, :meth:`set_randomization_ranges`, :meth:`get_randomization_space`.
"""
from __future__ import annotations

import abc
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from randomizers.params import ParamSpace, ParamSpecError, Scalar, UnknownParamError

SpaceSpec = ParamSpace | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@dataclass(frozen=True)
class EnvTraits:
    """What decides which declared Params apply to an env: a movable ``object`` body, camera observations."""

    has_object: bool = False
    rgb: bool = False

    @classmethod
    def of(cls, env: gym.Env) -> EnvTraits:
        base = env.unwrapped
        bodies = getattr(getattr(base, "world", None), "bodies", {})
        return cls(has_object="object" in bodies, rgb=getattr(base, "obs_mode", "state") == "rgb")


def randomizers_in(env: gym.Env) -> Iterator[RandomizationWrapper]:
    """Every :class:`RandomizationWrapper` in ``env``'s wrapper chain, outermost first."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, RandomizationWrapper):
            yield env
        env = env.env


class RandomizationWrapper(gym.Wrapper, abc.ABC):
    """Base class; subclasses set ``GROUP``, implement :meth:`declare` and :meth:`apply_values`."""

    GROUP: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def declare(cls) -> ParamSpace:
        """The Params this wrapper owns, with default ranges (before any launch-file override)."""

    def __init__(self, env: gym.Env, space: SpaceSpec = None, enabled: bool = True) -> None:
        super().__init__(env)
        defaults = self.applicable_to(self.declare(), EnvTraits.of(env))
        if space is None:
            self.space = defaults
        elif isinstance(space, ParamSpace):
            for p in space:
                if p.name not in defaults:
                    raise UnknownParamError(p.name, defaults.names)
            self.space = space
        else:
            self.space = ParamSpace.from_dict(space, defaults=defaults)
        self.enabled = bool(enabled)
        self.values: dict[str, Scalar] = {}
        self._pinned: dict[str, Scalar] = {}
        self._rng = np.random.default_rng()
        self._steps = 0
        self._intervals = self.space.by_resample_k()
        listeners = getattr(env.unwrapped, "scene_listeners", None)
        if listeners is not None:  # ArmEnv.rebuild_scene (texture-cache flush) calls these
            listeners.append(self.on_scene_rebuilt)
        robot_listeners = getattr(env.unwrapped, "robot_listeners", None)
        if robot_listeners is not None:  # ArmEnv.rebuild_robot (link centre-of-mass randomization) calls these
            robot_listeners.append(self.on_robot_reloaded)

    # -- subclass hooks -------------------------------------------------------------------------------------
    @classmethod
    def applicable_to(cls, declared: ParamSpace, traits: EnvTraits) -> ParamSpace:
        """Restrict the declared Params to what an env with ``traits`` has (e.g. no object Params for Reach)."""
        return declared

    def on_scene_rebuilt(self) -> None:
        """The simulation was reset and its scene rebuilt at nominal values: re-apply what must persist."""

    def on_robot_reloaded(self) -> None:
        """The robot body was loaded again (nominal dynamics, no textures): re-apply what must persist on it."""

    @abc.abstractmethod
    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        """Put ``values`` (all Params at reset, the resampled ones in an episode) into effect, from nominal."""

    def begin_episode(self, obs: Any) -> Any:
        """Called with the first observation of an episode; returns the (possibly changed) observation."""
        return obs

    def transform_action(self, action: Any) -> Any:
        return action

    def transform_observation(self, obs: Any) -> Any:
        return obs

    # -- drawing ----------------------------------------------------------------------------------------------
    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def _draw(self, names: list[str] | None = None) -> dict[str, Scalar]:
        if not self.enabled:
            return self.space.nominal_values(names)
        return self.space.sample(self._rng, names=names, fixed={k: v for k, v in self._pinned.items()
                                                                   if names is None or k in names})

    # -- gymnasium ----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), zlib.crc32(self.GROUP.encode())])
        self._steps = 0
        # Between the episodes of an RL² trial (policies.trial.TrialWrapper) the caller passes
        # options["randomize"] = False: keep the trial's values, re-applied from nominal as always.
        if not self.values or (options or {}).get("randomize", True):
            self.values = self._draw()
        self.apply_values(self.values, at_reset=True)
        obs, info = self.env.reset(seed=seed, options=options)
        obs = self.begin_episode(obs)
        return self.transform_observation(obs), self._report(info)

    def step(self, action: Any):
        self._steps += 1
        changed: list[str] = []
        for k, names in self._intervals.items():
            if self._steps % k == 0:
                changed += names
        if changed:
            fresh = self._draw(changed)
            self.values.update(fresh)
            self.apply_values(fresh, at_reset=False)
        obs, reward, terminated, truncated, info = self.env.step(self.transform_action(action))
        info = self._report(info) if changed else info
        return self.transform_observation(obs), reward, terminated, truncated, info

    def _report(self, info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        merged = dict(info.get("randomization", {}))
        merged.update(self.values)
        info["randomization"] = merged
        return info

    # -- per-env setters (VecEnv.env_method) ----------------------------------------------------------------
    def set_randomization_enabled(self, enabled: bool) -> None:
        """Switch every randomizer in the chain on or off (off = nominal values, for evaluation)."""
        for w in randomizers_in(self):
            w.enabled = bool(enabled)

    def set_randomization_values(self, values: Mapping[str, Scalar]) -> None:
        """Pin values for the following episodes (e.g. chosen by a curriculum); checked against hard limits."""
        remaining = dict(values)
        known: list[str] = []
        for w in randomizers_in(self):
            known += w.space.names
            mine = {k: remaining.pop(k) for k in list(remaining) if k in w.space}
            for name, value in mine.items():
                param = w.space[name]
                if param.is_categorical:
                    if value not in param.choices:  # type: ignore[operator]
                        raise ParamSpecError(name, f"value {value!r} is not one of {list(param.choices or ())}")
                elif not param.limits[0] <= float(value) <= param.limits[1]:  # type: ignore[arg-type]
                    raise ParamSpecError(name, f"value {value} is outside hard limits {list(param.limits)}")
            w._pinned.update(mine)
        if remaining:
            raise UnknownParamError(next(iter(remaining)), known)

    def clear_randomization_values(self) -> None:
        """Forget pinned values: sample from the ranges again."""
        for w in randomizers_in(self):
            w._pinned.clear()

    def set_randomization_ranges(self, ranges: Mapping[str, Sequence[float]]) -> None:
        """Set current ranges ``{name: (low, high)}`` (validated against hard limits)."""
        remaining = dict(ranges)
        known: list[str] = []
        for w in randomizers_in(self):
            known += w.space.names
            for name in [k for k in remaining if k in w.space]:
                low, high = remaining.pop(name)
                w.space.set_range(name, low, high)
        if remaining:
            raise UnknownParamError(next(iter(remaining)), known)

    def get_randomization_space(self) -> dict[str, Any]:
        """The whole chain's ParamSpace as launch-file data (``ParamSpace.from_dict`` rebuilds it)."""
        space = ParamSpace()
        for w in randomizers_in(self):
            space = space.merge(w.space)
        return space.to_dict()
