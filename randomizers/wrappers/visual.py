"""Visual randomization: textures and colors on every visible body (table, floor, object, robot links) and the
camera pose and field of view, re-applied from the look saved when the wrapper was built."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p

from randomizers.params import Param, ParamSpace, Scalar
from randomizers.textures import TextureSet, TextureSource
from randomizers.textures.pybullet_cache import PyBulletTextureCache
from randomizers.wrappers.base import RandomizationWrapper, SpaceSpec

SCENE_BODIES = ("table", "floor", "object")
_CAMERA = "visual.camera."


class VisualRandomizer(RandomizationWrapper):
    """Textures, colors and camera of an ``ArmEnv`` (camera Params only with ``obs_mode="rgb"``).

    Each surface (a scene body or a robot link) gets, with probability ``visual.texture.probability``, a texture
    drawn from ``textures`` (default: 1,000 procedural training textures), else its own color jittered by
    ``visual.color.jitter``. Chosen textures are reported in ``info["randomization"]["visual.textures"]``.

    Args:
        textures: texture source (a :class:`TextureSet` split or an :class:`ImageDirTextureSet`).
        texture_cache: PyBullet texture cache shared by the envs of this process (default: one per wrapper,
            capacity 4,096 textures; PyBullet cannot free textures, so keep ``n_unique`` within it).
    """

    GROUP = "visual"

    @classmethod
    def declare(cls) -> ParamSpace:
        add = dict(apply="add")
        return ParamSpace([
            Param("visual.texture.probability", nominal=0.0, range=(1.0, 1.0), hard_limits=(0.0, 1.0),
                  physical=True, unit="1", description="chance that a surface gets a random texture"),
            Param("visual.color.jitter", nominal=0.0, range=(0.0, 0.2), hard_limits=(0.0, 1.0), physical=True,
                  unit="1 (RGB in [0, 1])", description="uniform +- jitter of untextured surface colors"),
            *(Param(f"visual.camera.{a}", range=(-0.02, 0.02), hard_limits=(-0.3, 0.3), unit="m", **add,
                    description=f"camera eye offset along world {a}") for a in "xyz"),
            *(Param(f"visual.camera.target_{a}", range=(-0.02, 0.02), hard_limits=(-0.3, 0.3), unit="m", **add,
                    description=f"look-at offset along world {a}") for a in "xyz"),
            Param("visual.camera.fov", range=(-3.0, 3.0), hard_limits=(-30.0, 30.0), unit="deg", **add,
                  description="field-of-view offset"),
        ])

    def __init__(self, env: gym.Env, space: SpaceSpec = None, enabled: bool = True,
                 textures: TextureSource | None = None, texture_cache: PyBulletTextureCache | None = None) -> None:
        super().__init__(env, space, enabled)
        base = env.unwrapped
        self._world, self._base = base.world, base  # type: ignore[attr-defined]
        self.textures = textures if textures is not None else TextureSet(n_unique=1000, size=64)
        self.cache = texture_cache if texture_cache is not None else PyBulletTextureCache(capacity=4096)
        self._camera = base.camera  # type: ignore[attr-defined]
        c = self._world.client
        self._surfaces: list[tuple[str, int, int, tuple[float, ...]]] = []
        bodies = [(n, self._world.bodies[n]) for n in SCENE_BODIES if n in self._world.bodies]
        bodies.append(("robot", base.robot.handle.body))  # type: ignore[attr-defined]
        for label, body in bodies:
            for shape in p.getVisualShapeData(body, physicsClientId=c):
                link, rgba = shape[1], tuple(shape[7])
                self._surfaces.append((f"{label}:{link}", body, link, rgba))

    def applicable(self, declared: ParamSpace) -> ParamSpace:
        if getattr(self.env.unwrapped, "obs_mode", "state") == "rgb":
            return declared
        return ParamSpace(q for q in declared if not q.name.startswith(_CAMERA))

    @property
    def surfaces(self) -> list[str]:
        """Names ``body:link`` of the surfaces this wrapper restyles."""
        return [s[0] for s in self._surfaces]

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        v = self.values
        if at_reset or any(not k.startswith(_CAMERA) for k in values):
            self._restyle(float(v.get("visual.texture.probability", 0.0)), float(v.get("visual.color.jitter", 0.0)))
        if any(k.startswith(_CAMERA) for k in v):
            eye = [self.space.apply(f"{_CAMERA}{a}", e, v[f"{_CAMERA}{a}"]) for a, e in zip("xyz", self._camera.eye)]
            target = [self.space.apply(f"{_CAMERA}target_{a}", t, v[f"{_CAMERA}target_{a}"])
                      for a, t in zip("xyz", self._camera.target)]
            fov = self.space.apply(f"{_CAMERA}fov", self._camera.fov, v[f"{_CAMERA}fov"])
            self._base.camera = replace(self._camera, eye=tuple(eye), target=tuple(target), fov=float(fov))

    def _restyle(self, probability: float, jitter: float) -> None:
        c, rng = self._world.client, self.rng
        textured = rng.random(len(self._surfaces)) < probability
        keys = [self.textures.sample(rng) if t else None for t in textured]
        self.cache.ensure_room(c, [k for k in keys if k is not None])
        chosen: dict[str, str] = {}
        for (name, body, link, rgba), key in zip(self._surfaces, keys):
            if key is not None:
                tex = self.cache.texture_id(c, key, self.textures.image)
                p.changeVisualShape(body, link, textureUniqueId=tex, rgbaColor=[1, 1, 1, rgba[3]], physicsClientId=c)
                chosen[name] = key.cache_name()
            else:
                color = np.clip(np.asarray(rgba[:3]) + rng.uniform(-jitter, jitter, 3), 0.0, 1.0) if jitter > 0 \
                    else np.asarray(rgba[:3])
                p.changeVisualShape(body, link, textureUniqueId=-1, rgbaColor=[*color, rgba[3]], physicsClientId=c)
        self.values["visual.textures"] = chosen  # type: ignore[assignment]
