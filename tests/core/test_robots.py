import os

import numpy as np
import pybullet as p
import pytest

from robots.pybullet_builder import load_robot, urdf_path
from robots.registry import ROBOTS, get_robot_spec
from robots.spec import JointSpec


@pytest.fixture()
def client():
    c = p.connect(p.DIRECT)
    yield c
    p.disconnect(c)


@pytest.mark.parametrize("name", sorted(ROBOTS))
def test_spec_matches_urdf(name, client):
    spec = get_robot_spec(name)
    robot = load_robot(client, spec)
    assert len(robot.joint_indices) == len(spec.joints)
    for joint, index in zip(spec.joints, robot.joint_indices):
        info = p.getJointInfo(robot.body, index, physicsClientId=client)
        assert info[1].decode() == joint.name
        assert info[8] == pytest.approx(joint.lower, abs=1e-3)
        assert info[9] == pytest.approx(joint.upper, abs=1e-3)
    # home pose is applied and inside the limits
    q = [p.getJointState(robot.body, i, physicsClientId=client)[0] for i in robot.joint_indices]
    assert np.allclose(q, spec.home)
    assert np.all(spec.lower <= np.asarray(spec.home)) and np.all(np.asarray(spec.home) <= spec.upper)


def test_vendor_urdfs_come_from_pybullet_data_not_the_repo():
    import pybullet_data

    for name in ("panda", "kuka"):
        spec = get_robot_spec(name)
        assert spec.urdf_source == "pybullet_data"
        assert urdf_path(spec).startswith(pybullet_data.getDataPath())
    repo = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    shipped = [f for _, _, files in os.walk(os.path.join(repo, "robots")) for f in files if f.endswith(".urdf")]
    assert sorted(shipped) == ["cf2x.urdf", "racer.urdf", "so101.urdf"]


def test_so101_is_a_five_joint_arm_with_gripper_on_servo_ids_1_to_6():
    spec = get_robot_spec("so101")
    assert spec.joint_names == ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
    assert [a.bus_id for a in spec.actuators] == [1, 2, 3, 4, 5, 6]
    assert spec.arm_joint_names == spec.joint_names[:5]
    for joint in spec.joints:
        assert joint.zero and joint.positive, f"{joint.name} must document its zero and positive direction"
        assert joint.upper - joint.lower < 2 * np.pi  # inside one servo turn


def test_so101_positive_shoulder_lift_leans_forward(client):
    spec = get_robot_spec("so101")
    robot = load_robot(client, spec)
    for index in robot.joint_indices:  # the documented zero pose: arm straight up
        p.resetJointState(robot.body, index, 0.0, physicsClientId=client)

    def tip_x(lift):
        p.resetJointState(robot.body, robot.joint_indices[1], lift, physicsClientId=client)
        return p.getLinkState(robot.body, robot.ee_link, computeForwardKinematics=1, physicsClientId=client)[4][0]
    assert tip_x(0.5) > tip_x(0.0) > tip_x(-0.5)


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="lower limit"):
        JointSpec("j", "revolute", 1.0, -1.0, 1.0, 1.0)
    with pytest.raises(KeyError, match="known: kuka, panda, so101"):
        get_robot_spec("ur5")
