"""SO-101-class low-cost arm: 5 revolute joints + a one-jaw gripper, six Feetech STS3215 serial-bus servos.

URDF written here (``robots/urdf/so101.urdf``) from published SO-101 dimensions, with primitive collision
shapes. Frames: base frame at the bottom centre of the base, x forward, z up.

Zero pose and positive directions (the calibration maps servo ticks onto these):

==============  ===========  =========================================================  ==================
joint           axis         zero                                                        positive
==============  ===========  =========================================================  ==================
shoulder_pan    base +z      arm faces +x                                                counter-clockwise seen from above
shoulder_lift   +y           upper arm vertical                                          leans the arm forward (+x)
elbow_flex      +y           forearm in line with the upper arm                          folds the forearm forward/down
wrist_flex      +y           wrist in line with the forearm                              folds the wrist forward/down
wrist_roll      wrist +z     fixed jaw on the −x side of the gripper (at pan 0, arm up)  counter-clockwise seen from the tip
gripper         gripper +y   jaws closed                                                 opens the moving jaw
==============  ===========  =========================================================  ==================

Servo limits: STS3215 (12 V) stall torque 30 kg·cm ≈ 2.94 N·m, no-load speed 0.222 s/60° ≈ 4.71 rad/s;
the joint ranges below are inside the servo's 360° (4096-tick) travel.
"""
from __future__ import annotations

from robots.spec import ActuatorSpec, EndEffectorSpec, GripperSpec, JointSpec, RobotSpec, SensorSpec

STS3215_TORQUE = 2.94  # N·m, 30 kg·cm at 12 V
STS3215_SPEED = 4.71  # rad/s, 0.222 s per 60° at 12 V

_JOINTS = (  # name, lower, upper (rad), zero, positive
    ("shoulder_pan", -1.92, 1.92, "arm faces +x", "counter-clockwise seen from above"),
    ("shoulder_lift", -1.75, 1.75, "upper arm vertical", "leans forward"),
    ("elbow_flex", -1.0, 2.6, "forearm in line with upper arm", "folds forward/down"),
    ("wrist_flex", -1.8, 1.8, "wrist in line with forearm", "folds forward/down"),
    ("wrist_roll", -2.74, 2.84, "fixed jaw on -x side", "counter-clockwise seen from the tip"),
    ("gripper", 0.0, 1.75, "jaws closed", "opens"),
)


def so101_spec() -> RobotSpec:
    return RobotSpec(
        name="so101",
        description="SO-101-class 5-DoF arm + gripper on Feetech STS3215 servos (URDF written here)",
        urdf="so101.urdf",
        urdf_source="package",
        joints=tuple(
            JointSpec(n, "revolute", lo, hi, STS3215_SPEED, STS3215_TORQUE, zero=z, positive=pos)
            for n, lo, hi, z, pos in _JOINTS
        ),
        actuators=tuple(
            ActuatorSpec(n, "Feetech STS3215", STS3215_TORQUE, bus_id=i + 1) for i, (n, *_) in enumerate(_JOINTS)
        ),
        end_effector=EndEffectorSpec(
            link="gripper_tip",
            orientation=None,  # 5 DoF: position-only IK (a fixed tool-down pose is unreachable beyond ~0.2 m)
            gripper=GripperSpec(joints=("gripper",), closed=(0.0,), opened=(1.2,), max_width=0.075),
        ),
        home=(0.0, 0.0, 1.2, 1.6, 0.0, 0.0),
        workspace_low=(0.08, -0.25, 0.0),
        workspace_high=(0.34, 0.25, 0.35),
        sensors=(SensorSpec("servo_encoders", "joint_encoder", 100.0, noise_std=0.0015),),
        control_rate_hz=25.0,
        sources=("SO-101 published link dimensions (TheRobotStudio)", "Feetech STS3215 data sheet"),
    )
