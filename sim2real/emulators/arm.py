"""The emulated arm: a PyBullet SO-101-class arm whose servos follow a :class:`RealityProfile`.

Time is wall-clock: :meth:`EmulatedArm.advance_to` steps physics until simulated time catches up with the
emulator's monotonic clock (s since start). Joint values are rad in spec order; servos see ticks through the
nominal calibration (tick 2048 = joint zero), the one ``sim2real calibrate --from-spec`` writes.
"""
from __future__ import annotations

import numpy as np
import pybullet as p

from robots.calibration import calibration_from_spec
from robots.pybullet_builder import load_robot
from robots.spec import RobotSpec
from sim2real.emulators.reality import RealityProfile

MODE_POSITION, MODE_VELOCITY, MODE_TORQUE = "position", "velocity", "torque"
_MAX_CATCH_UP_STEPS = 200  # after a stall (s × 1/timestep) the emulator skips time instead of running behind forever


class EmulatedArm:
    """Physics of one arm. Per joint: torque on/off, a mode (position, velocity or torque) and its goal."""

    def __init__(self, spec: RobotSpec, reality: RealityProfile) -> None:
        self.spec, self.reality = spec, reality
        self.calibration = calibration_from_spec(spec)
        self.rng = np.random.default_rng(reality.seed)
        self.client = p.connect(p.DIRECT)
        p.setTimeStep(reality.timestep, physicsClientId=self.client)
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        self.handle = load_robot(self.client, spec)
        # The table top (z = 0) the arm stands on: an unpowered arm slumps onto it instead of hanging below.
        table = p.createMultiBody(0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=self.client),
                                  physicsClientId=self.client)
        p.setCollisionFilterPair(self.handle.body, table, -1, -1, 0, physicsClientId=self.client)
        p.setCollisionFilterPair(self.handle.body, table, self.handle.joint_indices[0], -1, 0,
                                 physicsClientId=self.client)
        self._body, self._indices = self.handle.body, list(self.handle.joint_indices)
        for link in range(-1, p.getNumJoints(self._body, physicsClientId=self.client)):
            mass = p.getDynamicsInfo(self._body, link, physicsClientId=self.client)[0]
            p.changeDynamics(self._body, link, mass=mass * reality.mass_scale, lateralFriction=reality.lateral_friction,
                             jointDamping=reality.joint_damping, physicsClientId=self.client)
        n = len(self._indices)
        self.torque_on = np.zeros(n, dtype=bool)
        self.mode = [MODE_POSITION] * n
        self.goal = np.array(spec.home, dtype=float)  # rad, rad/s or N·m per mode
        self.gain_scale = np.ones(n)  # servo P-gain register / its factory value
        self.max_torque = reality.strength * np.array([j.max_effort for j in spec.joints])
        self._deadband = reality.deadband_ticks * 2.0 * np.pi / self.calibration.ticks_per_turn
        self._encoder = np.array(spec.home, dtype=float)  # backlash-side reading (rad)
        self.time = 0.0  # s of simulated time
        self.skipped = 0.0  # s of wall time skipped after stalls

    # --- physics ---------------------------------------------------------------------------------------------
    def _joint_states(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        states = p.getJointStates(self._body, self._indices, physicsClientId=self.client)
        q, qd, _, tau = zip(*states)
        return np.array(q), np.array(qd), np.array(tau)

    def _apply_motors(self, q: np.ndarray) -> None:
        c, body = self.client, self._body
        for j, index in enumerate(self._indices):
            if not self.torque_on[j]:  # unpowered: only the gearbox's friction resists
                p.setJointMotorControl2(body, index, p.VELOCITY_CONTROL, targetVelocity=0.0,
                                        force=self.reality.gear_friction, physicsClientId=c)
            elif self.mode[j] == MODE_POSITION:
                target = q[j] if abs(self.goal[j] - q[j]) <= self._deadband else self.goal[j]
                p.setJointMotorControl2(body, index, p.POSITION_CONTROL, targetPosition=float(target),
                                        force=float(self.max_torque[j]), positionGain=self.reality.position_gain * float(self.gain_scale[j]),
                                        velocityGain=self.reality.velocity_gain,
                                        maxVelocity=self.reality.max_velocity, physicsClientId=c)
            elif self.mode[j] == MODE_VELOCITY:
                p.setJointMotorControl2(body, index, p.VELOCITY_CONTROL, targetVelocity=float(self.goal[j]),
                                        force=float(self.max_torque[j]), physicsClientId=c)
            else:
                p.setJointMotorControl2(body, index, p.VELOCITY_CONTROL, targetVelocity=0.0, force=0.0,
                                        physicsClientId=c)
                torque = float(np.clip(self.goal[j], -self.max_torque[j], self.max_torque[j]))
                p.setJointMotorControl2(body, index, p.TORQUE_CONTROL, force=torque, physicsClientId=c)

    def advance_to(self, t: float) -> None:
        """Step physics until simulated time reaches ``t`` (s)."""
        dt = self.reality.timestep
        steps = int((t - self.time) / dt)
        if steps > _MAX_CATCH_UP_STEPS:
            self.skipped += (steps - _MAX_CATCH_UP_STEPS) * dt
            self.time += (steps - _MAX_CATCH_UP_STEPS) * dt
            steps = _MAX_CATCH_UP_STEPS
        for _ in range(max(steps, 0)):
            self._apply_motors(self._joint_states()[0])
            p.stepSimulation(physicsClientId=self.client)
            self.time += dt
        self._update_encoder()

    def _update_encoder(self) -> None:
        half = self.reality.backlash_rad / 2.0
        q = self._joint_states()[0]
        self._encoder = np.clip(self._encoder, q - half, q + half)

    # --- servo view --------------------------------------------------------------------------------------------
    def measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position ticks, velocity ticks/s, effort N·m) as the servos' sensors report them."""
        _, qd, tau = self._joint_states()
        ticks = self.calibration.radians_to_ticks(self._encoder).astype(float)
        if self.reality.sensor_noise_ticks > 0:
            ticks += self.rng.normal(0.0, self.reality.sensor_noise_ticks, ticks.shape)
        ticks = np.clip(np.rint(ticks), 0, self.calibration.ticks_per_turn - 1)
        ticks_per_s = qd * self.calibration.ticks_per_turn / (2.0 * np.pi)
        return ticks.astype(np.int64), ticks_per_s, tau

    def joint_positions(self) -> np.ndarray:
        """True joint angles (rad), for tests and logs."""
        return self._joint_states()[0]

    def encoder_positions(self) -> np.ndarray:
        """Joint angles (rad) as the encoders see them (after the backlash), before tick rounding and noise."""
        return self._encoder.copy()

    def place(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Put the joints at ``positions`` (rad) moving at ``velocities`` (rad/s), the encoders reading the same
        angles (replays of logged motion start from a measured state; sim2real.sysid)."""
        for j, index in enumerate(self._indices):
            p.resetJointState(self._body, index, float(positions[j]), float(velocities[j]),
                              physicsClientId=self.client)
        self._encoder = np.asarray(positions, dtype=float).copy()

    def set_goal_ticks(self, joint: int, ticks: int) -> None:
        self.mode[joint] = MODE_POSITION
        self.goal[joint] = float(self.calibration.ticks_to_radians(self._one_hot(joint, ticks))[joint])

    def hold(self, joint: int) -> None:
        """Stop where the joint is now (position mode at the measured angle)."""
        self.mode[joint] = MODE_POSITION
        self.goal[joint] = float(self.joint_positions()[joint])

    def _one_hot(self, joint: int, ticks: int) -> np.ndarray:
        values = np.array([j.offset for j in self.calibration.joints], dtype=float)
        values[joint] = ticks
        return values

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
