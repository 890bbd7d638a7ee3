"""A PyBullet physics client with a table-top scene: the simulated side of :class:`sim2real.hal.Scene`.

World frame: z up, table top at z = 0, the robot base at ``robot_base`` on the table's far edge.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pybullet as p

from sim2real.hal.scene import Scene

_IDENTITY = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class PhysicsConfig:
    """Physics timestep (s), substeps per control step, gravity (m/s², world frame)."""

    timestep: float = 1.0 / 500.0
    substeps: int = 20
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)

    @property
    def control_period(self) -> float:
        """Seconds of simulated time per control step."""
        return self.timestep * self.substeps


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at ``target`` from ``eye`` (m, world frame); ``fov`` degrees; image in pixels."""

    width: int = 84
    height: int = 84
    eye: tuple[float, float, float] = (0.55, 0.0, 0.55)
    target: tuple[float, float, float] = (-0.05, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 60.0
    near: float = 0.02
    far: float = 3.0


@dataclass(frozen=True)
class Lighting:
    """The TinyRenderer's single directional light; the defaults are PyBullet's own (z-up world).

    ``direction`` points from the scene toward the light (world frame, any length); ``color`` RGB in [0, 1];
    ``ambient``, ``diffuse``, ``specular`` are the Phong coefficients (dimensionless).
    """

    direction: tuple[float, float, float] = (-50.0, 30.0, 100.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05

    def render_kwargs(self) -> dict[str, object]:
        """Keyword arguments of ``pybullet.getCameraImage``."""
        return {"lightDirection": list(self.direction), "lightColor": list(self.color),
                "lightAmbientCoeff": self.ambient, "lightDiffuseCoeff": self.diffuse,
                "lightSpecularCoeff": self.specular}


SHAPES = ("box", "sphere", "cylinder")
SIZE_QUANTUM = 1e-4  # m: sizes of created shapes are rounded to this, so a bounded number of shapes ever exists


def _rotate(q, v) -> tuple[float, float, float]:
    """Vector ``v`` rotated by unit quaternion ``q`` (x, y, z, w); plain floats, ~1 us (called every step)."""
    x, y, z, w = q
    vx, vy, vz = v
    tx, ty, tz = 2.0 * (y * vz - z * vy), 2.0 * (z * vx - x * vz), 2.0 * (x * vy - y * vx)
    return (vx + w * tx + y * tz - z * ty, vy + w * ty + z * tx - x * tz, vz + w * tz + x * ty - y * tx)


def _quantize(size) -> tuple[float, ...]:
    return tuple(max(SIZE_QUANTUM, round(float(s) / SIZE_QUANTUM) * SIZE_QUANTUM) for s in size)


@dataclass(frozen=True)
class BodySpec:
    """How a single-link body was made: ``shape`` (box, sphere, cylinder), ``size`` half extents (box) or
    (radius, half height) (m), mass kg (0 = static), RGBA color, whether it collides, lateral friction."""

    shape: str
    size: tuple[float, ...]
    mass: float
    rgba: tuple[float, float, float, float]
    collision: bool = True
    friction: float | None = None
    scale: float = 1.0  # factor applied to ``size`` (m / m)
    com_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # centre of mass from the geometric centre, m (body)
    lift: float = field(default=0.0, compare=False)  # m: how much higher a rescaled body's centre rests


class PyBulletWorld(Scene):
    """One headless PyBullet client holding a table, optional floor, and named objects.

    ``bodies`` maps names to PyBullet body ids and stays current when bodies are rebuilt or removed;
    ``layout_version`` changes whenever a name gets another id or bodies are added or removed, i.e. whenever an
    earlier :meth:`save` snapshot no longer fits (``restoreState`` needs the same bodies in the same slots).
    ``lighting`` is used by every :meth:`render` (changing it costs no extra render).
    """

    def __init__(self, physics: PhysicsConfig = PhysicsConfig(), table_size=(1.1, 0.7, 0.4),
                 table_offset_x: float = -0.3) -> None:
        self.physics = physics
        self.client = p.connect(p.DIRECT)
        self.lighting = Lighting()
        self.table_size, self.table_offset_x = tuple(table_size), float(table_offset_x)
        self.layout_version = 0
        self._build_base()

    def _build_base(self) -> None:
        physics, table_size = self.physics, self.table_size
        p.setTimeStep(physics.timestep, physicsClientId=self.client)
        p.setGravity(*physics.gravity, physicsClientId=self.client)
        self.steps = 0
        self.bodies: dict[str, int] = {}
        self.specs: dict[str, BodySpec] = {}  # how each rebuildable body was made
        self._movable: list[int] = []  # bodies with mass, whose contacts can outlive a snapshot restore
        self._shapes: dict[tuple, tuple[int, int]] = {}  # (shape, size, collision) -> (collision id, visual id)
        self._com: dict[int, tuple[float, ...]] = {}  # body id -> centre-of-mass offset (m, body frame), non-zero
        self._glue: list[int] = []  # fixed constraints made by glue()
        half = tuple(np.array(table_size) / 2.0)
        self._place_new("table", BodySpec("box", half, 0.0, (0.95, 0.95, 0.95, 1.0)),
                        (self.table_offset_x, 0.0, -half[2]))
        # Bullet multiplies the two bodies' restitutions: with 1 here an object's own restitution is that of its
        # contact with the table (the robot's links keep 0, so they never bounce off it).
        p.changeDynamics(self.bodies["table"], -1, restitution=1.0, physicsClientId=self.client)
        # Visual-only floor: nothing rests on it, so it costs the solver nothing.
        self._place_new("floor", BodySpec("box", (3.0, 3.0, 0.01), 0.0, (0.6, 0.6, 0.62, 1.0), collision=False),
                        (0.0, 0.0, -table_size[2] - 0.01))
        self.layout_version += 1

    def reset_scene(self) -> None:
        """``resetSimulation`` (frees every body, shape, texture and snapshot) and rebuild the table and floor.

        The owner must rebuild robots and task objects afterwards; ``physics`` and ``lighting`` are kept.
        """
        p.resetSimulation(physicsClientId=self.client)
        self._build_base()

    # --- time -------------------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time in seconds since creation."""
        return self.steps * self.physics.timestep

    def step(self, substeps: int | None = None) -> None:
        """Advance physics by ``substeps`` (default: one control period)."""
        n = self.physics.substeps if substeps is None else substeps
        for _ in range(n):
            p.stepSimulation(physicsClientId=self.client)
        self.steps += n

    # --- scene ------------------------------------------------------------------------------------------
    def _check_new(self, name: str) -> None:
        if name in self.bodies:
            raise ValueError(f"scene already has an object named {name!r}")

    def add_box(self, name, half_extents, mass, rgba, lateral_friction: float = 1.0) -> None:
        self._check_new(name)
        spec = BodySpec("box", tuple(float(h) for h in half_extents), float(mass), tuple(rgba), True,
                        lateral_friction)
        self._place_new(name, spec, (0.0, 0.0, half_extents[2]))

    def add_shape(self, name: str, shape: str, size: tuple[float, ...], rgba, position,
                  orientation=None, mass: float = 0.0, collision: bool = False) -> None:
        """A single-link body: ``box`` (size = half extents, m), ``sphere`` (radius,) or ``cylinder``
        (radius, half height); visual-only unless ``collision``. Sizes are rounded to :data:`SIZE_QUANTUM`."""
        self._check_new(name)
        spec = BodySpec(shape, _quantize(size), float(mass), tuple(rgba), collision)
        self._place_new(name, spec, position, orientation)

    def remove(self, name: str) -> None:
        """Delete a body and its name."""
        self._forget(name)
        self.layout_version += 1

    def body_replaced(self) -> None:
        """An owner removed or added a body the world does not name (e.g. a reloaded robot): snapshots are stale."""
        self.layout_version += 1

    def _forget(self, name: str) -> None:
        body = self.bodies.pop(name)
        self.specs.pop(name, None)
        self._com.pop(body, None)
        if body in self._movable:
            self._movable.remove(body)
        p.removeBody(body, physicsClientId=self.client)

    def rebuild(self, name: str, scale: float = 1.0, com_offset=(0.0, 0.0, 0.0)) -> bool:
        """Rebuild body ``name`` (made by :meth:`add_box`/:meth:`add_shape`) at ``scale`` times its original size
        (rounded to :data:`SIZE_QUANTUM`) with its centre of mass ``com_offset`` (m, body frame) from the
        geometric centre.

        PyBullet cannot rescale a body or move its centre of mass in place, so the body is removed and created
        again, at rest with nominal dynamics (re-apply mass, friction, ... afterwards), keeping its color and
        texture. :meth:`set_pose` lifts a rescaled body by the change of its half height, so what rested on the
        table still does. Returns False (and does nothing) when scale and offset are unchanged.
        """
        old = self.specs[name]
        com = tuple(float(x) for x in com_offset)
        if old.scale == float(scale) and old.com_offset == com:
            return False
        c = self.client
        look = p.getVisualShapeData(self.bodies[name], flags=p.VISUAL_SHAPE_DATA_TEXTURE_UNIQUE_IDS,
                                    physicsClientId=c)
        position, orientation = self.pose(name)
        position[2] -= old.lift
        half_height = old.size[0] if old.shape == "sphere" else old.size[-1]
        spec = replace(old, scale=float(scale), com_offset=com, lift=(float(scale) - 1.0) * half_height)
        previous = self.bodies[name]
        self._forget(name)
        self._place_new(name, spec, position, orientation, previous)
        if look:
            p.changeVisualShape(self.bodies[name], -1, rgbaColor=look[0][7], textureUniqueId=look[0][8],
                                physicsClientId=c)
        return True

    def _shape_ids(self, spec: BodySpec) -> tuple[int, int]:
        """(collision, visual) shape ids, created once per shape and size: PyBullet frees shapes only on reset."""
        size = spec.size if spec.scale == 1.0 else _quantize([s * spec.scale for s in spec.size])
        key = (spec.shape, size, spec.collision)
        if key not in self._shapes:
            c = self.client
            geom = {"box": p.GEOM_BOX, "sphere": p.GEOM_SPHERE, "cylinder": p.GEOM_CYLINDER}[spec.shape]
            dims: dict[str, object] = {"halfExtents": size} if spec.shape == "box" else {"radius": size[0]}
            visual = p.createVisualShape(geom, length=2.0 * size[-1], physicsClientId=c, **dims) \
                if spec.shape == "cylinder" else p.createVisualShape(geom, physicsClientId=c, **dims)
            collision = -1
            if spec.collision:
                collision = p.createCollisionShape(geom, height=2.0 * size[-1], physicsClientId=c, **dims) \
                    if spec.shape == "cylinder" else p.createCollisionShape(geom, physicsClientId=c, **dims)
            self._shapes[key] = (collision, visual)
        return self._shapes[key]

    def _place_new(self, name: str, spec: BodySpec, position, orientation=None, previous: int | None = None) -> None:
        if spec.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {spec.shape!r}")
        collision, visual = self._shape_ids(spec)
        c = self.client
        quat = _IDENTITY if orientation is None else tuple(orientation)
        body = p.createMultiBody(spec.mass, collision, visual, tuple(position), quat,
                                 baseInertialFramePosition=spec.com_offset, physicsClientId=c)
        p.changeVisualShape(body, -1, rgbaColor=spec.rgba, physicsClientId=c)
        if spec.friction is not None:
            p.changeDynamics(body, -1, lateralFriction=spec.friction, physicsClientId=c)
        if any(spec.com_offset):
            self._com[body] = spec.com_offset
        if spec.mass > 0:
            self._movable.append(body)
        if body != previous:  # a rebuilt body usually gets its old id back: snapshots still fit
            self.layout_version += 1
        self.bodies[name], self.specs[name] = body, spec
        if spec.lift or any(spec.com_offset):  # createMultiBody put the centre of mass at ``position``
            self.set_pose(name, position, quat)

    def add_marker(self, name, radius, rgba) -> None:
        self._check_new(name)
        visual = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=rgba, physicsClientId=self.client)
        self.bodies[name] = p.createMultiBody(0.0, -1, visual, (0.0, 0.0, 0.0), physicsClientId=self.client)
        self.layout_version += 1

    def set_pose(self, name, position, orientation=None) -> None:
        """Place ``name``'s geometric centre at ``position`` at rest (a rescaled body: see :meth:`rebuild`)."""
        body = self.bodies[name]
        quat = _IDENTITY if orientation is None else orientation
        spec = self.specs.get(name)
        if spec is not None and (spec.lift or body in self._com):
            position = np.array(position, dtype=float)
            position[2] += spec.lift
            if body in self._com:  # PyBullet places the centre of mass
                position += _rotate(quat, self._com[body])
        p.resetBasePositionAndOrientation(body, position, quat, physicsClientId=self.client)
        p.resetBaseVelocity(body, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=self.client)

    def pose(self, name):
        """(geometric centre m, quaternion x, y, z, w) of ``name``, world frame."""
        body = self.bodies[name]
        position, orientation = p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        com = self._com.get(body)
        if com is not None:
            return np.subtract(position, _rotate(orientation, com)), np.asarray(orientation)
        return np.asarray(position), np.asarray(orientation)

    def velocity(self, name):
        linear, angular = p.getBaseVelocity(self.bodies[name], physicsClientId=self.client)
        return np.asarray(linear), np.asarray(angular)

    def contact_forces(self, body: int, names: list[str]) -> np.ndarray:
        """Normal contact force (N) between ``body`` (any body id, e.g. a robot's) and each object of ``names``,
        summed over contact points, at the last physics step."""
        index = {self.bodies[name]: i for i, name in enumerate(names)}
        forces = np.zeros(len(names))
        for contact in p.getContactPoints(body, physicsClientId=self.client):  # (flag, A, B, ..., normal force [9])
            if contact[2] in index:
                forces[index[contact[2]]] += contact[9]
        return forces

    def set_box_dynamics(self, name: str, mass: float, lateral_friction: float) -> None:
        """Mass (kg, with the inertia of a uniform box of its size) and lateral friction coefficient of box
        ``name``, made by :meth:`add_box`."""
        a, b, c = (2.0 * h * self.specs[name].scale for h in self.specs[name].size)  # edges, m
        inertia = [mass * (b * b + c * c) / 12.0, mass * (a * a + c * c) / 12.0, mass * (a * a + b * b) / 12.0]
        p.changeDynamics(self.bodies[name], -1, mass=float(mass), localInertiaDiagonal=inertia,
                         lateralFriction=float(lateral_friction), physicsClientId=self.client)

    def glue(self, name: str, to: str | None = None, max_force: float = 1000.0) -> None:
        """Fix body ``name`` to body ``to`` (or to the world when None) at their present relative pose, with a
        fixed constraint of at most ``max_force`` N; :meth:`unglue_all` removes every such constraint."""
        c = self.client
        child = p.getBasePositionAndOrientation(self.bodies[name], physicsClientId=c)
        if to is None:
            constraint = p.createConstraint(self.bodies[name], -1, -1, -1, p.JOINT_FIXED, (0.0, 0.0, 0.0),
                                            (0.0, 0.0, 0.0), child[0], childFrameOrientation=child[1],
                                            physicsClientId=c)
        else:
            parent = p.getBasePositionAndOrientation(self.bodies[to], physicsClientId=c)
            inverse = p.invertTransform(*parent)
            position, orientation = p.multiplyTransforms(*inverse, *child)
            constraint = p.createConstraint(self.bodies[to], -1, self.bodies[name], -1, p.JOINT_FIXED,
                                            (0.0, 0.0, 0.0), position, (0.0, 0.0, 0.0),
                                            parentFrameOrientation=orientation, physicsClientId=c)
        p.changeConstraint(constraint, maxForce=float(max_force), physicsClientId=c)
        self._glue.append(constraint)

    def unglue_all(self) -> None:
        """Remove every constraint :meth:`glue` made."""
        for constraint in self._glue:
            p.removeConstraint(constraint, physicsClientId=self.client)
        self._glue.clear()

    # --- snapshots and rendering --------------------------------------------------------------------------
    def save(self) -> int:
        """Snapshot the whole world in memory (PyBullet ``saveState``, ~3 ms for a Panda scene); returns its id."""
        return p.saveState(physicsClientId=self.client)

    def discard(self, snapshot: int) -> None:
        """Free a snapshot made by :meth:`save`."""
        p.removeState(snapshot, physicsClientId=self.client)

    def restore(self, snapshot: int) -> None:
        """Restore a snapshot so that what follows does not depend on history.

        ``restoreState`` keeps contact manifolds that the snapshot did not have (e.g. robot–object contacts made
        since), which perturbs the next steps by ~1e-6 m. Parking movable objects far away and running collision
        detection first drops those manifolds, so the same seed gives bit-identical trajectories.
        """
        for i, body in enumerate(self._movable):  # 10 m apart: parked bodies must not touch each other either
            p.resetBasePositionAndOrientation(body, (10.0 * i, 0.0, -100.0), _IDENTITY, physicsClientId=self.client)
        if self._movable:
            p.performCollisionDetection(physicsClientId=self.client)
        p.restoreState(stateId=snapshot, physicsClientId=self.client)

    def render(self, camera: Camera) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from the CPU renderer (headless), lit by ``lighting``."""
        view = p.computeViewMatrix(camera.eye, camera.target, camera.up, physicsClientId=self.client)
        projection = p.computeProjectionMatrixFOV(camera.fov, camera.width / camera.height, camera.near, camera.far,
                                                  physicsClientId=self.client)
        _, _, rgba, _, _ = p.getCameraImage(camera.width, camera.height, view, projection,
                                            renderer=p.ER_TINY_RENDERER, physicsClientId=self.client,
                                            **self.lighting.render_kwargs())
        return np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[:, :, :3]

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
