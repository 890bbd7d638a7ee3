"""Safety layer, calibration, kinematic model, reality profiles and the ROS 2 driver's message, without a bus."""
from __future__ import annotations

import numpy as np
import pytest

from robots.calibration import Calibration, calibration_from_spec
from robots.kinematic_model import KinematicModel
from robots.so101 import so101_spec
from sim2real.cli import main
from sim2real.emulators.reality import load_reality
from sim2real.errors import UserError
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.types import JointCommand, RobotState
from sim2real.sim import PyBulletRobot, PyBulletWorld

BASE = (-0.25, 0.0, 0.0)


@pytest.fixture(scope="module")
def model():
    m = KinematicModel(so101_spec(), BASE)
    yield m
    m.close()


def _state(model, q) -> RobotState:
    position, orientation = model.forward(q)
    return RobotState(np.array(q, float), np.zeros(6), np.zeros(6), position, orientation, np.zeros(3), 0.0)


def test_kinematic_model_matches_the_simulator():
    spec = so101_spec()
    world = PyBulletWorld()
    sim = PyBulletRobot(world, spec, BASE)
    model = KinematicModel(spec, BASE)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(spec.lower, spec.upper)
        sim.reset_joints(q)
        state = sim.read_state()
        assert np.allclose(model.forward(q)[0], state.ee_position, atol=1e-6)
        goal = state.ee_position + np.array([0.02, -0.01, 0.01])
        assert np.allclose(model.ik_step(goal, None, q, state.ee_position, state.ee_orientation),
                           sim.inverse_kinematics(goal, None, state), atol=1e-6)
    model.close()
    world.close()


def test_safety_layer_clamps_everything(model):
    spec = so101_spec()
    config = SafetyConfig.from_spec(spec, BASE)
    safety = SafetyLayer(config, model, period=0.04)
    home = np.array(spec.home)
    state = _state(model, home)
    out = safety.filter(JointCommand(home + 10.0), state, 0).positions
    assert config.contains(out) and np.all(np.abs(out - home) <= config.max_step + 1e-9)
    out = safety.filter(JointCommand(np.full(6, np.nan)), state, 1).positions
    assert np.allclose(out, home)
    second = safety.filter(JointCommand(home + 0.2), state, 2).positions
    assert np.all(np.abs(second - out) <= config.max_velocity * 0.04 + 1e-9)  # rate limit vs previous command
    assert np.allclose(safety.check_action(np.array([np.inf, 2.0, -0.5]), 3), [0.0, 1.0, -0.5])
    kinds = [i.kind for i in safety.interventions]
    assert kinds[:2] == ["joint_limit", "max_step"] and "nan_command" in kinds and "rate_limit" in kinds
    assert "nan_action" in kinds and "action_clip" in kinds


def test_workspace_box_shortens_moves_that_leave_it(model):
    spec = so101_spec()
    config = SafetyConfig.from_spec(spec, BASE)
    safety = SafetyLayer(config, model, period=1.0)  # rate limits out of the way
    home = np.array(spec.home)
    down = home.copy()
    down[1] += 0.25  # lean forward: the tool dives toward the table
    target = home.copy()
    for _ in range(12):
        target = safety.filter(JointCommand(target + (down - home)), _state(model, target), 0).positions
        tool = model.forward(target)[0]
        assert np.all(tool >= config.workspace_low - 1e-6) and np.all(tool <= config.workspace_high + 1e-6)
    assert any(i.kind == "workspace" for i in safety.interventions)


def test_calibration_round_trip_and_direction():
    spec = so101_spec()
    cal = calibration_from_spec(spec)
    q = np.array([0.3, -0.5, 1.0, 0.2, -1.0, 0.5])
    assert np.allclose(cal.ticks_to_radians(cal.radians_to_ticks(q)), q, atol=2 * np.pi / 4096)
    again = Calibration.from_json(cal.to_json())
    assert again == cal
    flipped = Calibration(cal.robot, tuple(type(j)(j.joint, j.servo_id, j.offset, -1, j.min_ticks, j.max_ticks)
                                           for j in cal.joints))
    assert flipped.radians_to_ticks(np.array([0.1] * 6))[0] < 2048
    assert np.all(cal.radians_to_ticks(np.full(6, 100.0)) == [j.max_ticks for j in cal.joints])
    with pytest.raises(ValueError):
        Calibration.from_json('{"robot": "so101"}')


def test_reality_profile_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mass_scale: 50\n")
    with pytest.raises(UserError, match="mass_scale=50"):
        load_reality(str(bad))
    bad.write_text("faults:\n  jitter: 1\n")
    with pytest.raises(UserError, match="unknown key 'jitter'"):
        load_reality(str(bad))
    assert load_reality("launch/realities/lab.yaml").mass_scale == 1.2


def test_ros2_driver_without_rclpy_says_so(capsys, tmp_path):
    pytest.importorskip("dynamixel_sdk")
    try:
        import rclpy  # noqa: F401
        pytest.skip("rclpy is installed here")
    except ImportError:
        pass
    code = main(["deploy", str(tmp_path / "none.zip"), "--launch", "launch/so101_reach.yaml", "--driver", "ros2"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ros2 driver needs rclpy" in err
    from sim2real.hal.ros2 import Ros2Arm

    with pytest.raises(UserError, match="ros2 driver needs rclpy.*source your ROS 2"):
        Ros2Arm(so101_spec())


def test_cli_user_errors_are_one_line(capsys, tmp_path):
    assert main(["emulate", "dynamixel", "--reality", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read reality profile" in capsys.readouterr().err
    assert main(["calibrate", "--out", str(tmp_path / "c.json")]) == 2
    assert "--from-spec" in capsys.readouterr().err
