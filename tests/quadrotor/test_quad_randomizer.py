"""Quadrotor randomization: each Param read back from the simulation, registry group, nominal switch, seeding."""
import math

import gymnasium as gym
import numpy as np
import pytest

import sim2real.envs  # noqa: F401
from randomizers.quadrotor import QuadrotorRandomizer
from randomizers.registry import available_groups, default_space
from robots.quadrotor import GRAVITY, RPM_TO_RAD_S
from sim2real.hal.multirotor import MotorRpm


@pytest.fixture()
def env():
    e = QuadrotorRandomizer(gym.make("sim2real/CrazyflieHover-v0"))
    yield e
    e.close()


def _pinned(env, **values):
    """Reset with every Param nominal except ``values`` (names with '__' for '.')."""
    env.set_randomization_enabled(False)
    env.reset(seed=0)
    pinned = {**env.space.nominal_values(), **{k.replace("__", "."): v for k, v in values.items()}}
    env.set_randomization_enabled(True)
    env.set_randomization_values(pinned)
    env.reset(seed=0)
    return env.unwrapped.robot


def _acceleration(robot, rpm=None, velocity=(0.0, 0.0, 0.0)):
    """(linear m/s² world, angular rad/s² body) over one physics step from rest at 1 m with rotors at ``rpm``."""
    spec, model = robot.spec, robot.physics
    rpm = np.full(4, spec.hover_rpm) if rpm is None else np.asarray(rpm)
    model.reset((0, 0, 1), velocity=velocity, rpm=rpm)
    robot.send_command(MotorRpm(rpm))
    robot.advance(1)
    kin = model.kinematics()
    dt = model.config.dt
    return (np.asarray(kin.velocity) - velocity) / dt, np.asarray(kin.body_rates) / dt


def test_group_is_registered_with_every_param():
    assert "quadrotor" in available_groups()
    names = default_space("quadrotor").names
    for expected in ("quadrotor.mass", "quadrotor.inertia", "quadrotor.kf", "quadrotor.km", "quadrotor.motor0.thrust",
                     "quadrotor.motor.time_constant", "quadrotor.drag", "quadrotor.battery.sag", "quadrotor.latency",
                     "quadrotor.sensor.position_noise_std", "quadrotor.sensor.gyro_noise_std", "quadrotor.wind.x",
                     "quadrotor.wind.gust_std"):
        assert expected in names


def test_nominal_values_leave_the_model_at_the_spec(env):
    robot = _pinned(env)
    assert _acceleration(robot)[0] == pytest.approx([0, 0, 0], abs=1e-9)
    mass, inertia = robot.physics.mass_properties()
    assert mass == robot.spec.mass and inertia == pytest.approx(robot.spec.inertia)


def test_mass_reads_back(env):
    robot = _pinned(env, quadrotor__mass=1.2)
    assert robot.physics.mass_properties()[0] == pytest.approx(1.2 * robot.spec.mass)
    assert _acceleration(robot)[0][2] == pytest.approx(GRAVITY * (1 / 1.2 - 1), rel=1e-6)


def test_inertia_reads_back(env):
    robot = _pinned(env, quadrotor__inertia=1.3)
    assert robot.physics.mass_properties()[1] == pytest.approx(1.3 * np.asarray(robot.spec.inertia))
    rpm = np.full(4, robot.spec.hover_rpm)
    rpm[3] *= 1.1
    alpha = _acceleration(robot, rpm)[1]
    spec = robot.spec
    y = spec.rotor_positions[3, 1]
    extra = spec.kf * (rpm[3] ** 2 - spec.hover_rpm ** 2)
    assert alpha[0] == pytest.approx(y * extra / (1.3 * spec.inertia[0]), rel=1e-3)


def test_kf_reads_back(env):
    robot = _pinned(env, quadrotor__kf=1.1)
    assert _acceleration(robot)[0][2] == pytest.approx(GRAVITY * 0.1, rel=1e-6)


def test_km_reads_back(env):
    robot = _pinned(env, quadrotor__km=1.5)
    spec = robot.spec
    rpm = np.full(4, spec.hover_rpm)
    rpm[0] *= 1.1
    alpha = _acceleration(robot, rpm)[1]
    assert alpha[2] == pytest.approx(-1.5 * spec.km * (rpm[0] ** 2 - spec.hover_rpm ** 2) / spec.inertia[2], rel=1e-3)


