"""Quadrotor physics: specs, thrust/torque signs, free fall, hover equilibrium, motor lag, ground effect, drag."""
import math

import numpy as np
import pybullet as p
import pytest

from robots.quadrotor import GRAVITY, YAW_SIGN, crazyflie_spec, get_quadrotor_spec, racer_spec
from sim2real.sim.flight_controller import Mixer
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig, QuadrotorPhysics

NO_LAG = QuadPhysicsConfig(motor_lag=False, drag=False, ground_effect=False, ground=False)


@pytest.fixture(params=["crazyflie", "racer"])
def spec(request):
    return get_quadrotor_spec(request.param)


def test_crazyflie_constants_match_the_reference():
    s = crazyflie_spec()
    assert s.hover_rpm == pytest.approx(14468 * math.sqrt(9.81 / 9.8), rel=1e-3)  # reference used g = 9.8
    assert s.max_rpm == pytest.approx(21703 * math.sqrt(9.81 / 9.8), rel=1e-3)
    assert s.max_thrust == pytest.approx(0.595, rel=2e-3)
    assert racer_spec().max_thrust / racer_spec().weight == pytest.approx(4.2)
    assert all(s.sources) and all(racer_spec().sources)


def test_urdf_mass_and_inertia_match_the_spec(spec):
    model = QuadrotorPhysics(spec, NO_LAG)
    mass, inertia = model.mass_properties()
    assert mass == pytest.approx(spec.mass)
    assert inertia == pytest.approx(spec.inertia)
    model.close()


def _angular_acceleration(model, spec, rpm):
    model.reset((0, 0, 1), rpm=rpm)
    model.step(rpm)
    return np.asarray(model.kinematics().body_rates) / model.config.dt


def test_each_rotor_rolls_pitches_and_yaws_the_documented_way(spec):
    model = QuadrotorPhysics(spec, NO_LAG)
    hover = np.full(4, spec.hover_rpm)
    assert np.allclose(_angular_acceleration(model, spec, hover), 0.0, atol=1e-9)
    for i, (x, y, _) in enumerate(spec.rotor_positions):
        rpm = hover.copy()
        rpm[i] *= 1.1
        alpha = _angular_acceleration(model, spec, rpm)
        extra = spec.kf * (rpm[i] ** 2 - hover[i] ** 2)
        assert alpha[0] == pytest.approx(y * extra / spec.inertia[0], rel=1e-3)  # right rotors (y<0) roll right
        assert alpha[1] == pytest.approx(-x * extra / spec.inertia[1], rel=1e-3)  # front rotors pitch nose up
        assert np.sign(alpha[2]) == YAW_SIGN[i]
        assert alpha[2] == pytest.approx(YAW_SIGN[i] * spec.km * (rpm[i] ** 2 - hover[i] ** 2) / spec.inertia[2],
                                         rel=1e-3)
    model.close()


def test_mixer_inverts_the_allocation(spec):
    mixer = Mixer(spec)
    wrench = np.array([spec.weight * 1.2, 1e-3 * spec.mass, -2e-3 * spec.mass, 1e-4 * spec.mass])
    thrusts = spec.kf * np.square(mixer.rpm(*wrench))
    assert mixer.matrix @ thrusts == pytest.approx(wrench, rel=1e-9, abs=1e-12)
    assert mixer.rpm(spec.weight, 0, 0, 0) == pytest.approx([spec.hover_rpm] * 4)


def test_free_fall_with_motors_off_follows_gravity(spec):
    model = QuadrotorPhysics(spec, QuadPhysicsConfig(ground=False))
    model.reset((0, 0, 5), rpm=0.0)
    n, dt = 120, model.config.dt
    for _ in range(n):
        model.step([0.0] * 4)
    kin = model.kinematics()
    # PyBullet integrates semi-implicitly: v_n = -g·n·dt, z_n = z_0 - g·dt²·n(n+1)/2
    assert kin.velocity[2] == pytest.approx(-GRAVITY * n * dt, rel=1e-9)
    assert kin.position[2] == pytest.approx(5 - GRAVITY * dt * dt * n * (n + 1) / 2, rel=1e-9)
    assert kin.position[:2] == pytest.approx((0, 0), abs=1e-12)
    model.close()


def test_hover_rpm_holds_altitude_within_a_millimetre_for_five_seconds(spec):
    model = QuadrotorPhysics(spec)  # lag, drag and ground effect on; altitude above the ground-effect reach
    z0 = spec.ground_effect_height + 0.5
    model.reset((0, 0, z0), rpm=spec.hover_rpm)
    for _ in range(int(5 * model.config.physics_hz)):
        model.step([spec.hover_rpm] * 4)
    position = model.kinematics().position
    assert abs(position[2] - z0) < 1e-3 and max(abs(position[0]), abs(position[1])) < 1e-3
    model.close()


def test_motor_lag_step_matches_the_first_order_curve(spec):
    model = QuadrotorPhysics(spec, QuadPhysicsConfig(ground=False))
    model.reset((0, 0, 5), rpm=0.0)
    u, tau, dt = spec.hover_rpm, spec.motor_time_constant, model.config.dt
    for k in range(1, 61):
        model.step([u] * 4)
        assert model.rpm == pytest.approx(u * (1 - math.exp(-k * dt / tau)), rel=1e-9)
    model.close()


def test_ground_effect_adds_thrust_near_the_ground_only():
    spec = crazyflie_spec()
    model = QuadrotorPhysics(spec, QuadPhysicsConfig(motor_lag=False, drag=False, ground=False))
    model.reset((0, 0, 1), rpm=spec.hover_rpm)
    kin = model.kinematics()
    near = model.body_wrench(kin._replace(position=(0.0, 0.0, 0.03)))[0][2]
    far = model.body_wrench(kin._replace(position=(0.0, 0.0, spec.ground_effect_height)))[0][2]
    assert far == pytest.approx(spec.weight)
    assert near > 1.05 * spec.weight
    model.close()


def test_rotor_drag_opposes_the_air_velocity():
    spec = crazyflie_spec()
    model = QuadrotorPhysics(spec, QuadPhysicsConfig(ground=False))
    model.reset((0, 0, 1), rpm=spec.hover_rpm)
    kin = model.kinematics()._replace(velocity=(1.0, -2.0, 0.5))
    force = model.body_wrench(kin)[0]
    k = 4 * spec.hover_rpm * 2 * math.pi / 60
    assert force[0] == pytest.approx(-spec.drag_xy * k * 1.0)
    assert force[1] == pytest.approx(spec.drag_xy * k * 2.0)
    assert force[2] == pytest.approx(spec.weight - spec.drag_z * k * 0.5)
    # wind blowing with the vehicle cancels the drag
    assert model.body_wrench(kin, wind=(1.0, -2.0, 0.5))[0] == pytest.approx([0, 0, spec.weight])
    model.close()


def test_physics_rate_must_be_a_multiple_of_control_rate():
    with pytest.raises(ValueError, match="multiple"):
        QuadPhysicsConfig(physics_hz=240, control_hz=50)
    assert QuadPhysicsConfig().substeps == 5


def test_pybullet_world_frame_is_enu_z_up():
    model = QuadrotorPhysics(crazyflie_spec(), NO_LAG)
    assert p.getPhysicsEngineParameters(physicsClientId=model.client)["gravityAccelerationZ"] == -GRAVITY
    model.close()
