"""Onboard controller stack, run at physics rate: position → velocity → attitude → body-rate PID, then the mixer.

Frames: world ENU, body FLU. Each loop turns its setpoint into the next one down:

* position P: v_d = kp_pos·(p_d - p), clipped to the spec's ``max_speed`` (m/s).
* velocity PI: a_d = kp_vel·(v_d - v) + ki_vel·∫(v_d - v) + g·ẑ (m/s², tilt limited to ``max_tilt``);
  thrust T = m·a_d·b̂3 (N) and the desired attitude puts body z along a_d at the current yaw.
* attitude P (geometric, Lee et al. 2010): e_R = ½·vee(R_dᵀR - RᵀR_d); ω_d = -kp_att·e_R (rad/s), with the yaw
  component replaced by the commanded yaw rate.
* body-rate PID: α_d = kp_rate·(ω_d - ω) + ki_rate·∫(ω_d - ω) - kd_rate·ω̇ (rad/s²); torque τ = I·α_d + ω × Iω.
* mixer: rotor thrusts from [T, τx, τy, τz] by inverting the nominal allocation matrix, clipped to
  [0, max thrust / 4], then ω_i = sqrt(f_i / kf) (rpm).

Gains (:meth:`Gains.for_spec`) follow from the motor time constant τm: the rate loop with motor lag has the
characteristic polynomial τm·s² + (1 + kd)·s + kp, so kp_rate = τm·ωn² and kd_rate = 2ζ·ωn·τm - 1 place its
poles at natural frequency ωn = 0.8/τm with damping ζ = 0.7 (ki_rate = kp_rate·ωn/15, an integrator for
rotor asymmetry); attitude kp = ωn/4, velocity kp = attitude kp/2.5 with ki = kp²/2, position kp = velocity kp/2.
The controller always uses the *nominal* spec (it does not see randomized parameters).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robots.quadrotor import GRAVITY, YAW_SIGN, QuadrotorSpec
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MotorRpm, Position, Setpoint, Velocity
from sim2real.sim.quadrotor_physics import Kinematics


@dataclass(frozen=True)
class Gains:
    """PID gains: rate (kp 1/s, ki 1/s², kd dimensionless), attitude kp (1/s), velocity kp (1/s) and ki (1/s²),
    position kp (1/s); integrator limits on the integral state in rad (rate) and m (velocity: horizontal, vertical)."""

    rate_p: float
    rate_i: float
    rate_d: float
    yaw_rate_p: float
    attitude_p: float
    velocity_p: float
    velocity_i: float
    position_p: float
    rate_i_limit: float
    velocity_i_limit: float
    vertical_i_limit: float

    @classmethod
    def for_spec(cls, spec: QuadrotorSpec, bandwidth: float = 0.8, damping: float = 0.7) -> "Gains":
        """Gains placing the rate-loop poles at ωn = bandwidth/τm, damping ζ (see the module docstring).

        Integrators may use 30 % of the authority: the rate integral up to 0.3 of the roll/pitch angular
        acceleration the rotors can add above hover, the horizontal velocity integral up to 0.3·g. The vertical one
        may add 0.6·g: it stands in for the thrust the nominal hover feed-forward lacks on a heavier or weaker
        vehicle (mass ×1.25 with kf ×0.85 needs +0.47·g to hover), as the firmware's thrust-base integrator does.
        """
        tau = spec.motor_time_constant
        wn = bandwidth / tau
        rate_p, rate_i = tau * wn * wn, tau * wn * wn * wn / 15.0
        attitude = wn / 4.0
        velocity = attitude / 2.5
        velocity_i = velocity * velocity / 2.0
        spare = spec.max_thrust / 4.0 - spec.weight / 4.0  # N per rotor above hover
        authority = 2.0 * spare * spec.arm_length / math.sqrt(2.0) / spec.inertia[0]  # rad/s²
        return cls(rate_p=rate_p, rate_i=rate_i, rate_d=max(2 * damping * wn * tau - 1, 0.0), yaw_rate_p=rate_p,
                   attitude_p=attitude, velocity_p=velocity, velocity_i=velocity_i, position_p=velocity / 2.0,
                   rate_i_limit=0.3 * authority / rate_i, velocity_i_limit=0.3 * GRAVITY / velocity_i,
                   vertical_i_limit=0.6 * GRAVITY / velocity_i)


class Mixer:
    """Wrench [T (N), τx, τy, τz (N·m, body)] → rotor speeds (rpm), from the spec's nominal kf, km and geometry."""

    def __init__(self, spec: QuadrotorSpec) -> None:
        r = spec.rotor_positions
        allocation = np.vstack([np.ones(4), r[:, 1], -r[:, 0], np.array(YAW_SIGN) * spec.km / spec.kf])
        self.matrix = allocation  # rotor thrusts (N) → wrench
        self._inverse = [tuple(float(v) for v in row) for row in np.linalg.inv(allocation)]
        self._kf, self._fmax = spec.kf, spec.max_thrust / 4.0

    def rpm(self, thrust: float, tx: float, ty: float, tz: float) -> list[float]:
        out = []
        for a, b, c, d in self._inverse:
            f = a * thrust + b * tx + c * ty + d * tz
            f = 0.0 if f < 0.0 else (self._fmax if f > self._fmax else f)
            out.append(math.sqrt(f / self._kf))
        return out


