"""What a multirotor *is*: :class:`QuadrotorSpec`, a frozen description shared by simulation and hardware.

Frames: world ENU (x east, y north, z up, metres); body FLU (x forward, y left, z up, origin at the centre of
mass). Quadrotors here use the "X" configuration with rotors numbered like gym-pybullet-drones' CF2X::

            front (+x)
       3 (CW)     0 (CCW)         rotor i sits at arm·(cos θi, sin θi, 0), θ = -45°, -135°, 135°, 45°
            \\   /                 CCW rotors (0, 2) push the body clockwise: reaction torque -km·ω² about +z
             (+)  → left is +y     CW rotors (1, 3) push it counter-clockwise: +km·ω² about +z
            /   \\
       2 (CCW)    1 (CW)

Units: rotor speeds are rpm (as in the published kf/km), thrust N, torque N·m, inertia kg·m², time s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

GRAVITY = 9.81  # m/s², magnitude; the world's gravity vector is (0, 0, -GRAVITY) in ENU
RPM_TO_RAD_S = 2.0 * math.pi / 60.0
_ROTOR_ANGLES = (-math.pi / 4, -3 * math.pi / 4, 3 * math.pi / 4, math.pi / 4)
YAW_SIGN = (-1.0, 1.0, -1.0, 1.0)  # sign of each rotor's reaction torque about body +z


@dataclass(frozen=True)
class QuadrotorSpec:
    """Physical constants of one X-configuration quadrotor (SI units, rpm for rotor speeds).

    Attributes:
        kf: thrust coefficient, thrust = kf·ω² (N/rpm²). km: yaw-torque coefficient, torque = km·ω² (N·m/rpm²).
        inertia: principal moments (Ixx, Iyy, Izz) in the body frame (kg·m²).
        thrust_to_weight: maximum total thrust over weight; sets ``max_rpm``.
        motor_time_constant: first-order rotor-speed lag (s).
        drag_xy, drag_z: rotor-drag coefficients (N per (m/s) per (rad/s) of summed rotor speed), body frame.
        ground_effect_coeff: Shi et al. 2019 coefficient; ``ground_effect_height`` (m) is where it fades to 0.
        max_body_rate (rad/s), max_tilt (rad), max_speed (m/s): ranges of the normalized action modes.
        sources: where each constant comes from.
    """

    name: str
    description: str
    urdf: str  # file name inside robots/urdf/
    mass: float
    arm_length: float
    kf: float
    km: float
    inertia: tuple[float, float, float]
    thrust_to_weight: float
    prop_radius: float
    motor_time_constant: float
    drag_xy: float
    drag_z: float
    ground_effect_coeff: float
    max_body_rate: float
    max_tilt: float
    max_speed: float
    collision_half_extents: tuple[float, float, float]
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        positive = ("mass", "arm_length", "kf", "km", "thrust_to_weight", "prop_radius", "motor_time_constant")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"quadrotor {self.name}: {name} must be positive")
        if min(self.inertia) <= 0:
            raise ValueError(f"quadrotor {self.name}: inertia must be positive")
        if self.thrust_to_weight <= 1.0:
            raise ValueError(f"quadrotor {self.name}: thrust_to_weight must exceed 1 to fly")

    @property
    def weight(self) -> float:
        """N."""
        return self.mass * GRAVITY

    @property
    def hover_rpm(self) -> float:
        """Rotor speed (rpm) at which four rotors carry the weight."""
        return math.sqrt(self.weight / (4.0 * self.kf))

    @property
    def max_rpm(self) -> float:
        """Rotor speed (rpm) giving ``thrust_to_weight`` times the weight."""
        return math.sqrt(self.thrust_to_weight * self.weight / (4.0 * self.kf))

    @property
    def max_thrust(self) -> float:
        """Total thrust at ``max_rpm`` (N)."""
        return 4.0 * self.kf * self.max_rpm ** 2

    @property
    def ground_effect_height(self) -> float:
        """Rotor height (m) above which the ground-effect model is zero (20 propeller radii)."""
        return 20.0 * self.prop_radius

    @property
    def rotor_positions(self) -> np.ndarray:
        """(4, 3) rotor hub positions in the body frame (m)."""
        return np.array([[self.arm_length * math.cos(a), self.arm_length * math.sin(a), 0.0] for a in _ROTOR_ANGLES])

    @property
    def inertia_matrix(self) -> np.ndarray:
        return np.diag(self.inertia)


def crazyflie_spec() -> QuadrotorSpec:
    """Bitcraze Crazyflie 2.x class, CF2X configuration (constants as used by gym-pybullet-drones)."""
    return QuadrotorSpec(
        name="crazyflie", description="Crazyflie 2.x-class nano quadrotor, X configuration", urdf="cf2x.urdf",
        mass=0.027, arm_length=0.0397, kf=3.16e-10, km=7.94e-12, inertia=(1.4e-5, 1.4e-5, 2.17e-5),
        thrust_to_weight=2.25, prop_radius=0.0231, motor_time_constant=0.05, drag_xy=9.1785e-7, drag_z=10.311e-7,
        ground_effect_coeff=11.37, max_body_rate=6.0, max_tilt=0.5, max_speed=1.0,
        collision_half_extents=(0.045, 0.045, 0.012),
        sources=(
            "mass, arm, kf, km, inertia, thrust-to-weight, prop radius: Forster 2015; Luis & Le Ny 2016; "
            "Landry 2015 (as in gym-pybullet-drones cf2x.urdf)",
            "drag_xy, drag_z: Forster 2015 rotor-drag model F = -k·Σω·v (ω in rad/s)",
            "ground_effect_coeff: Shi et al. 2019 model as fitted in gym-pybullet-drones",
            "motor_time_constant 0.05 s: assumption for brushed 7 mm motors (no public measurement in the "
            "reference); Molchanov et al. 2019 randomized 0.15-0.2 s, covered by the randomizer's hard limits",
            "max_body_rate, max_tilt, max_speed: action-range choices of this toolkit, not vehicle limits",
        ),
    )


def racer_spec() -> QuadrotorSpec:
    """Racer / PX4-class 5-inch quadrotor, X configuration."""
    return QuadrotorSpec(
        name="racer", description="racer / PX4-class 5-inch quadrotor, X configuration", urdf="racer.urdf",
        mass=0.83, arm_length=0.109, kf=8.47e-9, km=2.13e-11, inertia=(3.1e-3, 3.1e-3, 3.1e-3),
        thrust_to_weight=4.2, prop_radius=0.0635, motor_time_constant=0.03, drag_xy=9.1785e-7 * 30.7,
        drag_z=10.311e-7 * 30.7, ground_effect_coeff=11.37, max_body_rate=12.0, max_tilt=0.7, max_speed=3.0,
        collision_half_extents=(0.12, 0.12, 0.03),
        sources=(
            "mass, arm, kf, km, inertia, thrust-to-weight: shared/reference/quadcopter.md (racer class)",
            "prop_radius 0.0635 m: 5-inch propeller",
            "drag_xy, drag_z: Crazyflie rotor-drag coefficients scaled by the mass ratio 0.83/0.027 = 30.7 "
            "(assumption: same drag-to-weight ratio per unit rotor speed)",
            "ground_effect_coeff: Crazyflie value reused (assumption)",
            "motor_time_constant 0.03 s: assumption for 5-inch brushless propulsion",
        ),
    )


QUADROTORS = {"crazyflie": crazyflie_spec, "racer": racer_spec}


def get_quadrotor_spec(name: str) -> QuadrotorSpec:
    """Spec of a known quadrotor; ``KeyError`` names the known ones."""
    try:
        return QUADROTORS[name]()
    except KeyError:
        raise KeyError(f"unknown quadrotor {name!r} (known: {', '.join(sorted(QUADROTORS))})") from None
