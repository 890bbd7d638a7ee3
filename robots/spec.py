"""What a robot *is*: frozen, typed descriptions shared by simulation and hardware.

Units: SI throughout (m, kg, s, rad, N, N·m). Joint order in :class:`RobotSpec.joints` is the single
source of truth: every joint-space array (state, command, calibration) follows it, in simulation and on
hardware alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

JointKind = Literal["revolute", "prismatic"]
ControlMode = Literal["ee", "joints"]


@dataclass(frozen=True)
class JointSpec:
    """One actuated joint.

    Positions are rad (revolute) or m (prismatic); velocities rad/s or m/s; effort N·m or N.
    ``zero`` and ``positive`` document the zero pose and positive direction so hardware calibration can map
    servo ticks onto them.
    """

    name: str
    kind: JointKind
    lower: float
    upper: float
    max_velocity: float
    max_effort: float
    zero: str = ""
    positive: str = ""

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"joint {self.name}: lower limit {self.lower} must be below upper {self.upper}")
        if self.max_velocity <= 0 or self.max_effort <= 0:
            raise ValueError(f"joint {self.name}: velocity and effort limits must be positive")


@dataclass(frozen=True)
class ActuatorSpec:
    """The drive behind one joint: model, bus id (hardware) and PyBullet position-control parameters."""

    joint: str
    model: str
    max_force: float  # N·m (revolute) or N (prismatic) given to PyBullet position control
    position_gain: float = 0.1  # PyBullet positionGain (dimensionless; 0.1 is the engine default)
    velocity_gain: float = 1.0  # PyBullet velocityGain (dimensionless; engine default)
    bus_id: int | None = None


@dataclass(frozen=True)
class GripperSpec:
    """Gripper joints and their closed/open positions (rad or m, per joint)."""

    joints: tuple[str, ...]
    closed: tuple[float, ...]
    opened: tuple[float, ...]
    max_width: float  # m, finger opening when fully open

    def targets(self, opening: float) -> np.ndarray:
        """Joint targets for an opening fraction in [0, 1] (0 closed, 1 open)."""
        closed = np.asarray(self.closed)
        return closed + float(np.clip(opening, 0.0, 1.0)) * (np.asarray(self.opened) - closed)


@dataclass(frozen=True)
class EndEffectorSpec:
    """The tool frame: URDF link name, optional fixed orientation (quaternion x, y, z, w) for IK, gripper."""

    link: str
    orientation: tuple[float, float, float, float] | None = None
    gripper: GripperSpec | None = None


@dataclass(frozen=True)
class SensorSpec:
    """A sensor on the robot: kind (``joint_encoder``, ``camera``, ...), rate in Hz, noise std in its unit."""

    name: str
    kind: str
    rate_hz: float
    noise_std: float = 0.0


@dataclass(frozen=True)
class RobotSpec:
    """Everything the toolkit knows about one robot model.

    ``urdf`` is a path relative to ``pybullet_data`` when ``urdf_source == "pybullet_data"`` (loaded at run time,
    never copied) or relative to this package's ``urdf/`` folder when ``urdf_source == "package"``.
    ``home`` holds joint positions in ``joints`` order; ``workspace`` is an axis-aligned box (m, robot base frame)
    the end effector is kept inside.
    """

    name: str
    description: str
    urdf: str
    urdf_source: Literal["pybullet_data", "package"]
    joints: tuple[JointSpec, ...]
    actuators: tuple[ActuatorSpec, ...]
    end_effector: EndEffectorSpec
    home: tuple[float, ...]
    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    sensors: tuple[SensorSpec, ...] = ()
    control_modes: tuple[ControlMode, ...] = ("ee", "joints")
    control_rate_hz: float = 25.0
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = self.joint_names
        if len(set(names)) != len(names):
            raise ValueError(f"robot {self.name}: duplicate joint names")
        if len(self.home) != len(names):
            raise ValueError(f"robot {self.name}: home has {len(self.home)} values for {len(names)} joints")
        if {a.joint for a in self.actuators} != set(names):
            raise ValueError(f"robot {self.name}: every joint needs exactly one actuator")
        gripper = self.end_effector.gripper
        if gripper is not None and not set(gripper.joints) <= set(names):
            raise ValueError(f"robot {self.name}: gripper joints must be robot joints")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        """Joints that are not part of the gripper, in spec order."""
        gripper = set(self.end_effector.gripper.joints) if self.end_effector.gripper else set()
        return tuple(n for n in self.joint_names if n not in gripper)

    @property
    def has_gripper(self) -> bool:
        return self.end_effector.gripper is not None

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints])

    @property
    def max_velocity(self) -> np.ndarray:
        return np.array([j.max_velocity for j in self.joints])

    def actuator(self, joint: str) -> ActuatorSpec:
        for actuator in self.actuators:
            if actuator.joint == joint:
                return actuator
        raise KeyError(joint)

    def index(self, joint: str) -> int:
        return self.joint_names.index(joint)
