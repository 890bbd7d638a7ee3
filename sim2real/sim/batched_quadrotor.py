"""N quadrotors stepped at once in numpy: the model of :mod:`sim2real.sim.quadrotor_physics` and the onboard
controller of :mod:`sim2real.sim.flight_controller`, vectorized over vehicles.

Same constants, same effects and the same order of operations per physics step of ``dt`` seconds as the PyBullet
reference (motor lag, battery sag, ground effect, rotor drag with wind and OU gusts, kf·ω² / km·ω² rotor wrench,
setpoint latency, gyro noise seen by the rate loop); only the rigid-body integration is written out here instead of
calling PyBullet. It is what PyBullet's single-link multibody does: semi-implicit Euler for the linear state
(v ← v + dt·(F/m - g ẑ), p ← p + dt·v), explicit Euler for the body rates with the gyroscopic term
(ω ← ω + dt·I⁻¹(τ - ω × Iω), body frame), each world-frame component of ω capped at :data:`MAX_SPIN` as
PyBullet does, and an exact exponential-map quaternion update with the new rates. There is no floor:
:meth:`BatchedQuadrotor.touches_ground` reports when a vehicle's collision box reaches z = 0 (the envs end the
episode there, as the PyBullet env does on ground contact).

Frames and units as in the reference: world ENU, body FLU, rotor speeds in rpm, quaternions (x, y, z, w).
Arrays are stored component-major, (k, N) with the vehicle axis last (numpy is fastest on long contiguous rows);
the ``position``, ``velocity``, ... properties give the usual (N, k) views. Setpoints are one mode for the batch plus
an (N, 4) array laid out as :data:`SETPOINT_FIELDS` says.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from robots.quadrotor import GRAVITY, RPM_TO_RAD_S, YAW_SIGN, QuadrotorSpec
from sim2real.sim.flight_controller import Gains, Mixer
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig

MAX_SPIN = 100.0  # rad/s: PyBullet's cap on each world-frame component of a body's angular velocity
SETPOINT_FIELDS = {  # mode: the four columns of its (N, 4) setpoint array
    "rpm": ("rotor 0 rpm", "rotor 1 rpm", "rotor 2 rpm", "rotor 3 rpm"),
    "ctbr": ("thrust N", "roll rate rad/s", "pitch rate rad/s", "yaw rate rad/s"),
    "attitude": ("thrust N", "roll rad", "pitch rad", "yaw rate rad/s"),
    "velocity": ("vx m/s", "vy m/s", "vz m/s", "yaw rate rad/s"),
    "position": ("x m", "y m", "z m", "yaw rate rad/s"),
}


@dataclass
class BatchedParams:
    """Per-vehicle model parameters, vehicle axis last (write vehicle i as ``params.kf[..., i] = ...``): the fields
    ``QuadrotorPhysics`` and ``SimMultirotor`` hold for one vehicle. mass (N,) kg, inertia (3, N) kg·m², kf (4, N)
    N/rpm², km (4, N) N·m/rpm², asymmetry (4, N), motor_time_constant (N,) s, drag (3, N) body-frame coefficients,
    battery_sag (N,) 1/s of hovering, wind_mean (3, N) m/s world, gust_std (N,) m/s, gust_tau (N,) s, latency (N,)
    s, position/velocity/gyro noise stds (N,) m, m/s, rad/s."""

    mass: np.ndarray
    inertia: np.ndarray
    kf: np.ndarray
    km: np.ndarray
    asymmetry: np.ndarray
    motor_time_constant: np.ndarray
    drag: np.ndarray
    battery_sag: np.ndarray
    wind_mean: np.ndarray
    gust_std: np.ndarray
    gust_tau: np.ndarray
    latency: np.ndarray
    position_noise_std: np.ndarray
    velocity_noise_std: np.ndarray
    gyro_noise_std: np.ndarray

    @classmethod
    def nominal(cls, spec: QuadrotorSpec, n: int) -> BatchedParams:
        """``n`` copies of the spec's nominal model (no wind, sag, latency or noise)."""
        def column(values) -> np.ndarray:
            return np.repeat(np.asarray(values, dtype=float)[:, None], n, axis=1)

        return cls(mass=np.full(n, spec.mass), inertia=column(spec.inertia), kf=np.full((4, n), spec.kf),
                   km=np.full((4, n), spec.km), asymmetry=np.ones((4, n)),
                   motor_time_constant=np.full(n, spec.motor_time_constant),
                   drag=column([spec.drag_xy, spec.drag_xy, spec.drag_z]), battery_sag=np.zeros(n),
                   wind_mean=np.zeros((3, n)), gust_std=np.zeros(n), gust_tau=np.ones(n), latency=np.zeros(n),
                   position_noise_std=np.zeros(n), velocity_noise_std=np.zeros(n), gyro_noise_std=np.zeros(n))

    def restore_nominal(self, nominal: BatchedParams, index: int) -> None:
        """Vehicle ``index`` back to ``nominal``'s (one-vehicle) values."""
        for f in fields(self):
            getattr(self, f.name)[..., index] = getattr(nominal, f.name)[..., 0]