def tilt_rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation body→world of ZYX Euler angles (rad)."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


class FlightController:
    """The cascade above for one vehicle; :meth:`update` runs once per physics step of ``dt`` seconds."""

    def __init__(self, spec: QuadrotorSpec, dt: float, gains: Gains | None = None) -> None:
        self.spec, self.dt = spec, dt
        self.gains = gains or Gains.for_spec(spec)
        self.mixer = Mixer(spec)
        self._inertia = tuple(float(v) for v in spec.inertia)
        self.reset()

    def reset(self) -> None:
        """Clear integrators and derivative memory."""
        self._rate_integral = [0.0, 0.0, 0.0]
        self._previous_rates: tuple[float, float, float] | None = None
        self._velocity_integral = [0.0, 0.0, 0.0]

    def update(self, setpoint: Setpoint, kin: Kinematics) -> list[float]:
        """Rotor-speed commands (rpm) for ``setpoint`` given the measured state ``kin``."""
        if isinstance(setpoint, MotorRpm):
            self._previous_rates = kin.body_rates
            return [float(v) for v in setpoint.rpm]
        if isinstance(setpoint, Ctbr):
            rates = setpoint.body_rates
            return self.rates(setpoint.thrust, float(rates[0]), float(rates[1]), float(rates[2]), kin)
        if isinstance(setpoint, AttitudeThrust):
            r = kin.rotation
            target = tilt_rotation(setpoint.roll, setpoint.pitch, math.atan2(r[3], r[0])).ravel().tolist()
            return self._attitude(setpoint.thrust, target, setpoint.yaw_rate, kin)
        if isinstance(setpoint, Position):
            (tx, ty, tz), (x, y, z), kp = setpoint.position, kin.position, self.gains.position_p
            v = [kp * (float(tx) - x), kp * (float(ty) - y), kp * (float(tz) - z)]
            speed = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
            if speed > self.spec.max_speed:
                v = [c * self.spec.max_speed / speed for c in v]
            return self._velocity(v, setpoint.yaw_rate, kin)
        if isinstance(setpoint, Velocity):
            return self._velocity([float(c) for c in setpoint.velocity], setpoint.yaw_rate, kin)
        raise TypeError(f"unsupported setpoint {type(setpoint).__name__}")

    def rates(self, thrust: float, px: float, py: float, pz: float, kin: Kinematics) -> list[float]:
        """Body-rate PID + mixer: collective thrust (N) and desired body rates (rad/s) → rpm."""
        g, dt, (ix, iy, iz) = self.gains, self.dt, self._inertia
        wx, wy, wz = kin.body_rates
        previous = self._previous_rates or kin.body_rates
        self._previous_rates = kin.body_rates
        limit, integral = g.rate_i_limit, self._rate_integral
        alpha = []
        for axis, (target, w, w0) in enumerate(((px, wx, previous[0]), (py, wy, previous[1]), (pz, wz, previous[2]))):
            error = target - w
            integral[axis] = min(max(integral[axis] + error * dt, -limit), limit)
            kp = g.rate_p if axis < 2 else g.yaw_rate_p
            alpha.append(kp * error + g.rate_i * integral[axis] - g.rate_d * (w - w0) / dt)
        # τ = I·α + ω × (I·ω)
        tx = ix * alpha[0] + (iz - iy) * wy * wz
        ty = iy * alpha[1] + (ix - iz) * wz * wx
        tz = iz * alpha[2] + (iy - ix) * wx * wy
        return self.mixer.rpm(thrust, tx, ty, tz)

    def _attitude(self, thrust: float, target: list[float], yaw_rate: float, kin: Kinematics) -> list[float]:
        """Geometric attitude P: ``target`` is the desired rotation body→world, 9 values row-major."""
        r, d, kp = kin.rotation, target, 0.5 * self.gains.attitude_p
        # e = R_dᵀR - RᵀR_d; only e[2, 1] (roll) and e[0, 2] (pitch) are used, yaw follows the yaw-rate command
        e21 = sum(d[3 * k + 2] * r[3 * k + 1] - r[3 * k + 2] * d[3 * k + 1] for k in range(3))
        e02 = sum(d[3 * k] * r[3 * k + 2] - r[3 * k] * d[3 * k + 2] for k in range(3))
        return self.rates(thrust, -kp * e21, -kp * e02, yaw_rate, kin)

    def _velocity(self, velocity: list[float], yaw_rate: float, kin: Kinematics) -> list[float]:
        g, spec, dt, integral = self.gains, self.spec, self.dt, self._velocity_integral
        accel = []
        for axis in range(3):
            error = velocity[axis] - kin.velocity[axis]
            limit = g.vertical_i_limit if axis == 2 else g.velocity_i_limit
            integral[axis] = min(max(integral[axis] + error * dt, -limit), limit)
            accel.append(g.velocity_p * error + g.velocity_i * integral[axis])
        accel[2] = max(accel[2] + GRAVITY, 0.2 * GRAVITY)
        horizontal = math.hypot(accel[0], accel[1])
        max_horizontal = accel[2] * math.tan(spec.max_tilt)
        if horizontal > max_horizontal:
            accel[0] *= max_horizontal / horizontal
            accel[1] *= max_horizontal / horizontal
        norm = math.sqrt(accel[0] ** 2 + accel[1] ** 2 + accel[2] ** 2)
        b3 = [c / norm for c in accel]
        r = kin.rotation
        yaw = math.atan2(r[3], r[0])
        cy, sy = math.cos(yaw), math.sin(yaw)
        b2 = [-b3[2] * sy, b3[2] * cy, b3[0] * sy - b3[1] * cy]  # b3 × (cos ψ, sin ψ, 0)
        n2 = math.sqrt(b2[0] ** 2 + b2[1] ** 2 + b2[2] ** 2)
        b2 = [c / n2 for c in b2]
        b1 = [b2[1] * b3[2] - b2[2] * b3[1], b2[2] * b3[0] - b2[0] * b3[2], b2[0] * b3[1] - b2[1] * b3[0]]
        target = [b1[0], b2[0], b3[0], b1[1], b2[1], b3[1], b1[2], b2[2], b3[2]]
        thrust = spec.mass * (accel[0] * r[2] + accel[1] * r[5] + accel[2] * r[8])
        return self._attitude(min(max(thrust, 0.0), spec.max_thrust), target, yaw_rate, kin)
