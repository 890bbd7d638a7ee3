"""Controller stack step responses: CTBR rate tracking, attitude, velocity and position holds (both vehicles)."""
import math

import numpy as np
import pytest

from robots.quadrotor import get_quadrotor_spec
from sim2real.hal.multirotor import AttitudeThrust, Ctbr, Position, Velocity
from sim2real.sim.flight_controller import Gains
from sim2real.sim.multirotor import SimMultirotor


@pytest.fixture(params=["crazyflie", "racer"])
def robot(request):
    r = SimMultirotor(get_quadrotor_spec(request.param))
    r.reset((0, 0, 2.0))
    yield r
    r.close()


def _fly(robot, seconds):
    robot.advance(int(round(seconds * robot.config.physics_hz)))
    return robot.read_state()


def test_gains_follow_the_motor_time_constant(robot):
    g = Gains.for_spec(robot.spec)
    tau, wn = robot.spec.motor_time_constant, 0.8 / robot.spec.motor_time_constant
    assert g.rate_p == pytest.approx(tau * wn ** 2) and g.rate_d == pytest.approx(2 * 0.7 * wn * tau - 1)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_ctbr_tracks_a_body_rate_step(robot, axis):
    target = np.zeros(3)
    target[axis] = 1.0  # rad/s
    robot.send_command(Ctbr(robot.spec.weight, target))
    samples = []
    for _ in range(48):  # 1 s at 48 Hz
        robot.advance()
        samples.append(robot.read_state().body_rates.copy())
    samples = np.array(samples)
    assert samples[11][axis] > 0.9  # rising within 0.25 s
    assert samples[23][axis] == pytest.approx(1.0, abs=0.1)  # within 10 % after 0.5 s
    assert samples[-1][axis] == pytest.approx(1.0, abs=0.05)  # within 5 % after 1 s
    assert samples[:, axis].max() < 1.2  # bounded overshoot
    others = [i for i in range(3) if i != axis]
    assert np.abs(samples[:, others]).max() < 0.05  # no cross-coupling


def test_attitude_setpoint_reaches_roll_and_pitch(robot):
    robot.send_command(AttitudeThrust(robot.spec.weight, 0.2, -0.15, 0.0))
    state = _fly(robot, 1.0)
    r = state.rotation
    roll, pitch = math.atan2(r[2, 1], r[2, 2]), -math.asin(r[2, 0])
    assert roll == pytest.approx(0.2, abs=0.02) and pitch == pytest.approx(-0.15, abs=0.02)


def test_velocity_setpoint_is_tracked(robot):
    target = np.array([0.5, -0.3, 0.2])
    robot.send_command(Velocity(target, 0.0))
    state = _fly(robot, 4.0)
    assert state.velocity == pytest.approx(target, abs=0.05)


def test_position_setpoint_is_reached_and_held(robot):
    goal = np.array([0.5, 0.3, 2.3])
    robot.send_command(Position(goal))
    state = _fly(robot, 8.0)
    assert np.linalg.norm(state.position - goal) < 0.02
    assert np.linalg.norm(state.velocity) < 0.05


def test_safe_stop_hovers_in_place(robot):
    robot.send_command(Velocity(np.array([0.5, 0.0, 0.0]), 0.0))
    _fly(robot, 1.0)
    robot.safe_stop()
    held = np.asarray(robot.true_kinematics().position)
    state = _fly(robot, 5.0)
    assert np.linalg.norm(state.position - held) < 0.25 and np.linalg.norm(state.velocity) < 0.05


@pytest.mark.parametrize("mass_scale, kf_scale", [(1.25, 0.85), (0.85, 1.1)])
def test_position_hold_covers_the_mass_and_kf_envelope(mass_scale, kf_scale):
    """The firmware's controller knows only the nominal vehicle; its vertical integrator must make up the hover
    thrust of the heaviest, weakest corner of the sysid envelope (mass ×1.25, kf ×0.85: +0.47 g) and still climb."""
    spec = get_quadrotor_spec("crazyflie")
    robot = SimMultirotor(spec)
    robot.physics.kf *= kf_scale
    robot.physics.set_mass_properties(spec.mass * mass_scale, np.asarray(spec.inertia) * mass_scale)
    robot.physics.update_model()
    robot.reset((0, 0, 0.5))
    goal = np.array([0.2, -0.1, 1.0])
    robot.send_command(Position(goal))  # it first sinks to the floor while the integrator winds up (~8 s)
    state = _fly(robot, 20.0)
    robot.close()
    assert np.linalg.norm(state.position - goal) < 0.05 and np.linalg.norm(state.velocity) < 0.1
