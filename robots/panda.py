"""Franka Emika Panda, loaded from ``pybullet_data/franka_panda/panda.urdf`` at run time.

Limits from the URDF shipped with PyBullet (Franka's published joint limits). Position-control forces follow
panda-gym (87, 87, 87, 87, 12, 120, 120 N·m; 170 N fingers) so timing and behaviour can be compared with it.
"""
from __future__ import annotations

from robots.spec import ActuatorSpec, EndEffectorSpec, GripperSpec, JointSpec, RobotSpec, SensorSpec

_ARM_LIMITS = (  # name, lower, upper (rad), max velocity (rad/s), max effort (N·m), sim force (N·m)
    ("panda_joint1", -2.9671, 2.9671, 2.175, 87.0, 87.0),
    ("panda_joint2", -1.8326, 1.8326, 2.175, 87.0, 87.0),
    ("panda_joint3", -2.9671, 2.9671, 2.175, 87.0, 87.0),
    ("panda_joint4", -3.1416, 0.0, 2.175, 87.0, 87.0),
    ("panda_joint5", -2.9671, 2.9671, 2.61, 12.0, 12.0),
    ("panda_joint6", -0.0873, 3.8223, 2.61, 12.0, 120.0),
    ("panda_joint7", -2.9671, 2.9671, 2.61, 12.0, 120.0),
)
_FINGERS = ("panda_finger_joint1", "panda_finger_joint2")


def panda_spec() -> RobotSpec:
    joints = tuple(
        JointSpec(name, "revolute", lo, hi, vel, eff, zero="Franka zero pose", positive="right-hand rule about URDF axis")
        for name, lo, hi, vel, eff, _ in _ARM_LIMITS
    ) + tuple(
        JointSpec(name, "prismatic", 0.0, 0.04, 0.2, 20.0, zero="finger closed", positive="opens (m per finger)")
        for name in _FINGERS
    )
    actuators = tuple(ActuatorSpec(name, "Franka joint drive", force) for name, *_, force in _ARM_LIMITS) + tuple(
        ActuatorSpec(name, "Franka Hand", 170.0) for name in _FINGERS
    )
    return RobotSpec(
        name="panda",
        description="Franka Emika Panda, 7-DoF arm with parallel gripper (pybullet_data)",
        urdf="franka_panda/panda.urdf",
        urdf_source="pybullet_data",
        joints=joints,
        actuators=actuators,
        end_effector=EndEffectorSpec(
            link="panda_grasptarget",
            orientation=(1.0, 0.0, 0.0, 0.0),  # tool pointing down (x, y, z, w)
            gripper=GripperSpec(joints=_FINGERS, closed=(0.0, 0.0), opened=(0.04, 0.04), max_width=0.08),
        ),
        home=(0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79, 0.0, 0.0),
        workspace_low=(0.2, -0.45, 0.0),
        workspace_high=(0.95, 0.45, 0.75),
        sensors=(SensorSpec("joint_encoders", "joint_encoder", 1000.0),),
        control_rate_hz=25.0,
        sources=("pybullet_data franka_panda/panda.urdf", "panda-gym 3.x control forces and neutral pose"),
    )