_DIAGONAL, _OFF_DIAGONAL = [0, 4, 8], [1, 2, 3, 5, 6, 7]  # entries of a row-major 3 x 3 matrix
_SKEW_AXIS, _SKEW_SIGN = [2, 1, 2, 0, 1, 0], np.array([-1.0, 1.0, 1.0, -1.0, -1.0, 1.0])[:, None]
_NEXT, _AFTER = [1, 2, 0], [2, 0, 1]


def quaternion_rotation(q: np.ndarray) -> np.ndarray:
    """(9, N) rotations body→world, row-major, from (4, N) unit quaternions (x, y, z, w):
    R = (w² - |v|²)·I + 2·v·vᵀ + 2·w·[v]×."""
    v, w = q[:3], q[3]
    r = (2.0 * v[:, None] * v[None]).reshape(9, -1)
    r[_DIAGONAL] += w * w - (v * v).sum(axis=0)
    r[_OFF_DIAGONAL] += _SKEW_SIGN * (2.0 * w * v)[_SKEW_AXIS]
    return r


def _rotate_to_world(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R·v for (9, N) row-major rotations and (3, N) vectors."""
    return (r.reshape(3, 3, -1) * v[None]).sum(axis=1)


def _rotate_to_body(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rᵀ·v for (9, N) row-major rotations and (3, N) vectors."""
    return (r.reshape(3, 3, -1) * v[:, None]).sum(axis=0)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b for (3, N) vectors."""
    return a[_NEXT] * b[_AFTER] - a[_AFTER] * b[_NEXT]


def euler_rotation(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(9, N) rotations body→world (row-major) of ZYX Euler angles (rad), as ``flight_controller.tilt_rotation``."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    return np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr,
                     sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr,
                     -sp, cp * sr, cp * cr])


class BatchedController:
    """The ``FlightController`` cascade for N vehicles (nominal spec, one set of gains), run once per physics step
    of ``dt`` seconds. Arrays are component-major: rotations (9, N), vectors (3, N), setpoints (4, N)."""

    def __init__(self, spec: QuadrotorSpec, n: int, dt: float, gains: Gains | None = None) -> None:
        self.spec, self.n, self.dt = spec, n, dt
        self.gains = gains or Gains.for_spec(spec)
        self._inverse = np.linalg.inv(Mixer(spec).matrix)  # wrench → rotor thrusts (N)
        self._inertia = np.asarray(spec.inertia, dtype=float)[:, None]
        self._kp = np.array([self.gains.rate_p, self.gains.rate_p, self.gains.yaw_rate_p])[:, None]
        self._top = spec.max_thrust / 4.0
        self.rate_integral = np.zeros((3, n))
        self.velocity_integral = np.zeros((3, n))
        self.previous_rates = np.zeros((3, n))
        self.has_previous = np.zeros(n, bool)

    def reset(self, index: np.ndarray) -> None:
        """Clear integrators and derivative memory of vehicles ``index`` (indices or a boolean mask)."""
        self.rate_integral[:, index] = 0.0
        self.velocity_integral[:, index] = 0.0
        self.has_previous[index] = False

    def _state(self) -> tuple[np.ndarray, ...]:
        return (self.rate_integral.copy(), self.velocity_integral.copy(), self.previous_rates.copy(),
                self.has_previous.copy())

    def _set_state(self, state: tuple[np.ndarray, ...]) -> None:
        self.rate_integral, self.velocity_integral, self.previous_rates, self.has_previous = state

    def update(self, mode: str, values: np.ndarray, rotation: np.ndarray, velocity: np.ndarray,
               position: np.ndarray, rates: np.ndarray, hold: np.ndarray | None = None) -> np.ndarray:
        """(4, N) rotor-speed commands (rpm) for setpoints of ``mode`` (``values`` (4, N), rows as
        :data:`SETPOINT_FIELDS`) given the measured state; vehicles flagged in the boolean ``hold`` (N,) fly the
        reset setpoint instead (hover CTBR), as the reference does until its first setpoint arrives."""
        if hold is not None:
            hover = np.zeros((4, self.n))
            hover[0] = self.spec.weight
            if mode == "ctbr":
                return self.update(mode, np.where(hold, hover, values), rotation, velocity, position, rates)
            before = self._state()  # two passes from the same controller state; each vehicle keeps its own
            out = self.update(mode, values, rotation, velocity, position, rates)
            after = self._state()
            self._set_state(before)
            hovering = self.update("ctbr", hover, rotation, velocity, position, rates)
            self._set_state(tuple(np.where(hold, h, a) for a, h in zip(after, self._state())))
            return np.where(hold, hovering, out)
        if mode == "rpm":
            self.previous_rates = rates.copy()
            self.has_previous[:] = True
            return np.array(values, dtype=float)
        if mode == "ctbr":
            return self.rates(values[0], values[1:], rates)
        if mode == "attitude":
            target = euler_rotation(values[1], values[2], np.arctan2(rotation[3], rotation[0]))
            return self._attitude(values[0], target, values[3], rotation, rates)
        if mode == "position":
            v = self.gains.position_p * (values[:3] - position)
            speed = np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
            fast = speed > self.spec.max_speed
            v = np.where(fast, v * (self.spec.max_speed / np.where(fast, speed, 1.0)), v)
            return self._velocity(v, values[3], rotation, velocity, rates)
        if mode == "velocity":
            return self._velocity(values[:3], values[3], rotation, velocity, rates)
        raise ValueError(f"mode must be one of {tuple(SETPOINT_FIELDS)}, got {mode!r}")

    def rates(self, thrust: np.ndarray, target: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """Body-rate PID + mixer: collective thrust (N,) N and desired body rates (3, N) rad/s → rpm (4, N)."""
        g, dt, limit = self.gains, self.dt, self.gains.rate_i_limit
        previous = np.where(self.has_previous, self.previous_rates, rates) if not self.has_previous.all() \
            else self.previous_rates
        self.previous_rates = rates.copy()
        self.has_previous[:] = True
        error = target - rates
        self.rate_integral = np.minimum(np.maximum(self.rate_integral + error * dt, -limit), limit)
        alpha = self._kp * error + g.rate_i * self.rate_integral - (g.rate_d / dt) * (rates - previous)
        # τ = I·α + ω × (I·ω)
        wrench = np.empty((4, self.n))
        wrench[0] = thrust
        wrench[1:] = self._inertia * alpha + _cross(rates, self._inertia * rates)
        f = self._inverse @ wrench
        return np.sqrt(np.minimum(np.maximum(f, 0.0), self._top) * (1.0 / self.spec.kf))

    def _attitude(self, thrust: np.ndarray, target: np.ndarray, yaw_rate: np.ndarray, r: np.ndarray,
                  rates: np.ndarray) -> np.ndarray:
        """Geometric attitude P toward ``target`` (9, N) body→world rotations (row-major)."""
        kp, d = 0.5 * self.gains.attitude_p, target
        e21 = sum(d[3 * k + 2] * r[3 * k + 1] - r[3 * k + 2] * d[3 * k + 1] for k in range(3))
        e02 = sum(d[3 * k] * r[3 * k + 2] - r[3 * k] * d[3 * k + 2] for k in range(3))
        return self.rates(thrust, np.stack([-kp * e21, -kp * e02, yaw_rate]), rates)

    def _velocity(self, target: np.ndarray, yaw_rate: np.ndarray, r: np.ndarray, velocity: np.ndarray,
                  rates: np.ndarray) -> np.ndarray:
        g, spec = self.gains, self.spec
        error = target - velocity
        limit = np.array([[g.velocity_i_limit], [g.velocity_i_limit], [g.vertical_i_limit]])
        self.velocity_integral = np.clip(self.velocity_integral + error * self.dt, -limit, limit)
        accel = g.velocity_p * error + g.velocity_i * self.velocity_integral
        accel[2] = np.maximum(accel[2] + GRAVITY, 0.2 * GRAVITY)
        horizontal = np.hypot(accel[0], accel[1])
        limit = accel[2] * math.tan(spec.max_tilt)
        wide = horizontal > limit
        accel[:2] *= np.where(wide, limit / np.where(wide, horizontal, 1.0), 1.0)
        b3 = accel / np.sqrt(accel[0] ** 2 + accel[1] ** 2 + accel[2] ** 2)
        yaw = np.arctan2(r[3], r[0])
        cy, sy = np.cos(yaw), np.sin(yaw)
        b2 = np.stack([-b3[2] * sy, b3[2] * cy, b3[0] * sy - b3[1] * cy])  # b3 × (cos ψ, sin ψ, 0)
        b2 /= np.sqrt(b2[0] ** 2 + b2[1] ** 2 + b2[2] ** 2)
        b1 = _cross(b2, b3)
        target_rotation = np.stack([b1[0], b2[0], b3[0], b1[1], b2[1], b3[1], b1[2], b2[2], b3[2]])
        thrust = spec.mass * (accel[0] * r[2] + accel[1] * r[5] + accel[2] * r[8])
        return self._attitude(np.clip(thrust, 0.0, spec.max_thrust), target_rotation, yaw_rate, r, rates)


class BatchedQuadrotor:
    """N vehicles of one spec with per-vehicle :class:`BatchedParams`, their controllers and latency queues.

    State, component-major (k, N): ``pos`` m world, ``quat`` (x, y, z, w), ``rot`` rotation body→world (9 values
    row-major), ``vel`` m/s world, ``rates`` rad/s body, ``rpm`` rotor speeds, ``gust`` m/s world; per vehicle
    ``battery_used`` (s of hovering) and ``steps`` (physics steps since its reset). ``rng`` drives gusts and gyro
    noise. Call :meth:`params_changed` after writing ``params`` (the reset of a vehicle does it).
    """

    def __init__(self, spec: QuadrotorSpec, n: int, config: QuadPhysicsConfig = QuadPhysicsConfig(),
                 gains: Gains | None = None, seed: int = 0, max_latency: float = 0.2) -> None:
        self.spec, self.n, self.config = spec, n, config
        self.params = BatchedParams.nominal(spec, n)
        self.nominal = BatchedParams.nominal(spec, 1)
        self.controller = BatchedController(spec, n, config.dt, gains)
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros((3, n))
        self.pos[2] = 1.0
        self.quat = np.zeros((4, n))
        self.quat[3] = 1.0
        self.rot = quaternion_rotation(self.quat)
        self.vel = np.zeros((3, n))
        self.rates = np.zeros((3, n))
        self.rpm = np.full((4, n), spec.hover_rpm)
        self.gust = np.zeros((3, n))
        self.battery_used = np.zeros(n)
        self.steps = np.zeros(n, dtype=np.int64)
        rotors = spec.rotor_positions
        self._rotors_x, self._rotors_y = rotors[:, :1], rotors[:, 1:2]  # (4, 1) m, body
        self._allocation = np.stack([np.ones(4), rotors[:, 1], -rotors[:, 0]])  # rotor thrusts → F, τx, τy
        self._max_rpm = spec.max_rpm
        self._ground_effect_reach = spec.ground_effect_height + spec.arm_length
        self._ground_effect_offset = (spec.prop_radius / 4.0 / spec.ground_effect_height) ** 2
        self._hover_power = 4.0 * spec.hover_rpm ** 3
        self._corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)],
                                 float) * np.asarray(spec.collision_half_extents)
        # latency queue: ring of the setpoints sent at the last ``history`` control steps
        self.history = int(math.ceil(max_latency / config.dt / config.substeps)) + 2
        self.mode = "ctbr"
        self._ring = np.zeros((self.history, 4, n))
        self._head = 0
        self._sent_count = np.zeros(n, dtype=np.int64)
        self.params_changed()

    # --- views (N, k) ----------------------------------------------------------------------------------------
    @property
    def position(self) -> np.ndarray:
        return self.pos.T

    @property
    def velocity(self) -> np.ndarray:
        return self.vel.T

    @property
    def quaternion(self) -> np.ndarray:
        return self.quat.T

    @property
    def body_rates(self) -> np.ndarray:
        return self.rates.T

    @property
    def rotation_rows(self) -> np.ndarray:
        """(N, 9) rotations body→world, row-major."""
        return self.rot.T

    @property
    def motor_rpm(self) -> np.ndarray:
        return self.rpm.T

    @property
    def time(self) -> np.ndarray:
        """(N,) simulated seconds since each vehicle's reset."""
        return self.steps * self.config.dt

    # --- parameters -----------------------------------------------------------------------------------------
    def params_changed(self) -> None:
        """Recompute what the step caches from ``params`` (thrust gains, lag factors, latency in steps)."""
        prm, dt = self.params, self.config.dt
        self._thrust_gain = prm.kf * prm.asymmetry
        self._yaw_gain = prm.km * prm.asymmetry * np.asarray(YAW_SIGN)[:, None]
        tau = prm.motor_time_constant
        lag = 1.0 - np.exp(-dt / np.where(tau > 0, tau, 1.0))
        self._lag = np.where((tau > 0) & self.config.motor_lag, lag, 1.0)
        self._delay = np.round(prm.latency / dt).astype(np.int64)
        if self._delay.max(initial=0) > (self.history - 2) * self.config.substeps:
            raise ValueError(f"latency above the queue's {self.history - 2} control periods")
        self._wind_on = bool(prm.gust_std.any() or prm.wind_mean.any())
        self._sag_on = bool(prm.battery_sag.any())
        self._gyro_on = bool(prm.gyro_noise_std.any())

    # --- episodes ---------------------------------------------------------------------------------------------
    def reset(self, index: np.ndarray, position: np.ndarray, quaternion: np.ndarray | None = None,
              velocity: np.ndarray | None = None, body_rates: np.ndarray | None = None,
              rpm: np.ndarray | float | None = None) -> None:
        """Place vehicles ``index`` (an index array; position (k, 3) m world, quaternion (k, 4), velocity (k, 3)
        m/s world, body rates (k, 3) rad/s body), rotors at ``rpm`` (default: hover), controllers cleared and
        latency queues emptied (they fly a hover CTBR setpoint until their first setpoint arrives)."""
        index = np.atleast_1d(np.asarray(index))
        k = len(index)

        def rows(value, default) -> np.ndarray:
            out = np.broadcast_to(np.asarray(default if value is None else value, dtype=float), (k, len(default)))
            return out.T

        self.pos[:, index] = rows(position, (0.0, 0.0, 0.0))
        self.quat[:, index] = rows(quaternion, (0.0, 0.0, 0.0, 1.0))
        self.rot[:, index] = quaternion_rotation(self.quat[:, index])
        self.vel[:, index] = rows(velocity, (0.0, 0.0, 0.0))
        self.rates[:, index] = rows(body_rates, (0.0, 0.0, 0.0))
        self.rpm[:, index] = rows(rpm if rpm is None or np.ndim(rpm) else [rpm] * 4, [self.spec.hover_rpm] * 4)
        self.battery_used[index] = 0.0
        self.steps[index] = 0
        self.gust[:, index] = self.rng.normal(0.0, 1.0, (3, k)) * self.params.gust_std[index]
        self.controller.reset(index)
        self._sent_count[index] = 0
        self.params_changed()

    def send(self, mode: str, values: np.ndarray) -> None:
        """Send one setpoint per vehicle: ``mode`` for the whole batch, ``values`` (N, 4) per
        :data:`SETPOINT_FIELDS`; each vehicle's controller gets it after that vehicle's latency."""
        if mode not in SETPOINT_FIELDS:
            raise ValueError(f"mode must be one of {tuple(SETPOINT_FIELDS)}, got {mode!r}")
        self.mode = mode
        self._head = (self._head + 1) % self.history
        self._ring[self._head] = np.asarray(values, dtype=float).T
        self._sent_count += 1

    def advance(self, steps: int | None = None) -> None:
        """Run ``steps`` physics steps (default: one control period) with the controllers in the loop."""
        substeps, delay = self.config.substeps, self._delay
        delayed = bool(delay.any())
        columns = np.arange(self.n)
        for j in range(substeps if steps is None else steps):
            if delayed:  # the newest setpoint sent at least ``delay`` physics steps ago (one per control period)
                age = np.maximum(0, -((j - delay) // substeps))  # ceil((delay - j) / substeps)
                hold = age >= self._sent_count
                slot = (self._head - np.minimum(age, self.history - 1)) % self.history
                values = self._ring[slot, :, columns].T
            else:
                hold = self._sent_count == 0
                values = self._ring[self._head]
            rates = self.rates
            if self._gyro_on:
                rates = rates + self.rng.normal(0.0, 1.0, (3, self.n)) * self.params.gyro_noise_std
            command = self.controller.update(self.mode, values, self.rot, self.vel, self.pos, rates,
                                             hold if hold.any() else None)
            self.step(command)

    def step(self, rpm_command: np.ndarray) -> None:
        """One physics step with (4, N) rotor-speed commands (rpm, clipped to [0, max_rpm])."""
        prm, cfg, dt, spec = self.params, self.config, self.config.dt, self.spec
        self.rpm += self._lag * (np.minimum(np.maximum(rpm_command, 0.0), self._max_rpm) - self.rpm)
        w = self.rpm
        w2 = w * w
        self.battery_used += (w2 * w).sum(axis=0) * (dt / self._hover_power)
        thrust = self._thrust_gain * w2
        yaw = self._yaw_gain * w2
        if self._sag_on:
            battery = np.where(prm.battery_sag > 0, np.maximum(0.5, 1.0 - prm.battery_sag * self.battery_used), 1.0)
            thrust *= battery
            yaw *= battery
        wrench = self._allocation @ thrust  # rows: Σf (N), roll torque Σ y·f, pitch torque -Σ x·f (N·m)
        torque = np.empty((3, self.n))
        torque[:2] = wrench[1:]
        torque[2] = yaw.sum(axis=0)
        fz = wrench[0]
        r, z = self.rot, self.pos[2]
        if cfg.ground_effect:
            near = z < self._ground_effect_reach
            if near.any():
                h = np.maximum(z + self._rotors_x * r[6] + self._rotors_y * r[7], spec.prop_radius / 2.0)
                shape = (spec.prop_radius / 4.0 / h) ** 2 - self._ground_effect_offset
                extra = np.where(near & (shape > 0), thrust * (spec.ground_effect_coeff * shape), 0.0)
                more = self._allocation @ extra
                fz = fz + more[0]
                torque[:2] += more[1:]
        if self._wind_on:
            decay = np.exp(-dt / prm.gust_tau)
            noise = self.rng.normal(0.0, 1.0, (3, self.n))
            self.gust = np.where(prm.gust_std > 0, decay * self.gust + prm.gust_std * np.sqrt(1 - decay * decay)
                                 * noise, self.gust)
        if cfg.drag:
            air = self.vel - (prm.wind_mean + self.gust) if self._wind_on else self.vel
            body = (-RPM_TO_RAD_S * w.sum(axis=0)) * prm.drag * _rotate_to_body(r, air)
            body[2] += fz
            force = _rotate_to_world(r, body)
        else:
            force = r[2::3] * fz
        # rigid body: semi-implicit Euler (linear), explicit body-rate Euler + exponential map (angular)
        accel = force / prm.mass
        accel[2] -= GRAVITY
        self.vel = self.vel + dt * accel
        self.pos = self.pos + dt * self.vel
        inertia, omega = prm.inertia, self.rates
        rates = omega + (dt / inertia) * (torque - _cross(omega, inertia * omega))
        spin = _rotate_to_world(r, rates)  # rad/s, world
        if np.abs(spin).max(initial=0.0) > MAX_SPIN:
            spin = np.minimum(np.maximum(spin, -MAX_SPIN), MAX_SPIN)
            rates = _rotate_to_body(r, spin)
        self.rates = rates
        self.quat = _turn(self.quat, spin * dt)
        self.rot = quaternion_rotation(self.quat)
        self.steps += 1

    def touches_ground(self) -> np.ndarray:
        """(N,) whether a vehicle's collision box reaches below z = 0."""
        r = self.rot
        lowest = -(np.abs(r[6]) * self._corners[-1, 0] + np.abs(r[7]) * self._corners[-1, 1]
                   + np.abs(r[8]) * self._corners[-1, 2])
        return self.pos[2] + lowest <= 0.0


def _turn(q: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(4, N) quaternions (x, y, z, w) turned by world-frame rotation vectors ``angle`` (3, N) rad:
    exp(angle) ⊗ q, renormalized."""
    theta = np.sqrt((angle * angle).sum(axis=0))
    small = theta < 1e-8
    s = np.where(small, 0.5 - theta * theta / 48.0, np.sin(0.5 * theta) / np.where(small, 1.0, theta))
    a, aw = angle * s, np.cos(0.5 * theta)
    v, w = q[:3], q[3]
    out = np.empty_like(q)
    out[:3] = aw * v + w * a + _cross(a, v)
    out[3] = aw * w - (a * v).sum(axis=0)
    return out / np.sqrt((out * out).sum(axis=0))
