"""Quadrotor rigid-body physics in PyBullet: rotor thrust and yaw torque, first-order motor lag, rotor drag, ground
effect and wind with gusts.

Frames: world ENU (z up, gravity -z); body FLU with rotors as in :mod:`robots.quadrotor`. Per physics step of
``dt`` seconds, with commanded rotor speeds u (rpm):

* motor lag (exact zero-order-hold solution of τ·dω/dt = u - ω): ω ← ω + (1 - exp(-dt/τ))·(u - ω)
* rotor i: thrust f_i = kf_i·a_i·b·ω_i² along body +z at its hub r_i, reaction torque s_i·km_i·b·ω_i² about
  body +z (a_i per-motor asymmetry, s_i from ``YAW_SIGN``, b the battery factor below). Forces at the hubs are
  summed into one body wrench: F = Σ f_i ẑ, τ = Σ r_i × f_i ẑ + Σ s_i·km_i·ω_i²  (exact for a rigid body).
* battery sag under load: b = max(0.5, 1 - sag·∫ P/P_hover dt), the rotor power P ∝ Σ ω_i³ relative to hovering at
  the spec's ``hover_rpm`` (ideal rotor power ∝ thrust^1.5 ∝ ω³). Hovering drains ``sag`` per second, stopped motors
  drain nothing (the electronics' own small draw is not modelled).
* ground effect (Shi et al. 2019): extra thrust kf·ω²·c·[(R/4h)² - (R/4h_max)²]₊ per rotor at hub height h, with
  h clipped below at R/2 and faded to zero at h_max (so the model is continuous and exactly off at altitude).
* rotor drag (Forster 2015): F_b = -diag(kxy, kxy, kz)·Σω·(v_b - w_b), Σω in rad/s, v_b the body-frame velocity
  and w_b the body-frame wind velocity.
* wind: mean vector (m/s, world) plus an Ornstein-Uhlenbeck gust of std σ and time constant τ_g per axis; it acts
  through the rotor-drag term (no drag, no wind force).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pybullet as p
import pybullet_data

from robots.quadrotor import GRAVITY, RPM_TO_RAD_S, YAW_SIGN, QuadrotorSpec

URDF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "robots", "urdf")


@dataclass(frozen=True)
class QuadPhysicsConfig:
    """Physics rate (Hz), control rate (Hz, must divide it) and which effects are modelled."""

    physics_hz: float = 240.0
    control_hz: float = 48.0
    motor_lag: bool = True
    drag: bool = True
    ground_effect: bool = True
    ground: bool = True  # a ground plane at z = 0

    def __post_init__(self) -> None:
        ratio = self.physics_hz / self.control_hz
        if self.control_hz <= 0 or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"physics_hz {self.physics_hz} must be a whole multiple of control_hz {self.control_hz}")

    @property
    def dt(self) -> float:
        """Physics timestep (s)."""
        return 1.0 / self.physics_hz

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return int(round(self.physics_hz / self.control_hz))


class Wind:
    """Mean wind plus Ornstein-Uhlenbeck gusts (world frame, m/s), advanced once per physics step."""

    def __init__(self) -> None:
        self.mean = np.zeros(3)
        self.gust_std = 0.0
        self.gust_tau = 1.0
        self.gust = np.zeros(3)
        self.rng = np.random.default_rng(0)

    @property
    def active(self) -> bool:
        return self.gust_std > 0.0 or bool(np.any(self.mean))

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.gust = rng.normal(0.0, self.gust_std, 3) if self.gust_std > 0 else np.zeros(3)

    def step(self, dt: float) -> tuple[float, float, float]:
        """Advance the gust by ``dt`` s (exact OU discretization); returns the wind velocity (m/s, world)."""
        if self.gust_std > 0:
            decay = math.exp(-dt / self.gust_tau)
            self.gust = decay * self.gust + self.gust_std * math.sqrt(1 - decay * decay) * self.rng.normal(size=3)
        w = self.mean + self.gust
        return float(w[0]), float(w[1]), float(w[2])


class Kinematics(NamedTuple):
    """Body state: position (m, world), quaternion (x, y, z, w), rotation body→world as 9 floats row-major,
    velocity (m/s, world), body rates (rad/s, body)."""

    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]
    rotation: tuple[float, ...]
    velocity: tuple[float, float, float]
    body_rates: tuple[float, float, float]


class QuadrotorPhysics:
    """One quadrotor body in its own headless PyBullet client.

    Mutable model parameters (randomizers set them; :meth:`restore_nominal` puts the spec's values back):
    ``kf``, ``km``, ``asymmetry`` (4,) arrays, ``motor_time_constant`` (s), ``drag`` (3,) body-frame coefficients,
    ``battery_sag`` (1/s of hovering), ``wind`` (:class:`Wind`); mass and inertia via :meth:`set_mass_properties`.
    """

    def __init__(self, spec: QuadrotorSpec, config: QuadPhysicsConfig = QuadPhysicsConfig()) -> None:
        self.spec, self.config = spec, config
        self.client = p.connect(p.DIRECT)
        c = self.client
        p.setTimeStep(config.dt, physicsClientId=c)
        p.setGravity(0.0, 0.0, -GRAVITY, physicsClientId=c)
        self.plane = -1
        if config.ground:
            p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
            self.plane = p.loadURDF("plane.urdf", physicsClientId=c)
        self.body = p.loadURDF(os.path.join(URDF_DIR, spec.urdf), (0.0, 0.0, 1.0), flags=p.URDF_USE_INERTIA_FROM_FILE,
                               physicsClientId=c)
        p.changeDynamics(self.body, -1, linearDamping=0.0, angularDamping=0.0, physicsClientId=c)
        self._rotors = spec.rotor_positions
        self._rotor_list = [tuple(float(v) for v in row) for row in self._rotors]
        self._yaw_sign = np.array(YAW_SIGN)
        self.wind = Wind()
        self.restore_nominal()
        self._rpm = [0.0] * 4
        self.battery_used = 0.0  # ∫ P/P_hover dt (s of hovering) since the last reset
        self.steps = 0

    @property
    def bodies(self) -> dict[str, int]:
        """Named PyBullet bodies of this scene (``quadrotor``, and ``ground`` when there is one)."""
        return {"quadrotor": self.body, **({"ground": self.plane} if self.plane >= 0 else {})}

    # --- parameters -------------------------------------------------------------------------------------------
    def restore_nominal(self) -> None:
        """Every model parameter back to the spec's value."""
        s = self.spec
        self.kf = np.full(4, s.kf)
        self.km = np.full(4, s.km)
        self.asymmetry = np.ones(4)
        self.motor_time_constant = s.motor_time_constant
        self.drag = np.array([s.drag_xy, s.drag_xy, s.drag_z])
        self.battery_sag = 0.0
        self.wind.mean, self.wind.gust_std, self.wind.gust_tau = np.zeros(3), 0.0, 1.0
        self.set_mass_properties(s.mass, np.asarray(s.inertia))
        self.update_model()

    def set_mass_properties(self, mass: float, inertia: np.ndarray) -> None:
        """Mass (kg) and principal inertia (kg·m², body frame) of the body in PyBullet."""
        p.changeDynamics(self.body, -1, mass=float(mass), localInertiaDiagonal=[float(v) for v in inertia],
                         physicsClientId=self.client)

    def mass_properties(self) -> tuple[float, np.ndarray]:
        """(mass kg, inertia diagonal kg·m²) as PyBullet holds them."""
        info = p.getDynamicsInfo(self.body, -1, physicsClientId=self.client)
        return float(info[0]), np.asarray(info[2])

    def update_model(self) -> None:
        """Recompute cached values; call after changing kf, km, asymmetry, motor time constant, drag or wind."""
        thrust = self.kf * self.asymmetry
        x, y = self._rotors[:, 0], self._rotors[:, 1]
        # rows: total thrust, roll torque (Σ y·f), pitch torque (Σ -x·f), yaw torque (Σ s·km·ω²) per ω² (rpm²)
        rows = np.vstack([thrust, y * thrust, -x * thrust, self._yaw_sign * self.km * self.asymmetry])
        self._rows = [tuple(float(v) for v in row) for row in rows]
        self._drag = tuple(float(v) for v in self.drag)
        spec = self.spec
        self._ge_gain = [float(g) * spec.ground_effect_coeff for g in thrust]
        self._quarter_r = spec.prop_radius / 4.0
        self._ge_floor = spec.prop_radius / 2.0
        self._ge_offset = (self._quarter_r / spec.ground_effect_height) ** 2
        self._ge_reach = spec.ground_effect_height + spec.arm_length if self.config.ground_effect else -math.inf
        self._wind_on = self.wind.active
        self._max_rpm = spec.max_rpm
        self._hover_power = 4.0 * spec.hover_rpm ** 3  # Σ ω³ (rpm³) while hovering: the battery's unit load
        tau = self.motor_time_constant
        self._lag = 1.0 - math.exp(-self.config.dt / tau) if (self.config.motor_lag and tau > 0) else 1.0

    # --- state --------------------------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated seconds since the last :meth:`reset`."""
        return self.steps * self.config.dt

    def reset(self, position, quaternion=(0.0, 0.0, 0.0, 1.0), velocity=(0.0, 0.0, 0.0),
              body_rates=(0.0, 0.0, 0.0), rpm: float | np.ndarray = 0.0,
              rng: np.random.Generator | None = None) -> None:
        """Place the body (world ENU), set its velocity (m/s, world), body rates (rad/s, body) and rotor speeds."""
        c = self.client
        p.resetBasePositionAndOrientation(self.body, list(position), list(quaternion), physicsClientId=c)
        rotation = np.asarray(p.getMatrixFromQuaternion(list(quaternion))).reshape(3, 3)
        p.resetBaseVelocity(self.body, list(velocity), list(rotation @ np.asarray(body_rates, dtype=float)),
                            physicsClientId=c)
        self._rpm = [float(v) for v in np.broadcast_to(np.asarray(rpm, dtype=float), (4,))]
        self.steps = 0
        self.battery_used = 0.0
        self.wind.reset(rng if rng is not None else np.random.default_rng(0))

    @property
    def rpm(self) -> np.ndarray:
        """Current rotor speeds (rpm)."""
        return np.array(self._rpm)

    def kinematics(self) -> Kinematics:
        """The body's state from PyBullet, as plain floats (the hot loop avoids small numpy arrays)."""
        c = self.client
        pos, quat = p.getBasePositionAndOrientation(self.body, physicsClientId=c)
        vel, ang = p.getBaseVelocity(self.body, physicsClientId=c)
        r = p.getMatrixFromQuaternion(quat)
        rates = (r[0] * ang[0] + r[3] * ang[1] + r[6] * ang[2], r[1] * ang[0] + r[4] * ang[1] + r[7] * ang[2],
                 r[2] * ang[0] + r[5] * ang[1] + r[8] * ang[2])
        return Kinematics(pos, quat, r, vel, rates)

    @property
    def battery_factor(self) -> float:
        """Thrust and torque factor from the battery drawn so far (1 = full battery, 0.5 the model's floor)."""
        return max(0.5, 1.0 - self.battery_sag * self.battery_used) if self.battery_sag else 1.0

    def body_wrench(self, kin: Kinematics, wind: tuple[float, float, float] | None = None) -> tuple[list, list]:
        """Body-frame force (N) and torque (N·m) at the current rotor speeds and state ``kin``."""
        w2 = [w * w for w in self._rpm]
        b = self.battery_factor
        out = [b * (row[0] * w2[0] + row[1] * w2[1] + row[2] * w2[2] + row[3] * w2[3]) for row in self._rows]
        force, torque = [0.0, 0.0, out[0]], out[1:]
        r, z = kin.rotation, kin.position[2]
        if z < self._ge_reach:
            for (x, y, _), gain, w in zip(self._rotor_list, self._ge_gain, w2):
                h = max(z + x * r[6] + y * r[7], self._ge_floor)
                shape = (self._quarter_r / h) ** 2 - self._ge_offset
                if shape > 0.0:
                    f = b * gain * w * shape
                    force[2] += f
                    torque[0] += y * f
                    torque[1] -= x * f
        if self.config.drag:
            v = kin.velocity
            if wind is not None:
                v = (v[0] - wind[0], v[1] - wind[1], v[2] - wind[2])
            k = -(self._rpm[0] + self._rpm[1] + self._rpm[2] + self._rpm[3]) * RPM_TO_RAD_S
            dx, dy, dz = self._drag
            force[0] += k * dx * (r[0] * v[0] + r[3] * v[1] + r[6] * v[2])
            force[1] += k * dy * (r[1] * v[0] + r[4] * v[1] + r[7] * v[2])
            force[2] += k * dz * (r[2] * v[0] + r[5] * v[1] + r[8] * v[2])
        return force, torque

    def step(self, rpm_command, kin: Kinematics | None = None) -> None:
        """Advance one physics step with rotor-speed commands (4 rpm values, clipped to [0, max_rpm]).

        ``kin`` is this step's :meth:`kinematics` when the caller (the controller) already read it.
        """
        lag, top, rpm = self._lag, self._max_rpm, self._rpm
        for i in range(4):
            u = rpm_command[i]
            u = 0.0 if u < 0.0 else (top if u > top else u)
            rpm[i] += lag * (u - rpm[i])
        load = (rpm[0] ** 3 + rpm[1] ** 3 + rpm[2] ** 3 + rpm[3] ** 3) / self._hover_power  # rotor power / hover
        self.battery_used += load * self.config.dt
        if kin is None:
            kin = self.kinematics()
        wind = self.wind.step(self.config.dt) if self._wind_on else None
        (fx, fy, fz), (tx, ty, tz) = self.body_wrench(kin, wind)
        r, c = kin.rotation, self.client
        p.applyExternalForce(self.body, -1, (r[0] * fx + r[1] * fy + r[2] * fz, r[3] * fx + r[4] * fy + r[5] * fz,
                                             r[6] * fx + r[7] * fy + r[8] * fz), kin.position, p.WORLD_FRAME,
                             physicsClientId=c)
        p.applyExternalTorque(self.body, -1, (r[0] * tx + r[1] * ty + r[2] * tz, r[3] * tx + r[4] * ty + r[5] * tz,
                                              r[6] * tx + r[7] * ty + r[8] * tz), p.WORLD_FRAME, physicsClientId=c)
        p.stepSimulation(physicsClientId=c)
        self.steps += 1

    def in_contact(self) -> bool:
        """Whether the body touches the ground."""
        if self.plane < 0:
            return False
        return bool(p.getContactPoints(self.body, self.plane, physicsClientId=self.client))

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
