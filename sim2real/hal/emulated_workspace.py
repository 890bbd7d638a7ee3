"""The physical surroundings of an emulated arm: table, task objects and goal, simulated around the measured arm.

The bus emulators (``sim2real emulate dynamixel``) simulate only the arm behind the wire protocol. A task with an
object (Push's cube) needs that object somewhere: an :class:`EmulatedWorkspace` is a :class:`Scene` that holds the
table, the task's objects and markers in its own PyBullet world, with a kinematic twin of the arm that follows the
joint angles the HAL measures, so the arm's real (emulated) motion pushes the objects. The coupling is one way: the
emulator's arm never feels the objects (for Push's 20 g cube against 2.9 N·m servos that is a small error), and the
twin follows the encoders, so it carries their errors (noise, backlash: milliradians).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pybullet as p

from sim2real.hal.scene import Scene
from sim2real.hal.types import RobotState
from sim2real.sim import Camera as View
from sim2real.sim import PhysicsConfig, PyBulletRobot, PyBulletWorld
from sim2real.tasks.base import ArmTask

MAX_TRACK_STEP = 0.1  # s: longest interval one track() simulates; a longer gap (a pause) is shortened to this


class EmulatedWorkspace(Scene):
    """A PyBullet world (table top at z = 0, world frame as in training) with ``task``'s objects and markers
    (``task.setup`` is called here) and a twin of ``task.spec`` at ``task.layout.robot_base``.

    :meth:`track` moves the twin to each measured arm state and simulates the objects' response in between, so
    :meth:`pose` of an object is where the measured arm has pushed it — a perfect tracker — and ``forces`` the
    mean contact force (N) of each object named in ``force_names`` against the twin over that interval (a wrist
    force sensor that knows which object it touches). Positions m, quaternions
    x, y, z, w, velocities m/s and rad/s, times s (the measurement's monotonic clock), joint angles rad;
    ``max_step`` (s) bounds the interval one :meth:`track` simulates (after a pause the arm's path is unknown).
    """

    def __init__(self, task: ArmTask, physics: PhysicsConfig = PhysicsConfig(),
                 max_step: float = MAX_TRACK_STEP) -> None:
        self.world = PyBulletWorld(physics)
        self.twin = PyBulletRobot(self.world, task.spec, task.layout.robot_base)
        self.max_step = float(max_step)
        self._last: tuple[np.ndarray, float] | None = None  # (joint angles rad, timestamp s) of the last track
        self._lag = 0.0  # s: measured time not yet simulated (less than half a physics step either way)
        self.force_names: list[str] = []  # objects whose contact force with the twin track() measures
        self.forces = np.zeros(0)  # N: their mean normal contact force over the last tracked interval
        task.setup(self)

    # --- Scene: delegated to the world ----------------------------------------------------------------------
    def add_box(self, name, half_extents, mass, rgba, lateral_friction: float = 1.0) -> None:
        self.world.add_box(name, half_extents, mass, rgba, lateral_friction)

    def add_marker(self, name, radius, rgba) -> None:
        self.world.add_marker(name, radius, rgba)

    def set_pose(self, name, position, orientation=None) -> None:
        self.world.set_pose(name, position, orientation)

    def pose(self, name):
        return self.world.pose(name)

    def velocity(self, name):
        return self.world.velocity(name)

    def set_box_dynamics(self, name: str, mass: float, lateral_friction: float) -> None:
        self.world.set_box_dynamics(name, mass, lateral_friction)

    def glue(self, name: str, to: str | None = None) -> None:
        self.world.glue(name, to)

    def unglue_all(self) -> None:
        self.world.unglue_all()

    # --- the arm ----------------------------------------------------------------------------------------------
    def track(self, state: RobotState) -> None:
        """Follow the measured arm from the last tracked state to ``state``.

        The interval between the two timestamps (at most ``max_step`` s) is simulated in physics steps of the
        world's timestep; before each step the twin's joints are put on the straight line between the two
        measurements, moving at the constant velocity (rad/s) that covers it, so contacts push objects as the arm
        did. The first state, or one not newer than the last, teleports the twin at rest (nothing is simulated).
        """
        positions = np.asarray(state.positions, dtype=float)
        stamp = float(state.timestamp)
        if self._last is None or stamp <= self._last[1]:
            self.twin.reset_joints(positions)
            self._last, self._lag = (positions, stamp), 0.0
            self.forces = np.zeros(len(self.force_names))
            return
        start, then = self._last
        elapsed = min(stamp - then, self.max_step)
        timestep = self.world.physics.timestep
        steps = int(round((elapsed + self._lag) / timestep))  # the remainder carries over to the next call
        self._lag += elapsed - steps * timestep
        velocity = (positions - start) / elapsed
        body, joints = self.twin.handle.body, list(self.twin.handle.joint_indices)
        client = self.world.client
        p.setJointMotorControlArray(body, joints, p.VELOCITY_CONTROL, targetVelocities=velocity.tolist(),
                                    forces=self.twin.forces.tolist(), physicsClientId=client)
        total = np.zeros(len(self.force_names))
        for k in range(steps):
            for index, q, qd in zip(joints, start + (positions - start) * (k / steps), velocity):
                p.resetJointState(body, index, float(q), float(qd), physicsClientId=client)
            self.world.step(1)
            if self.force_names:  # what a wrist force sensor and a tracker would tell: who pushes back how hard
                total += self.world.contact_forces(body, self.force_names)
        self.forces = total / max(steps, 1)
        self.twin.reset_joints(positions)
        self._last = (positions, stamp)

    # --- pictures and lifetime --------------------------------------------------------------------------------
    def render(self, views: Sequence[View]) -> np.ndarray:
        """RGB image (height, sum of widths, 3) uint8: the views (same height) side by side."""
        images = [self.world.render(view) for view in views]
        return images[0] if len(images) == 1 else np.concatenate(images, axis=1)

    def close(self) -> None:
        self.world.close()

    def __enter__(self) -> EmulatedWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
