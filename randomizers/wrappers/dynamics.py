"""Dynamics randomization: masses (with inertia), link and object centres of mass, object size, friction,
restitution, joint damping and friction, actuator strength and gains, gravity and physics timestep; read back
through PyBullet, always re-applied from the nominal values saved when the wrapper was built."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p

from randomizers.params import Param, ParamSpace, Scalar
from randomizers.wrappers.base import EnvTraits, RandomizationWrapper, SpaceSpec

_OBJECT = "dynamics.object."
_LINK_COM = "dynamics.link.com_"


class DynamicsRandomizer(RandomizationWrapper):
    """Randomizes the physics of an ``ArmEnv`` (handles: ``world``, ``robot``; see the env README)."""

    GROUP = "dynamics"

    @classmethod
    def declare(cls) -> ParamSpace:
        scale = dict(apply="scale", physical=True, unit="1")
        return ParamSpace([
            Param("dynamics.object.mass", range=(0.5, 2.0), hard_limits=(0.05, 20.0), **scale,
                  description="object mass factor (inertia scaled alike)"),
            Param("dynamics.object.friction", range=(0.5, 1.5), hard_limits=(0.0, 10.0), **scale,
                  description="object lateral friction factor"),
            Param("dynamics.object.spinning_friction", nominal=0.0, range=(0.0, 0.005), hard_limits=(0.0, 0.1),
                  physical=True, unit="m", description="object spinning (torsional) friction coefficient"),
            # Off by default: a cube slides rather than rolls, and any non-zero value makes Bullet's contact
            # solver ~45 % slower on Push (BENCHMARKS.md); give it a range to randomize it.
            Param("dynamics.object.rolling_friction", nominal=0.0, range=(0.0, 0.0), hard_limits=(0.0, 0.1),
                  physical=True, unit="m", description="object rolling friction coefficient"),
            Param("dynamics.object.scale", range=(0.8, 1.2), hard_limits=(0.25, 4.0), **scale,
                  description="object size factor (body rebuilt; rests on the table as before)"),
            *(Param(f"dynamics.object.com_{a}", apply="add", range=(-0.005, 0.005), hard_limits=(-0.02, 0.02),
                    unit="m", description=f"object centre-of-mass offset along its {a} axis (body rebuilt)")
              for a in "xyz"),
            Param("dynamics.object.restitution", nominal=0.0, range=(0.0, 0.3), hard_limits=(0.0, 1.0),
                  physical=True, unit="1", description="object restitution (bounciness)"),
            Param("dynamics.link.mass", range=(0.8, 1.2), hard_limits=(0.1, 10.0), **scale,
                  description="robot link mass factor (inertia scaled alike)"),
            # Off by default: PyBullet cannot move a link's centre of mass in place, so a new offset reloads the
            # robot's URDF (~50 ms on the Panda, as long as a 50-step episode); give it a range to randomize it.
            *(Param(f"dynamics.link.com_{a}", apply="add", range=(0.0, 0.0), hard_limits=(-0.05, 0.05), unit="m",
                    description=f"every robot link's centre-of-mass offset along its own {a} axis (robot reloaded)")
              for a in "xyz"),
            Param("dynamics.joint.damping", apply="add", range=(0.0, 0.5), hard_limits=(0.0, 10.0), physical=True,
                  unit="N*m*s/rad", description="added joint damping"),
            Param("dynamics.joint.friction", apply="add", range=(0.0, 0.5), hard_limits=(0.0, 20.0),
                  physical=True, unit="N*m (N for prismatic joints)",
                  description="Coulomb joint friction, taken off each position motor's max force"),
            Param("dynamics.actuator.strength", range=(0.7, 1.3), hard_limits=(0.05, 5.0), **scale,
                  description="motor max force/torque factor"),
            Param("dynamics.actuator.position_gain", range=(0.7, 1.3), hard_limits=(0.05, 5.0), **scale,
                  description="position-control gain factor"),
            Param("dynamics.actuator.velocity_gain", range=(0.7, 1.3), hard_limits=(0.05, 5.0), **scale,
                  description="velocity-control gain factor"),
            Param("dynamics.gravity.x", apply="add", range=(-0.1, 0.1), hard_limits=(-2.0, 2.0), unit="m/s^2"),
            Param("dynamics.gravity.y", apply="add", range=(-0.1, 0.1), hard_limits=(-2.0, 2.0), unit="m/s^2"),
            Param("dynamics.gravity.z", apply="add", range=(-0.2, 0.2), hard_limits=(-2.0, 2.0), unit="m/s^2"),
            Param("dynamics.timestep", range=(0.95, 1.05), hard_limits=(0.5, 2.0), **scale,
                  description="physics timestep factor (control period scales alike)"),
        ])

    def __init__(self, env: gym.Env, space: SpaceSpec = None, enabled: bool = True) -> None:
        self._world = env.unwrapped.world  # type: ignore[attr-defined]
        super().__init__(env, space, enabled)
        c, body = self._world.client, self._robot.handle.body
        self._links = list(range(-1, p.getNumJoints(body, physicsClientId=c)))
        infos = [p.getDynamicsInfo(body, link, physicsClientId=c) for link in self._links]
        self._link_mass = np.array([i[0] for i in infos])
        self._link_inertia = np.array([i[2] for i in infos])
        self._joint_damping = np.array([p.getJointInfo(body, j, physicsClientId=c)[6]
                                        for j in self._robot.handle.joint_indices])
        self._forces = self._robot.forces.copy()
        self._kp, self._kd = self._robot.position_gains.copy(), self._robot.velocity_gains.copy()
        self._physics = self._world.physics
        self._object: dict[str, Any] | None = None
        if "object" in self._world.bodies:
            info = p.getDynamicsInfo(self._world.bodies["object"], -1, physicsClientId=c)
            self._object = {"mass": info[0], "inertia": np.array(info[2]), "friction": info[1],
                            "spinning_friction": info[7], "rolling_friction": info[6], "restitution": info[5]}

    @property
    def _robot(self) -> Any:
        return self.env.unwrapped.robot  # type: ignore[attr-defined]  # replaced by ArmEnv.rebuild_scene

    @classmethod
    def applicable_to(cls, declared: ParamSpace, traits: EnvTraits) -> ParamSpace:
        return declared if traits.has_object else ParamSpace(q for q in declared if not q.name.startswith(_OBJECT))

    def on_scene_rebuilt(self) -> None:
        if self.values:
            self.apply_values(self.values, at_reset=True)

    on_robot_reloaded = on_scene_rebuilt  # a reloaded robot has the URDF's dynamics

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        v = dict(values)
        if any(k.startswith(_LINK_COM) for k in v) and self.env.unwrapped.rebuild_robot(  # type: ignore[attr-defined]
                [self.space.apply(_LINK_COM + a, 0.0, self.values[_LINK_COM + a]) if _LINK_COM + a in self.space
                 else 0.0 for a in "xyz"], may_flush=at_reset):
            return  # the reload called on_robot_reloaded / on_scene_rebuilt, which re-applied every value
        c, body, sp = self._world.client, self._robot.handle.body, self.space
        if "dynamics.link.mass" in v:
            s = float(v["dynamics.link.mass"])
            masses = sp.apply("dynamics.link.mass", self._link_mass, s).tolist()  # one call for every link
            for link, nominal, mass, inertia in zip(self._links, self._link_mass, masses, self._link_inertia * s):
                if nominal > 0:  # mass 0 marks a fixed base: leave it fixed
                    p.changeDynamics(body, link, mass=mass, localInertiaDiagonal=inertia.tolist(), physicsClientId=c)
        if "dynamics.joint.damping" in v:
            damping = sp.apply("dynamics.joint.damping", self._joint_damping, v["dynamics.joint.damping"])
            for j, d in zip(self._robot.handle.joint_indices, np.atleast_1d(damping)):
                p.changeDynamics(body, j, jointDamping=float(d), physicsClientId=c)
        if "dynamics.actuator.strength" in v or "dynamics.joint.friction" in v:
            forces = self._forces
            if "dynamics.actuator.strength" in v:
                forces = sp.apply("dynamics.actuator.strength", forces, v["dynamics.actuator.strength"])
            if "dynamics.joint.friction" in v:  # a joint has one motor, position-controlled every step
                forces = np.maximum(forces - float(v["dynamics.joint.friction"]), 0.0)
            self._robot.forces = np.asarray(forces, dtype=float)
        for name, attr, nominal in (("dynamics.actuator.position_gain", "position_gains", self._kp),
                                    ("dynamics.actuator.velocity_gain", "velocity_gains", self._kd)):
            if name in v:
                setattr(self._robot, attr, np.asarray(sp.apply(name, nominal, v[name]), dtype=float))
        if any(k.startswith("dynamics.gravity.") for k in v):
            gravity = [sp.apply(f"dynamics.gravity.{axis}", g, self.values[f"dynamics.gravity.{axis}"])
                       if f"dynamics.gravity.{axis}" in sp else g
                       for axis, g in zip("xyz", self._physics.gravity)]
            p.setGravity(*gravity, physicsClientId=c)
        if "dynamics.timestep" in v:
            dt = sp.apply("dynamics.timestep", self._physics.timestep, v["dynamics.timestep"])
            p.setTimeStep(dt, physicsClientId=c)
            self._world.physics = replace(self._physics, timestep=float(dt))
        if self._object is not None:
            self._apply_object(v)

    def _apply_object(self, v: Mapping[str, Scalar]) -> None:
        sp, nominal, world = self.space, self._object, self._world
        assert nominal is not None
        shape = [n for n in ("dynamics.object.scale", *(f"dynamics.object.com_{a}" for a in "xyz")) if n in sp]
        if any(n in v for n in shape):  # geometry: rebuild first (nominal dynamics), then re-apply the rest
            scale = sp.apply(shape[0], 1.0, self.values[shape[0]]) if shape[0] == "dynamics.object.scale" else 1.0
            com = [sp.apply(f"dynamics.object.com_{a}", 0.0, self.values[f"dynamics.object.com_{a}"])
                   if f"dynamics.object.com_{a}" in sp else 0.0 for a in "xyz"]
            if world.rebuild("object", scale, com):
                v = {**self.values, **v}
        c, obj = world.client, world.bodies["object"]
        kwargs: dict[str, Any] = {}
        if "dynamics.object.mass" in v:
            s = float(v["dynamics.object.mass"])
            kwargs["mass"] = sp.apply("dynamics.object.mass", nominal["mass"], s)
            kwargs["localInertiaDiagonal"] = list(nominal["inertia"] * s * world.specs["object"].scale ** 2)
        for key, kw in (("friction", "lateralFriction"), ("spinning_friction", "spinningFriction"),
                        ("rolling_friction", "rollingFriction"), ("restitution", "restitution")):
            name = _OBJECT + key
            if name in v:
                kwargs[kw] = sp.apply(name, nominal[key], v[name])
        if kwargs:
            p.changeDynamics(obj, -1, physicsClientId=c, **kwargs)
