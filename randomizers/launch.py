"""The ``randomizers:`` list of a launch file: validate it and wrap an env with the randomizers it asks for.

One entry per group; wrappers are stacked from the env outward in the order dynamics, (other registered groups),
visual, actuation, sensing, whatever the order in the file (image corruptions then act on the randomized render,
and delays on everything)::

    randomizers:
      - group: dynamics                 # dynamics | actuation | sensing | visual
        params:                         # optional: overrides of the group's declared Params, by name
          - {name: dynamics.object.mass, range: [0.5, 2.0], distribution: loguniform}
      - group: visual
        textures: {n_unique: 1000, heldout_families: [cells, dots], size: 64, seed: 0, split: train}
        # or textures: {directory: path/to/photos, size: 64, heldout_fraction: 0.2, split: train}
        texture_cache: 4096             # textures loaded per env before its scene is rebuilt (frees them all)
      - group: sensing
        enabled: false                  # keep the entry, use nominal values (e.g. for an evaluation run)

Every mistake raises :class:`RandomizerConfigError` naming the entry, e.g. ``randomizers[1] (visual): ...``.
``sim2real randomizers list ENV_ID`` prints every Param with nominal value, default range, hard limits and unit.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from randomizers.params import ParamSpace, ParamSpecError
from randomizers.textures import ImageDirTextureSet, TextureSet, TextureSetError, TextureSource
from randomizers.textures.pybullet_cache import PyBulletTextureCache
from randomizers.wrappers import WRAPPERS, RandomizationWrapper
from randomizers.wrappers.base import EnvTraits
from randomizers.wrappers.visual import VisualRandomizer

ORDER = ("dynamics", "visual", "actuation", "sensing")  # innermost first; other groups go right after dynamics
ENTRY_KEYS = ("group", "params", "enabled", "textures", "texture_cache")
VISUAL_ONLY = ("textures", "texture_cache")


class RandomizerConfigError(ValueError):
    """A ``randomizers:`` entry a user got wrong; the message names the entry."""


@dataclass
class RandomizerEntry:
    """One validated entry: the wrapper class, its ParamSpace and its options."""

    group: str
    wrapper: type[RandomizationWrapper]
    space: ParamSpace
    enabled: bool = True
    textures: Mapping[str, Any] | None = None
    texture_cache: int = 4096
    texture_source: TextureSource | None = field(default=None, repr=False)

    def build(self, env: gym.Env) -> RandomizationWrapper:
        """Wrap ``env`` with this entry's randomizer."""
        if self.wrapper is VisualRandomizer:
            return VisualRandomizer(env, self.space, self.enabled, textures=self.texture_source,
                                    texture_cache=PyBulletTextureCache(capacity=self.texture_cache))
        return self.wrapper(env, self.space, self.enabled)


def wrapper_classes() -> dict[str, type[RandomizationWrapper]]:
    """Group name → wrapper class: the built-in ones and any imported subclass with a ``GROUP``."""
    found: dict[str, type[RandomizationWrapper]] = dict(WRAPPERS)
    todo = list(RandomizationWrapper.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if isinstance(getattr(cls, "GROUP", None), str):
            found.setdefault(cls.GROUP, cls)
    return found


def texture_source(spec: Mapping[str, Any] | None) -> TextureSource | None:
    """A texture set from a ``textures:`` mapping (``directory`` → user images, else procedural)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise TextureSetError(f"textures must be a mapping, got {spec!r}")
    kwargs = dict(spec)
    try:
        if "directory" in kwargs:
            return ImageDirTextureSet(**kwargs)
        return TextureSet(**kwargs)
    except TypeError as err:
        raise TextureSetError(f"textures: {err}") from None


def parse_entry(index: int, entry: Any, traits: EnvTraits,
                classes: Mapping[str, type[RandomizationWrapper]]) -> RandomizerEntry:
    """Validate ``randomizers[index]`` for an env with ``traits``."""
    where = f"randomizers[{index}]"
    if not isinstance(entry, Mapping) or "group" not in entry:
        raise RandomizerConfigError(f"{where}: expected a mapping with a 'group' key, got {entry!r}")
    group = entry["group"]
    where = f"{where} ({group})"
    if group not in classes:
        raise RandomizerConfigError(f"{where}: unknown group; known groups: {', '.join(sorted(classes))}")
    unknown = sorted(set(map(str, entry)) - set(ENTRY_KEYS))
    if unknown:
        raise RandomizerConfigError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(ENTRY_KEYS)}")
    wrapper = classes[group]
    if wrapper is not VisualRandomizer and any(k in entry for k in VISUAL_ONLY):
        raise RandomizerConfigError(f"{where}: {' and '.join(VISUAL_ONLY)} only apply to group visual")
    enabled, cache = entry.get("enabled", True), entry.get("texture_cache", 4096)
    if not isinstance(enabled, bool):
        raise RandomizerConfigError(f"{where}: enabled must be true or false, got {enabled!r}")
    if isinstance(cache, bool) or not isinstance(cache, int) or cache < 64:
        raise RandomizerConfigError(f"{where}: texture_cache must be an integer >= 64, got {cache!r}")
    params = entry.get("params") or []
    try:
        defaults = wrapper.applicable_to(wrapper.declare(), traits)
        space = ParamSpace.from_dict(params, defaults=defaults)
        source = texture_source(entry.get("textures"))
    except (ParamSpecError, TextureSetError) as err:
        raise RandomizerConfigError(f"{where}: {err}") from None
    return RandomizerEntry(group, wrapper, space, enabled, entry.get("textures"), cache, source)


def parse_randomizers(entries: Sequence[Any], traits: EnvTraits) -> list[RandomizerEntry]:
    """Validate a whole ``randomizers:`` list; returns the entries innermost first."""
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Sequence):
        raise RandomizerConfigError(f"randomizers: expected a list of entries, got {entries!r}")
    classes = wrapper_classes()
    parsed = [parse_entry(i, e, traits, classes) for i, e in enumerate(entries)]
    seen: dict[str, int] = {}
    for i, e in enumerate(parsed):
        if e.group in seen:
            raise RandomizerConfigError(f"randomizers[{i}] ({e.group}): group already listed at "
                                        f"randomizers[{seen[e.group]}]")
        seen[e.group] = i
    rank = {g: (0 if g == "dynamics" else 2 + ORDER.index(g)) for g in ORDER}
    return sorted(parsed, key=lambda e: rank.get(e.group, 1))


def wrap(env: gym.Env, entries: Sequence[Any]) -> gym.Env:
    """``env`` wrapped with the randomizers of a ``randomizers:`` list (validated against this env)."""
    for entry in parse_randomizers(entries, EnvTraits.of(env)):
        env = entry.build(env)
    return env
