"""A PyBullet physics client with a table-top scene: the simulated side of :class:`sim2real.hal.Scene`.

World frame: z up, table top at z = 0, the robot base at ``robot_base`` on the table's far edge.
"""
from __future__ import annotations

from dataclasses import dataclass

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


class PyBulletWorld(Scene):
    """One headless PyBullet client holding a table, optional floor, and named objects."""

    def __init__(self, physics: PhysicsConfig = PhysicsConfig(), table_size=(1.1, 0.7, 0.4),
                 table_offset_x: float = -0.3) -> None:
        self.physics = physics
        self.client = p.connect(p.DIRECT)
        p.setTimeStep(physics.timestep, physicsClientId=self.client)
        p.setGravity(*physics.gravity, physicsClientId=self.client)
        self.steps = 0
        self.bodies: dict[str, int] = {}
        self._movable: list[int] = []  # bodies with mass, whose contacts can outlive a snapshot restore
        half = np.array(table_size) / 2.0
        self.bodies["table"] = self._create_box(half, 0.0, (table_offset_x, 0.0, -half[2]), (0.95, 0.95, 0.95, 1.0), True)
        floor_half = (3.0, 3.0, 0.01)
        # Visual-only floor: nothing rests on it, so it costs the solver nothing.
        self.bodies["floor"] = self._create_box(floor_half, 0.0, (0.0, 0.0, -table_size[2] - 0.01), (0.6, 0.6, 0.62, 1.0), False)

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
    def _create_box(self, half_extents, mass, position, rgba, collision: bool, friction: float | None = None) -> int:
        c = self.client
        visual = p.createVisualShape(p.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba, physicsClientId=c)
        shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=half_extents, physicsClientId=c) if collision else -1
        body = p.createMultiBody(mass, shape, visual, position, physicsClientId=c)
        if friction is not None:
            p.changeDynamics(body, -1, lateralFriction=friction, physicsClientId=c)
        return body

    def _check_new(self, name: str) -> None:
        if name in self.bodies:
            raise ValueError(f"scene already has an object named {name!r}")

    def add_box(self, name, half_extents, mass, rgba, lateral_friction: float = 1.0) -> None:
        self._check_new(name)
        self.bodies[name] = self._create_box(half_extents, mass, (0.0, 0.0, half_extents[2]), rgba, True, lateral_friction)
        if mass > 0:
            self._movable.append(self.bodies[name])

    def add_marker(self, name, radius, rgba) -> None:
        self._check_new(name)
        visual = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=rgba, physicsClientId=self.client)
        self.bodies[name] = p.createMultiBody(0.0, -1, visual, (0.0, 0.0, 0.0), physicsClientId=self.client)

    def set_pose(self, name, position, orientation=None) -> None:
        body = self.bodies[name]
        p.resetBasePositionAndOrientation(body, position, _IDENTITY if orientation is None else orientation,
                                          physicsClientId=self.client)
        p.resetBaseVelocity(body, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=self.client)

    def pose(self, name):
        position, orientation = p.getBasePositionAndOrientation(self.bodies[name], physicsClientId=self.client)
        return np.asarray(position), np.asarray(orientation)

    def velocity(self, name):
        linear, angular = p.getBaseVelocity(self.bodies[name], physicsClientId=self.client)
        return np.asarray(linear), np.asarray(angular)

    # --- snapshots and rendering --------------------------------------------------------------------------
    def save(self) -> int:
        """Snapshot the whole world in memory (PyBullet ``saveState``); returns a snapshot id."""
        return p.saveState(physicsClientId=self.client)

    def restore(self, snapshot: int) -> None:
        """Restore a snapshot so that what follows does not depend on history.

        ``restoreState`` keeps contact manifolds that the snapshot did not have (e.g. robot–object contacts made
        since), which perturbs the next steps by ~1e-6 m. Parking movable objects far away and running collision
        detection first drops those manifolds, so the same seed gives bit-identical trajectories.
        """
        for body in self._movable:
            p.resetBasePositionAndOrientation(body, (0.0, 0.0, -100.0), _IDENTITY, physicsClientId=self.client)
        if self._movable:
            p.performCollisionDetection(physicsClientId=self.client)
        p.restoreState(stateId=snapshot, physicsClientId=self.client)

    def render(self, camera: Camera) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from the CPU renderer (headless)."""
        view = p.computeViewMatrix(camera.eye, camera.target, camera.up, physicsClientId=self.client)
        projection = p.computeProjectionMatrixFOV(camera.fov, camera.width / camera.height, camera.near, camera.far,
                                                  physicsClientId=self.client)
        _, _, rgba, _, _ = p.getCameraImage(camera.width, camera.height, view, projection,
                                            renderer=p.ER_TINY_RENDERER, physicsClientId=self.client)
        return np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[:, :, :3]

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
