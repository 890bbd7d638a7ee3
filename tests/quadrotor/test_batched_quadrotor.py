"""The batched numpy quadrotor against the PyBullet reference: same vehicles, parameters and setpoint sequences."""
import math

import numpy as np
import pytest

from robots.quadrotor import crazyflie_spec, racer_spec
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MotorRpm, Position, Velocity
from sim2real.sim.batched_quadrotor import MAX_SPIN, SETPOINT_FIELDS, BatchedQuadrotor, quaternion_rotation
from sim2real.sim.multirotor import SimMultirotor
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig

NO_FLOOR = QuadPhysicsConfig(ground=False)  # the batched model has no floor (see its docstring)
SETPOINTS = {"rpm": lambda v: MotorRpm(v), "ctbr": lambda v: Ctbr(v[0], v[1:]),
             "attitude": lambda v: AttitudeThrust(*v), "velocity": lambda v: Velocity(v[:3], v[3]),
             "position": lambda v: Position(v[:3], v[3])}
LATENCIES = (0.0, 0.01, 0.02, 0.0125)  # s: none, 2.4 and 4.8 physics steps, and one that rounds to 3


def _setpoint(spec, mode: str, t: int, vehicle: int) -> np.ndarray:
    """Open-loop setpoint of control step ``t``: a different sinusoid per vehicle and field."""
    s = np.sin(0.3 * t + vehicle + np.arange(4))
    if mode == "rpm":
        return spec.hover_rpm * (1 + 0.05 * s)
    if mode == "ctbr":
        return np.array([spec.weight * (1 + 0.1 * s[0]), *(0.5 * spec.max_body_rate / 6 * s[1:])])
    if mode == "attitude":
        return np.array([spec.weight * (1 + 0.1 * s[0]), 0.2 * s[1], 0.2 * s[2], 0.5 * s[3]])
    if mode == "velocity":
        return np.array([*(0.5 * s[:3]), 0.3 * s[3]])
    return np.array([0.3 * s[0], 0.3 * s[1], 1 + 0.2 * s[2], 0.3 * s[3]])


def _randomized_pair(spec, n: int, rng: np.random.Generator):
    """``n`` PyBullet vehicles and one batch with the same randomized parameters and start states."""
    batch = BatchedQuadrotor(spec, n, NO_FLOOR)
    refs = []
    for i in range(n):
        ref = SimMultirotor(spec, NO_FLOOR)
        m = ref.physics
        m.kf, m.km = spec.kf * rng.uniform(0.9, 1.1, 4), spec.km * rng.uniform(0.8, 1.2, 4)
        m.asymmetry = rng.uniform(0.95, 1.05, 4)
        m.motor_time_constant = spec.motor_time_constant * rng.uniform(0.8, 1.5)
        m.drag, m.battery_sag = m.drag * rng.uniform(0.5, 1.5), rng.uniform(0, 0.01)
        m.wind.mean = rng.uniform(-0.5, 0.5, 3)
        mass, inertia = spec.mass * rng.uniform(0.9, 1.1), np.asarray(spec.inertia) * rng.uniform(0.85, 1.15, 3)
        m.set_mass_properties(mass, inertia)
        m.update_model()
        ref.latency = LATENCIES[i % len(LATENCIES)]
        prm = batch.params
        prm.kf[:, i], prm.km[:, i], prm.asymmetry[:, i] = m.kf, m.km, m.asymmetry
        prm.motor_time_constant[i], prm.drag[:, i], prm.battery_sag[i] = m.motor_time_constant, m.drag, m.battery_sag
        prm.wind_mean[:, i], prm.mass[i], prm.inertia[:, i], prm.latency[i] = m.wind.mean, mass, inertia, ref.latency
        # the last vehicle starts 5 cm up: inside the ground-effect reach (there is no floor in either model)
        start = np.array([0.1 * i, -0.1, 0.05 if i == n - 1 else 1.0]) * (1 if spec.name == "crazyflie" else 2)
        q = np.array([0.02, -0.03, 0.3, 1.0])
        q /= np.linalg.norm(q)
        ref.reset(start, q, (0.1, 0.0, -0.05), (0.5, 0.2, -0.3))
        batch.reset(np.array([i]), start, q, (0.1, 0.0, -0.05), (0.5, 0.2, -0.3))
        refs.append(ref)
    return refs, batch


