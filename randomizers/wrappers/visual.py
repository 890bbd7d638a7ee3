"""Visual randomization: textures and colors on every visible body (table, floor, object, robot links), lighting,
distractor objects and the camera pose and field of view, re-applied from the look saved when the wrapper was
built."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p

from randomizers.params import Param, ParamSpace, Scalar
from randomizers.textures import TextureKey, TextureSet, TextureSource
from randomizers.textures.pybullet_cache import PyBulletTextureCache
from randomizers.wrappers.base import EnvTraits, RandomizationWrapper, SpaceSpec

SCENE_BODIES = ("table", "floor", "object")
DISTRACTOR_SHAPES = ("box", "sphere", "cylinder")
_CAMERA = "visual.camera."
_LIGHT = "visual.light."
_DISTRACTOR = "visual.distractor."


def _light_params() -> list[Param]:
    scale = dict(apply="scale", physical=True, unit="1")
    return [
        Param("visual.light.azimuth", apply="add", range=(-0.8, 0.8), hard_limits=(-math.pi, math.pi), unit="rad",
              description="light direction: rotation about world z"),
        Param("visual.light.elevation", apply="add", range=(-0.5, 0.3), hard_limits=(-1.0, 0.5), unit="rad",
              description="light direction: change of height above the horizon (nominal 1.04 rad)"),
        *(Param(f"visual.light.color_{c}", range=(0.75, 1.0), hard_limits=(0.0, 1.5), **scale,
                description=f"light color {c} factor") for c in "rgb"),
        Param("visual.light.ambient", range=(0.6, 1.4), hard_limits=(0.0, 3.0), **scale,
              description="ambient coefficient factor (nominal 0.6)"),
        Param("visual.light.diffuse", range=(0.5, 1.5), hard_limits=(0.0, 5.0), **scale,
              description="diffuse coefficient factor (nominal 0.35)"),
        Param("visual.light.specular", range=(0.0, 4.0), hard_limits=(0.0, 20.0), **scale,
              description="specular coefficient factor (nominal 0.05)"),
    ]


def _distractor_params() -> list[Param]:
    each = "drawn independently for every distractor"
    return [
        Param("visual.distractor.count", nominal=0, range=(0, 5), hard_limits=(0, 10), integer=True, physical=True,
              unit="1", description="visual-only distractor objects on the table"),
        Param("visual.distractor.shape", distribution="categorical", choices=DISTRACTOR_SHAPES,
              description=f"distractor shape, {each}"),
        Param("visual.distractor.size", nominal=0.03, range=(0.01, 0.05), hard_limits=(0.005, 0.15), physical=True,
              unit="m", description=f"half size (half edge / radius), {each}"),
        Param("visual.distractor.x", nominal=0.0, range=(-0.35, 0.2), hard_limits=(-0.85, 0.25), unit="m",
              description=f"position on the table (world x), {each}"),
        Param("visual.distractor.y", nominal=0.0, range=(-0.3, 0.3), hard_limits=(-0.35, 0.35), unit="m",
              description=f"position on the table (world y), {each}"),
        Param("visual.distractor.yaw", nominal=0.0, range=(-math.pi, math.pi), hard_limits=(-math.pi, math.pi),
              unit="rad", description=f"rotation about world z, {each}"),
    ]


class VisualRandomizer(RandomizationWrapper):
    """Textures, colors, lighting, distractors and camera of an ``ArmEnv`` (camera Params only with
    ``obs_mode="rgb"``).

    Each surface (a scene body, a robot link or a distractor) gets, with probability
    ``visual.texture.probability``, a texture drawn from ``textures`` (default: 1,000 procedural training
    textures), else its own color jittered by ``visual.color.jitter`` (distractors: a uniform random color).
    Lighting goes to ``world.lighting``, used by every render. Distractors are visual-only bodies resting on the
    table; the ``visual.distractor.*`` value reported is the first distractor's, the others are drawn from the
    same Params (one pinned value pins all). Chosen textures are reported in
    ``info["randomization"]["visual.textures"]``, distractors in ``info["randomization"]["visual.distractors"]``.

    Args:
        textures: texture source (a :class:`TextureSet` split or an :class:`ImageDirTextureSet`).
        texture_cache: PyBullet texture cache shared by the envs of this process (default: one per wrapper,
            capacity 4,096 textures). When it is full the env's scene is rebuilt (``ArmEnv.rebuild_scene``),
            which frees every texture, so any ``n_unique`` works.
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
            *_light_params(),
            *_distractor_params(),
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
        c = self._world.client
        self.cache.register_flush(c, lambda _client: base.rebuild_scene())  # type: ignore[attr-defined]
        self._camera = base.camera  # type: ignore[attr-defined]
        self._lighting = self._world.lighting
        self._distractors: list[str] = []
        self._applying = False
        self._painted: dict[str, tuple[int, tuple[float, ...]]] = {}  # label -> (texture id or -1, rgba)
        # (label, body name, link, nominal rgba); ids are looked up at use: rebuilds give bodies new ids
        self._surfaces: list[tuple[str, str, int, tuple[float, ...]]] = []
        for name in [n for n in SCENE_BODIES if n in self._world.bodies] + ["robot"]:
            for shape in p.getVisualShapeData(self._body(name), physicsClientId=c):
                link, rgba = shape[1], tuple(shape[7])
                self._surfaces.append((f"{name}:{link}", name, link, rgba))

    def _body(self, name: str) -> int:
        return self._base.robot.handle.body if name == "robot" else self._world.bodies[name]

    @classmethod
    def applicable_to(cls, declared: ParamSpace, traits: EnvTraits) -> ParamSpace:
        return declared if traits.rgb else ParamSpace(q for q in declared if not q.name.startswith(_CAMERA))

    @property
    def surfaces(self) -> list[str]:
        """Names ``body:link`` of the surfaces this wrapper restyles."""
        return [s[0] for s in self._surfaces]

    def _paint(self, only: str | None = None) -> None:
        """Give every surface (or those of body ``only``) the texture and color chosen at the last restyle."""
        c = self._world.client
        for label, name, link, _rgba in self._surfaces:
            if label in self._painted and only in (None, name):
                texture, rgba = self._painted[label]
                p.changeVisualShape(self._body(name), link, textureUniqueId=texture, rgbaColor=list(rgba),
                                    physicsClientId=c)

    def on_robot_reloaded(self) -> None:
        self._paint("robot")  # a reloaded robot shows the URDF's looks

    def on_scene_rebuilt(self) -> None:
        self._distractors = []  # resetSimulation removed them and freed every texture
        self.cache.forget(self._world.client)
        if self.values and not self._applying:  # someone else rebuilt the scene (e.g. a robot-reload flush)
            self.apply_values(self.values, at_reset=True)

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        self._applying = True  # a texture-cache flush inside rebuilds the scene: on_scene_rebuilt must not recurse
        try:
            self._apply(values, at_reset)
        finally:
            self._applying = False

    def _apply(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        v = self.values
        keys = set(values)
        if at_reset or any(not k.startswith((_CAMERA, _LIGHT)) for k in keys):
            self._restyle(float(v.get("visual.texture.probability", 0.0)), float(v.get("visual.color.jitter", 0.0)))
        if at_reset or any(k.startswith(_LIGHT) for k in keys):
            self._light(v)
        if any(k.startswith(_CAMERA) for k in v):
            eye = [self.space.apply(f"{_CAMERA}{a}", e, v[f"{_CAMERA}{a}"]) for a, e in zip("xyz", self._camera.eye)]
            target = [self.space.apply(f"{_CAMERA}target_{a}", t, v[f"{_CAMERA}target_{a}"])
                      for a, t in zip("xyz", self._camera.target)]
            fov = self.space.apply(f"{_CAMERA}fov", self._camera.fov, v[f"{_CAMERA}fov"])
            self._base.camera = replace(self._camera, eye=tuple(eye), target=tuple(target), fov=float(fov))

    def _light(self, v: Mapping[str, Any]) -> None:
        nominal, sp = self._lighting, self.space
        if not any(k.startswith(_LIGHT) for k in v):
            self._world.lighting = nominal
            return
        get = lambda name, x: sp.apply(name, x, v[name]) if name in v else x  # noqa: E731
        d = np.asarray(nominal.direction, dtype=float)
        azimuth = get(f"{_LIGHT}azimuth", math.atan2(d[1], d[0]))
        elevation = get(f"{_LIGHT}elevation", math.atan2(d[2], math.hypot(d[0], d[1])))
        direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                     math.sin(elevation))
        color = tuple(float(get(f"{_LIGHT}color_{ch}", x)) for ch, x in zip("rgb", nominal.color))
        self._world.lighting = replace(nominal, direction=direction, color=color,
                                       ambient=float(get(f"{_LIGHT}ambient", nominal.ambient)),
                                       diffuse=float(get(f"{_LIGHT}diffuse", nominal.diffuse)),
                                       specular=float(get(f"{_LIGHT}specular", nominal.specular)))

    def _each(self, name: str, index: int) -> Any:
        """Distractor ``index``'s value of Param ``name``: the episode's value for the first, else a fresh draw."""
        if index == 0 or name in self._pinned or not self.enabled:
            return self.values[name]
        return self.space[name].sample(self.rng)

    def _plan_distractors(self, probability: float) -> list[dict[str, Any]]:
        count = int(self.values.get(f"{_DISTRACTOR}count", 0))
        plan = []
        for i in range(count):
            shape, size = str(self._each(f"{_DISTRACTOR}shape", i)), float(self._each(f"{_DISTRACTOR}size", i))
            x, y = float(self._each(f"{_DISTRACTOR}x", i)), float(self._each(f"{_DISTRACTOR}y", i))
            yaw = float(self._each(f"{_DISTRACTOR}yaw", i))
            texture = self.textures.sample(self.rng) if self.rng.random() < probability else None
            plan.append({"shape": shape, "size": size, "position": (x, y, size), "yaw": yaw,
                         "color": tuple(float(c) for c in self.rng.uniform(0.0, 1.0, 3)), "texture": texture})
        return plan

    def _place_distractors(self, plan: list[dict[str, Any]]) -> None:
        world, c = self._world, self._world.client
        for name in self._distractors:
            world.remove(name)
        self._distractors = []
        for i, d in enumerate(plan):
            name = f"distractor{i}"
            size = (d["size"],) * 3 if d["shape"] == "box" else (d["size"],) * (1 if d["shape"] == "sphere" else 2)
            world.add_shape(name, d["shape"], size, (*d["color"], 1.0), d["position"],
                            p.getQuaternionFromEuler((0.0, 0.0, d["yaw"])))
            self._distractors.append(name)
            key: TextureKey | None = d["texture"]
            if key is not None:
                tex = self.cache.texture_id(c, key, self.textures.image)
                p.changeVisualShape(world.bodies[name], -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1],
                                    physicsClientId=c)

    def _restyle(self, probability: float, jitter: float) -> None:
        c, rng = self._world.client, self.rng
        textured = rng.random(len(self._surfaces)) < probability
        keys = [self.textures.sample(rng) if t else None for t in textured]
        plan = self._plan_distractors(probability)
        # room for every texture of this reset first: a flush (scene rebuild) must not undo half a scene
        self.cache.ensure_room(c, [k for k in [*keys, *(d["texture"] for d in plan)] if k is not None])
        if plan or self._distractors:
            self._place_distractors(plan)
        chosen: dict[str, str] = {}
        self._painted = {}
        for (label, name, link, rgba), key in zip(self._surfaces, keys):
            if key is not None:
                self._painted[label] = (self.cache.texture_id(c, key, self.textures.image), (1.0, 1.0, 1.0, rgba[3]))
                chosen[label] = key.cache_name()
            else:
                color = np.clip(np.asarray(rgba[:3]) + rng.uniform(-jitter, jitter, 3), 0.0, 1.0) if jitter > 0 \
                    else np.asarray(rgba[:3])
                self._painted[label] = (-1, (*map(float, color), rgba[3]))
        self._paint()
        self.values["visual.textures"] = chosen  # type: ignore[assignment]
        self.values["visual.distractors"] = [  # type: ignore[assignment]
            {**{k: d[k] for k in ("shape", "size", "position", "yaw")},
             "texture": d["texture"].cache_name() if d["texture"] is not None else None} for d in plan]