@pytest.mark.parametrize("motor", range(4))
def test_per_motor_asymmetry_reads_back(env, motor):
    robot = _pinned(env, **{f"quadrotor__motor{motor}__thrust": 1.1})
    spec = robot.spec
    linear, alpha = _acceleration(robot)
    extra = 0.1 * spec.kf * spec.hover_rpm ** 2
    x, y, _ = spec.rotor_positions[motor]
    assert linear[2] == pytest.approx(extra / spec.mass, rel=1e-3)
    assert alpha[0] == pytest.approx(y * extra / spec.inertia[0], rel=1e-3)
    assert alpha[1] == pytest.approx(-x * extra / spec.inertia[1], rel=1e-3)


def test_motor_time_constant_reads_back(env):
    robot = _pinned(env, quadrotor__motor__time_constant=2.0)
    model, spec = robot.physics, robot.spec
    model.reset((0, 0, 1), rpm=0.0)
    robot.send_command(MotorRpm(np.full(4, spec.hover_rpm)))
    robot.advance(1)
    expected = spec.hover_rpm * (1 - math.exp(-model.config.dt / (2.0 * spec.motor_time_constant)))
    assert model.rpm == pytest.approx([expected] * 4, rel=1e-9)


def test_drag_reads_back(env):
    robot = _pinned(env, quadrotor__drag=0.5)
    spec = robot.spec
    linear = _acceleration(robot, velocity=(1.0, 0.0, 0.0))[0]
    k = 4 * spec.hover_rpm * RPM_TO_RAD_S
    assert linear[0] == pytest.approx(-0.5 * spec.drag_xy * k / spec.mass, rel=1e-3)


def test_battery_sag_reads_back(env):
    robot = _pinned(env, quadrotor__battery__sag=0.01)
    robot.physics.reset((0, 0, 1), rpm=robot.spec.hover_rpm)
    robot.send_command(MotorRpm(np.full(4, robot.spec.hover_rpm)))
    robot.advance(240)  # 1 s
    force = robot.physics.body_wrench(robot.physics.kinematics()._replace(velocity=(0.0, 0.0, 0.0)))[0]
    assert robot.physics.battery_factor == pytest.approx(0.99)
    assert force[2] == pytest.approx(0.99 * robot.spec.weight, rel=1e-3)


def test_latency_reads_back(env):
    robot = _pinned(env, quadrotor__latency=3 / 240)
    spec, model = robot.spec, robot.physics
    model.reset((0, 0, 1), rpm=spec.hover_rpm)
    robot.send_command(MotorRpm(np.full(4, spec.hover_rpm)))
    robot.advance(5)
    robot.send_command(MotorRpm(np.zeros(4)))
    delayed = 0
    while model.rpm[0] == pytest.approx(spec.hover_rpm):
        robot.advance(1)
        delayed += 1
    assert delayed == 4  # 3 steps in the queue, the 4th step applies the new command


@pytest.mark.parametrize("name,attribute", [("position_noise_std", "position"), ("velocity_noise_std", "velocity"),
                                            ("gyro_noise_std", "body_rates")])
def test_sensor_noise_reads_back(env, name, attribute):
    robot = _pinned(env, **{f"quadrotor__sensor__{name}": 0.01})
    true = robot.true_kinematics()
    truth = {"position": true.position, "velocity": true.velocity, "body_rates": true.body_rates}[attribute]
    samples = np.array([getattr(robot.read_state(), attribute) - np.asarray(truth) for _ in range(400)])
    assert samples.std() == pytest.approx(0.01, rel=0.15) and abs(samples.mean()) < 0.003


def test_mean_wind_reads_back(env):
    robot = _pinned(env, quadrotor__wind__x=2.0)
    spec = robot.spec
    linear = _acceleration(robot)[0]
    k = 4 * spec.hover_rpm * RPM_TO_RAD_S
    assert linear[0] == pytest.approx(spec.drag_xy * k * 2.0 / spec.mass, rel=1e-3)


def test_gusts_read_back(env):
    robot = _pinned(env, quadrotor__wind__gust_std=0.5, quadrotor__wind__gust_tau=0.05)
    wind, dt = robot.physics.wind, robot.physics.config.dt
    samples = np.array([wind.step(dt) for _ in range(20000)])
    assert samples.std() == pytest.approx(0.5, rel=0.1)
    lag = 12  # = τ/dt: autocorrelation exp(-1)
    x = samples[:, 0]
    assert np.corrcoef(x[:-lag], x[lag:])[0, 1] == pytest.approx(math.exp(-1), abs=0.08)


def test_same_seed_draws_the_same_parameters(env):
    _, info_a = env.reset(seed=11)
    _, info_b = env.reset(seed=11)
    _, info_c = env.reset(seed=12)
    assert info_a["randomization"] == info_b["randomization"] != info_c["randomization"]
