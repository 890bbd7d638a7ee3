"""KUKA LBR iiwa 14 R820, loaded from ``pybullet_data/kuka_iiwa/model.urdf`` at run time.

The URDF has no gripper, so the toolkit offers KUKA Reach and Push only (the flange pushes the object).
Joint position limits from the URDF; velocity and torque limits from KUKA's LBR iiwa 14 R820 data sheet.
"""
from __future__ import annotations

from robots.spec import ActuatorSpec, EndEffectorSpec, JointSpec, RobotSpec, SensorSpec

_LIMITS = (  # name, lower, upper (rad), max velocity (rad/s), max effort (N·m)
    ("lbr_iiwa_joint_1", -2.96706, 2.96706, 1.483, 320.0),
    ("lbr_iiwa_joint_2", -2.09440, 2.09440, 1.483, 320.0),
    ("lbr_iiwa_joint_3", -2.96706, 2.96706, 1.745, 176.0),
    ("lbr_iiwa_joint_4", -2.09440, 2.09440, 1.309, 176.0),
    ("lbr_iiwa_joint_5", -2.96706, 2.96706, 2.269, 110.0),
    ("lbr_iiwa_joint_6", -2.09440, 2.09440, 2.356, 40.0),
    ("lbr_iiwa_joint_7", -3.05433, 3.05433, 2.356, 40.0),
)


def kuka_spec() -> RobotSpec:
    return RobotSpec(
        name="kuka",
        description="KUKA LBR iiwa 14 R820, 7-DoF arm without gripper (pybullet_data)",
        urdf="kuka_iiwa/model.urdf",
        urdf_source="pybullet_data",
        joints=tuple(
            JointSpec(n, "revolute", lo, hi, v, e, zero="arm straight up", positive="right-hand rule about URDF axis")
            for n, lo, hi, v, e in _LIMITS
        ),
        actuators=tuple(ActuatorSpec(n, "KUKA iiwa joint drive", e) for n, *_, e in _LIMITS),
        end_effector=EndEffectorSpec(link="lbr_iiwa_link_7", orientation=(0.0, 1.0, 0.0, 0.0)),  # flange down
        home=(0.0, 0.55, 0.0, -1.45, 0.0, 1.15, 0.0),
        workspace_low=(0.25, -0.5, 0.0),
        workspace_high=(1.0, 0.5, 0.8),
        sensors=(SensorSpec("joint_encoders", "joint_encoder", 1000.0),),
        control_rate_hz=25.0,
        sources=("pybullet_data kuka_iiwa/model.urdf", "KUKA LBR iiwa 14 R820 data sheet (velocity, torque)"),
    )