def _rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) of the rotation between two rotation matrices, accurate for tiny angles."""
    d = a.T @ b
    return float(np.linalg.norm([d[2, 1] - d[1, 2], d[0, 2] - d[2, 0], d[1, 0] - d[0, 1]]) / 2)


@pytest.mark.parametrize("mode", list(SETPOINT_FIELDS))
@pytest.mark.parametrize("vehicle", ["crazyflie", "racer"])
def test_batched_model_matches_pybullet_for_2_s_of_open_loop_setpoints(mode, vehicle):
    spec = crazyflie_spec() if vehicle == "crazyflie" else racer_spec()
    refs, batch = _randomized_pair(spec, 4, np.random.default_rng(5))
    spun = 0.0
    for t in range(96):  # 2 s at 48 Hz
        values = np.stack([_setpoint(spec, mode, t, i) for i in range(len(refs))])
        for ref, v in zip(refs, values):
            ref.send_command(SETPOINTS[mode](v))
            ref.advance()
        batch.send(mode, values)
        batch.advance()
        spun = max(spun, float(np.abs(batch.rates).max()))
    for i, ref in enumerate(refs):
        kin = ref.true_kinematics()
        assert np.abs(np.array(kin.position) - batch.position[i]).max() < 1e-6  # m
        assert np.abs(np.array(kin.velocity) - batch.velocity[i]).max() < 1e-6  # m/s
        rotation = np.array(kin.rotation).reshape(3, 3)
        assert _rotation_angle(rotation, batch.rotation_rows[i].reshape(3, 3)) < 1e-6  # rad
        assert np.abs(np.array(kin.body_rates) - batch.body_rates[i]).max() < 1e-5  # rad/s
        assert np.abs(ref.physics.rpm - batch.motor_rpm[i]).max() < 1e-6 * spec.max_rpm
        assert batch.battery_used[i] == pytest.approx(ref.physics.battery_used, rel=1e-9)
    if mode == "rpm" and vehicle == "crazyflie":  # the open-loop rotor commands tumble a vehicle into the spin cap
        assert spun > MAX_SPIN


def test_quaternion_rotation_matches_pybullet():
    import pybullet as p

    q = np.random.default_rng(0).normal(size=(5, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ours = quaternion_rotation(q.T).T
    for row, quat in zip(ours, q):
        assert row == pytest.approx(np.array(p.getMatrixFromQuaternion(quat.tolist())), abs=1e-12)


def test_gusts_have_the_configured_std_and_correlation_time():
    spec = crazyflie_spec()
    batch = BatchedQuadrotor(spec, 4000, NO_FLOOR, seed=3)
    batch.params.gust_std[:], batch.params.gust_tau[:] = 0.3, 0.5
    batch.reset(np.arange(4000), (0.0, 0.0, 1.0))
    start = batch.gust.copy()
    batch.send("ctbr", np.tile([spec.weight, 0, 0, 0], (4000, 1)))
    batch.advance(120)  # 0.5 s = one time constant
    assert batch.gust.std() == pytest.approx(0.3, rel=0.03)
    correlation = np.corrcoef(start.ravel(), batch.gust.ravel())[0, 1]
    assert correlation == pytest.approx(math.exp(-1.0), abs=0.03)


def test_touches_ground_uses_the_rotated_collision_box():
    spec = crazyflie_spec()
    batch = BatchedQuadrotor(spec, 3, NO_FLOOR)
    half = spec.collision_half_extents
    tilted = np.array([math.sin(0.25), 0.0, 0.0, math.cos(0.25)])  # 0.5 rad roll
    low = half[2] * math.cos(0.5) + half[1] * math.sin(0.5)
    batch.reset(np.arange(3), [(0, 0, half[2] + 1e-4), (0, 0, half[2] - 1e-4), (0, 0, low - 1e-4)],
                [(0, 0, 0, 1), (0, 0, 0, 1), tilted])
    assert batch.touches_ground().tolist() == [False, True, True]
