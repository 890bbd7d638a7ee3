"""A robot body in a :class:`PyBulletWorld`, implementing the HAL :class:`Robot` interface."""
from __future__ import annotations

import numpy as np
import pybullet as p

from robots.kinematics import DampedLeastSquaresIK, orientation_error
from robots.pybullet_builder import load_robot
from robots.spec import RobotSpec
from sim2real.hal.robot import Robot
from sim2real.hal.types import JointCommand, RobotState
from sim2real.sim.world import PyBulletWorld

_ORIGIN = [0.0, 0.0, 0.0]


class PyBulletRobot(Robot):
    """Position-controlled simulated arm. Commands are clamped to the spec's joint limits."""

    def __init__(self, world: PyBulletWorld, spec: RobotSpec, base_position=(0.0, 0.0, 0.0),
                 com_offset=(0.0, 0.0, 0.0)) -> None:
        self.spec = spec
        self.world = world
        self.base_position = tuple(map(float, base_position))
        self.com_offset = tuple(map(float, com_offset))  # m, every link's centre of mass in its own frame
        self.handle = load_robot(world.client, spec, base_position, com_offset=self.com_offset)
        self._client = world.client
        # The base and first link sit on the table and cannot leave it: skip their table contacts (saves ~15 % of
        # the physics time on the Panda) while every other link still collides with the table.
        for link in (-1, self.handle.joint_indices[0]):
            p.setCollisionFilterPair(self.handle.body, world.bodies["table"], link, -1, 0, physicsClientId=world.client)
        self._indices = list(self.handle.joint_indices)
        self._ik_columns = self.handle.ik_columns
        self._arm_mask = np.array([n in spec.arm_joint_names for n in spec.joint_names])
        self._arm_columns = self._ik_columns[self._arm_mask]  # Jacobian columns of the arm joints, spec order
        self._lower, self._upper = spec.lower, spec.upper
        self.forces = np.array([spec.actuator(n).max_force for n in spec.joint_names])
        self.position_gains = np.array([spec.actuator(n).position_gain for n in spec.joint_names])
        self.velocity_gains = np.array([spec.actuator(n).velocity_gain for n in spec.joint_names])
        self.connected = False
        # calculateJacobian wants every movable joint in body order; spec order may differ.
        self._spec_of_movable = np.argsort(self._ik_columns)
        self._zeros = [0.0] * len(self._indices)
        self._ik = DampedLeastSquaresIK(int(self._arm_mask.sum()))

    def reloaded(self, com_offset) -> PyBulletRobot:
        """Remove this body and load the robot again with link centres of mass moved by ``com_offset`` (m, link
        frames; PyBullet cannot move them in place). Joint positions and velocities, the held command and link
        colors carry over; textures do not (PyBullet does not report which one a shape shows: the owner re-applies
        them) and dynamics are the URDF's (re-apply randomized values). This object is dead afterwards."""
        c, body = self._client, self.handle.body
        joints = p.getJointStates(body, self._indices, physicsClientId=c)
        looks = p.getVisualShapeData(body, physicsClientId=c)
        p.removeBody(body, physicsClientId=c)
        robot = PyBulletRobot(self.world, self.spec, self.base_position, com_offset)
        new = robot.handle.body
        for index, (q, qd, *_rest) in zip(robot._indices, joints):
            p.resetJointState(new, index, q, qd, physicsClientId=c)
        robot.send_command(JointCommand(np.array([j[0] for j in joints])))
        shape_of_link: dict[int, int] = {}
        for look in looks:  # (body, link, ..., rgba [7]); the nth visual shape of its link
            nth = shape_of_link[look[1]] = shape_of_link.get(look[1], -1) + 1
            p.changeVisualShape(new, look[1], shapeIndex=nth, rgbaColor=look[7], physicsClientId=c)
        self.connected = False
        return robot

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def reset_joints(self, positions: np.ndarray) -> None:
        """Teleport joints to ``positions`` at rest and hold them there."""
        for index, q in zip(self._indices, positions):
            p.resetJointState(self.handle.body, index, float(q), 0.0, physicsClientId=self._client)
        self.send_command(JointCommand(np.asarray(positions, dtype=float)))

    def read_state(self) -> RobotState:
        joints = p.getJointStates(self.handle.body, self._indices, physicsClientId=self._client)
        link = p.getLinkState(self.handle.body, self.handle.ee_link, computeLinkVelocity=1,
                              computeForwardKinematics=1, physicsClientId=self._client)
        positions, velocities, _, efforts = zip(*joints)
        return RobotState(
            positions=np.array(positions), velocities=np.array(velocities), efforts=np.array(efforts),
            ee_position=np.array(link[4]), ee_orientation=np.array(link[5]), ee_velocity=np.array(link[6]),
            timestamp=self.world.time,
        )

    def send_command(self, command: JointCommand) -> JointCommand:
        targets = np.clip(command.positions, self._lower, self._upper)
        p.setJointMotorControlArray(
            self.handle.body, self._indices, p.POSITION_CONTROL, targetPositions=targets, forces=self.forces,
            positionGains=self.position_gains, velocityGains=self.velocity_gains, physicsClientId=self._client,
        )
        return JointCommand(targets)

    def safe_stop(self) -> None:
        """Hold the current position."""
        self.send_command(JointCommand(self.read_state().positions))

    def inverse_kinematics(self, ee_position, ee_orientation, state: RobotState) -> np.ndarray:
        """One damped-least-squares step from the measured ``state`` toward the target pose.

        The control loop re-solves every step from the new measurement, so one step converges like an iterative
        solver; it is 3x faster than PyBullet's ``calculateInverseKinematics`` and about twice as accurate for
        5 cm moves (median 2.9 mm vs 6.5 mm on the Panda).
        """
        in_body_order = state.positions[self._spec_of_movable].tolist()
        linear, angular = p.calculateJacobian(self.handle.body, self.handle.ee_link, _ORIGIN, in_body_order,
                                              self._zeros, self._zeros, physicsClientId=self._client)
        linear = np.asarray(linear)[:, self._arm_columns]
        angular = np.asarray(angular)[:, self._arm_columns]
        rotation = None if ee_orientation is None else orientation_error(ee_orientation, state.ee_orientation)
        step = self._ik.step(linear, angular, ee_position - state.ee_position, rotation)
        solution = state.positions.copy()
        solution[self._arm_mask] += step
        return solution
