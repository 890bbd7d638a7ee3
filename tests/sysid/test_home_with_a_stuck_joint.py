"""The deployment's way home through the real loop, safety layer and emulated arm physics (in-process, fake clock),
with one servo that no longer follows its goals (a jammed joint, held where it is): a gripper stuck open does not
stop a run whose task leaves the gripper alone (the excitation), a stuck arm joint still does."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from sim2real.emulators.reality import RealityProfile
from sim2real.hal.types import JointCommand
from sim2real.sysid.collect import collect_arm
from sim2real.sysid.excitation_arm import Excitation
from sim2real.sysid.identify import read_deployment_log

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


@pytest.mark.parametrize("jammed, angle, stops", [("gripper", 0.3, False), ("elbow_flex", 0.8, True)])
def test_home_counts_the_joints_the_task_uses(tmp_path, jammed, angle, stops):
    clock = FakeClock()
    robot = JammedArm(clock, jammed, angle)
    robot.connect()
    robot.send_command(JointCommand(np.array(robot.spec.home, dtype=float)))  # the jammed joint goes to its angle
    clock.sleep(2.0)
    assert abs(robot.read_state().positions[robot.jammed] - angle) < 0.05
    targets = Excitation(hold_s=0.3, chirp_s=0.4, joints=("shoulder_lift",), loaded_poses=()).targets(robot.spec, 25.0)
    log = str(tmp_path / "log.jsonl")
    result, problems = collect_arm(robot, robot.spec, (0.0, 0.0, 0.0), targets, log, 25.0, clock=clock,
                                   sleep=clock.sleep)
    assert not problems
    if stops:
        assert result.stopped is not None and result.stopped["kind"] == "home"
    else:
        assert result.stopped is None
        steps = [r for r in read_deployment_log(log) if r.get("type") == "step"]
        assert len(steps) == len(targets)  # home at once (the arm joints), then the whole excitation
        assert all(abs(r["positions"][robot.jammed] - angle) < 0.05 for r in steps)  # it stayed open throughout
