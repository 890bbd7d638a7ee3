"""Test support: the emulators' arm (:class:`EmulatedArm`: physics, servos, encoders, backlash, deadband of a reality
profile) behind the HAL :class:`Robot` interface in-process, on a fake clock, so the real deployment loop writes a
real excitation log in a fraction of its time. The servo bus and its wire protocol are left out (the tests of
``sysid collect`` on the threaded bus emulator and the benchmarks use them); a read takes the profile's
``latency_s`` of the fake clock, as the bus emulator delays its replies."""
from __future__ import annotations

import numpy as np

from robots.kinematic_model import KinematicModel
from robots.registry import get_robot_spec
from sim2real.emulators.arm import EmulatedArm
from sim2real.emulators.reality import RealityProfile
from sim2real.hal.model_arm import ModelArm
from sim2real.hal.types import JointCommand, RobotState


class InProcessArm(ModelArm):
    """``reality``'s emulated SO-101; physics advances to the fake clock's time on every read and command."""

    def __init__(self, reality: RealityProfile, clock) -> None:
        self.spec = get_robot_spec("so101")
        self.arm, self.clock, self.reality = EmulatedArm(self.spec, reality), clock, reality
        self.calibration = self.arm.calibration

    def connect(self) -> None:
        self.model = self.model or KinematicModel(self.spec, (0.0, 0.0, 0.0))
        self.arm.torque_on[:] = True
        self.read_state()

    def disconnect(self) -> None:
        self.arm.close()
        if self.model is not None:
            self.model.close()
            self.model = None

    def read_state(self) -> RobotState:
        self.arm.advance_to(self.clock.now)
        ticks, ticks_per_s, efforts = self.arm.measure()
        q = self.calibration.ticks_to_radians(ticks)
        qd = self.calibration.velocity_to_radians(ticks_per_s)
        self.clock.sleep(self.reality.latency_s)  # the reply's delay
        return self._make_state(q, qd, efforts, self.clock.now)

    def send_command(self, command: JointCommand) -> JointCommand:
        self.arm.advance_to(self.clock.now)
        targets = np.clip(np.asarray(command.positions, dtype=float), self.spec.lower, self.spec.upper)
        ticks = self.calibration.radians_to_ticks(targets)
        sent = self.calibration.ticks_to_radians(ticks)
        for j, value in enumerate(ticks):
            self.arm.set_goal_ticks(j, int(value))
        return JointCommand(sent)
