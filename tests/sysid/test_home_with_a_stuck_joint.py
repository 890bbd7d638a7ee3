"""The way home with one servo that no longer follows its goals (a jammed joint, held where it is): through the real
loop, safety layer and emulated arm physics (in-process, fake clock) a jammed arm joint stops the run at home; a
gripper stuck open counts only for tasks that use the gripper (:func:`at_home`)."""
from __future__ import annotations

import os
import sys

import numpy as np

from robots.so101 import so101_spec
from sim2real.deploy.arm import at_home
from sim2real.emulators.reality import RealityProfile
from sim2real.hal.types import JointCommand
from sim2real.sysid.collect import collect_arm
from sim2real.sysid.excitation_arm import Excitation

sys.path.insert(0, os.path.dirname(__file__))
from arm_flight import InProcessArm  # noqa: E402
from quad_flight import FakeClock  # noqa: E402


class JammedArm(InProcessArm):
    """The emulated arm with joint ``jammed`` held at ``angle`` (rad): its goal writes are ignored."""

    def __init__(self, clock: FakeClock, jammed: str, angle: float) -> None:
        super().__init__(RealityProfile(name="jammed"), clock)
        self.jammed = self.spec.joint_names.index(jammed)
        self.angle = angle

    def send_command(self, command: JointCommand) -> JointCommand:
        positions = np.array(command.positions, dtype=float)
        positions[self.jammed] = self.angle
        return super().send_command(JointCommand(positions))


def test_a_jammed_arm_joint_stops_the_run_at_home(tmp_path):
    clock = FakeClock()
    robot = JammedArm(clock, "elbow_flex", 0.8)
    robot.connect()
    robot.send_command(JointCommand(np.array(robot.spec.home, dtype=float)))  # the jammed joint goes to its angle
    clock.sleep(2.0)
    assert abs(robot.read_state().positions[robot.jammed] - 0.8) < 0.05
    targets = Excitation(hold_s=0.3, chirp_s=0.4, joints=("shoulder_lift",), loaded_poses=()).targets(robot.spec, 25.0)
    result, problems = collect_arm(robot, robot.spec, (0.0, 0.0, 0.0), targets, str(tmp_path / "log.jsonl"), 25.0,
                                   clock=clock, sleep=clock.sleep)
    assert not problems
    assert result.stopped is not None and result.stopped["kind"] == "home"
    assert "[0.0, 0.0, 0.8" in result.stopped["reason"]  # the jammed elbow named by its angle


def test_the_gripper_counts_at_home_only_for_tasks_that_use_it():
    spec = so101_spec()
    home = np.array(spec.home, dtype=float)
    gripper = spec.joint_names.index(spec.end_effector.gripper.joints[0])
    open_gripper = home.copy()
    open_gripper[gripper] += 0.1
    assert at_home(spec, False, open_gripper, 0.05) and not at_home(spec, True, open_gripper, 0.05)
    bent_elbow = home.copy()
    bent_elbow[spec.joint_names.index("elbow_flex")] += 0.1
    assert not at_home(spec, False, bent_elbow, 0.05) and not at_home(spec, True, bent_elbow, 0.05)
    assert at_home(spec, True, home + 0.04, 0.05)
