"""Registered quadrotor environments: checkers, action modes, termination vs truncation, seeding, rgb."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim2real.envs  # noqa: F401
from sim2real.tasks.quadrotor import ACTION_MODES, QUAD_ENVS, action_to_setpoint, thrust_map
from sim2real.hal.multirotor import Ctbr, MotorRpm
from robots.quadrotor import crazyflie_spec


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("env_id", sorted(QUAD_ENVS))
def test_registered_env_passes_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    assert env.spec.max_episode_steps == QUAD_ENVS[env_id][2]
    env.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_rgb_mode_gives_an_onboard_image_and_passes_checkers():
    env = gym.make("sim2real/CrazyflieHover-v0", obs_mode="rgb", render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8 and obs["image"].std() > 5
    assert env.render().shape == (240, 240, 3)
    env.close()


def test_action_maps_put_zero_at_hover():
    spec = crazyflie_spec()
    assert thrust_map(0.0, 1.0, 2.0) == 1.0 and thrust_map(-1.0, 1.0, 2.0) == 0.0 and thrust_map(1.0, 1.0, 2.0) == 2.0
    rpm = action_to_setpoint(np.zeros(4), "rpm", spec)
    assert isinstance(rpm, MotorRpm) and rpm.rpm == pytest.approx([spec.hover_rpm] * 4)
    ctbr = action_to_setpoint(np.array([0.0, 1.0, -1.0, 0.5]), "ctbr", spec)
    assert isinstance(ctbr, Ctbr) and ctbr.thrust == pytest.approx(spec.weight)
    assert ctbr.body_rates == pytest.approx([spec.max_body_rate, -spec.max_body_rate, 0.5 * spec.max_body_rate])


@pytest.mark.parametrize("mode", ACTION_MODES)
def test_every_action_mode_flies(mode):
    env = gym.make("sim2real/CrazyflieHover-v0", action_mode=mode)
    env.reset(seed=1)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (25,) and np.isfinite(obs).all() and np.isfinite(reward)
    env.close()


def test_crash_terminates_and_is_labelled():
    env = gym.make("sim2real/CrazyflieHover-v0", action_mode="ctbr")
    env.reset(seed=0)
    for _ in range(200):
        _, reward, terminated, truncated, info = env.step(np.array([-1.0, 0, 0, 0]))  # motors off
        if terminated or truncated:
            break
    assert terminated and not truncated and info["termination"] == "crash" and reward < 0
    env.close()


def test_leaving_the_arena_terminates_as_out_of_bounds():
    env = gym.make("sim2real/CrazyflieHover-v0", action_mode="ctbr")
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(np.array([1.0, 0, 0, 0]))  # full thrust up
        if terminated or truncated:
            break
    assert terminated and not truncated and info["termination"] == "out_of_bounds"
    env.close()


def test_time_limit_truncates_without_terminating():
    env = gym.make("sim2real/CrazyflieHover-v0", action_mode="velocity", max_episode_steps=60)
    env.reset(seed=0)
    for _ in range(60):
        _, _, terminated, truncated, info = env.step(np.zeros(4))  # velocity hold: stays in the arena
        assert not terminated
    assert truncated and "termination" not in info
    env.close()


def test_same_seed_same_episode_and_different_seed_differs():
    def rollout(seed):
        env = gym.make("sim2real/CrazyflieWaypoints-v0", action_mode="ctbr")
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs]
        for _ in range(20):
            out.append(env.step(env.action_space.sample())[0])
        env.close()
        return np.array(out)

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_observation_keeps_world_and_body_quantities_apart():
    env = gym.make("sim2real/CrazyflieTrajectory-v0")
    obs, _ = env.reset(seed=0)
    state = env.unwrapped.robot.read_state()
    ref = env.unwrapped._reference
    assert obs[:3] == pytest.approx(ref.position - state.position, abs=1e-5)  # world-frame position error
    assert obs[6:15].reshape(3, 3) == pytest.approx(state.rotation, abs=1e-5)  # body→world rotation
    assert obs[15:18] == pytest.approx(state.body_rates, abs=1e-5)  # body-frame rates
    env.close()


def test_waypoints_advance_when_reached():
    env = gym.make("sim2real/CrazyflieWaypoints-v0", action_mode="velocity")
    env.reset(seed=2)
    env.unwrapped.goal.targets[0, 0] = env.unwrapped.robot.read_state().position  # already at the first target
    _, _, _, _, info = env.step(np.zeros(4))
    assert info["waypoint"] == 1.0
    env.close()
