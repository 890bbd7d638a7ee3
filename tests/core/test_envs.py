import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim2real  # noqa: F401
from sim2real.envs import ARM_ENVS, registered_ids

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_registry_lists_every_arm_env():
    assert set(ARM_ENVS) <= set(registered_ids())


@pytest.mark.parametrize("env_id", sorted(ARM_ENVS))
def test_every_registered_env_passes_both_checkers(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    for _ in range(30):  # checkers must also pass after history, not only on a fresh env
        env.step(env.action_space.sample())
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


@pytest.mark.parametrize("env_id,kwargs", [
    ("sim2real/PandaPush-v0", {}),
    ("sim2real/SO101PickAndPlace-v0", {"control_mode": "joints"}),
    ("sim2real/PandaReach-v0", {"obs_mode": "rgb"}),
])
def test_same_seed_gives_the_same_trajectory(env_id, kwargs):
    def rollout():
        env = gym.make(env_id, **kwargs)
        env.action_space.seed(7)
        obs, _ = env.reset(seed=3)
        frames = [obs]
        for _ in range(20):
            frames.append(env.step(env.action_space.sample())[0])
        env.close()
        return frames

    first, second = rollout(), rollout()
    for a, b in zip(first, second):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_reset_with_a_seed_does_not_depend_on_history():
    env = gym.make("sim2real/PandaPickAndPlace-v0")
    env.reset(seed=0)
    for _ in range(60):
        env.step(env.action_space.sample())
    action = np.array([0.3, -0.2, -0.5, 0.1], dtype=np.float32)
    runs = []
    for _ in range(2):
        env.reset(seed=5)
        runs.append([env.step(action)[0]["observation"] for _ in range(10)])
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))


@pytest.mark.parametrize("env_id", ["sim2real/PandaReach-v0", "sim2real/KukaReach-v0", "sim2real/SO101Reach-v0"])
def test_end_effector_control_reaches_goals(env_id):
    """A proportional controller in EE mode must reach every goal: checks IK, workspace and success signals."""
    env = gym.make(env_id)
    successes = []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        for _ in range(50):
            error = obs["desired_goal"] - obs["achieved_goal"]
            obs, reward, terminated, truncated, info = env.step(np.clip(error / 0.05, -1, 1))
        successes.append(info["is_success"])
        assert reward == 0.0  # sparse reward is 0 inside the threshold
    assert all(successes)


def test_dense_reward_is_negative_distance_and_vectorized():
    env = gym.make("sim2real/PandaReach-v0", reward_type="dense")
    obs, _ = env.reset(seed=1)
    obs, reward, *_ = env.step(np.zeros(3, dtype=np.float32))
    assert reward == pytest.approx(-np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]), rel=1e-5)
    batch = env.unwrapped.compute_reward(np.zeros((4, 3)), np.ones((4, 3)), {})
    assert batch.shape == (4,) and np.allclose(batch, -np.sqrt(3))


def test_push_moves_the_cube_when_the_arm_pushes_it():
    env = gym.make("sim2real/PandaPush-v0")
    obs, _ = env.reset(seed=2)
    cube = obs["achieved_goal"].copy()
    behind = cube - np.array([0.07, 0.0, 0.0])
    for waypoint in (behind + [0, 0, 0.1], behind):  # above and behind the cube, then down to cube height
        for _ in range(25):
            obs, *_ = env.step(np.clip((waypoint - obs["observation"][:3]) / 0.05, -1, 1))
    for _ in range(15):  # then push along +x
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0], dtype=np.float32))
    assert obs["achieved_goal"][0] > cube[0] + 0.03


def test_joint_mode_moves_joints_and_gripper_opens():
    env = gym.make("sim2real/PandaPickAndPlace-v0", control_mode="joints")
    obs, _ = env.reset(seed=0)
    assert env.action_space.shape == (8,)
    for _ in range(10):
        obs, *_ = env.step(np.array([0.5, 0, 0, 0, 0, 0, 0, 1.0], dtype=np.float32))
    assert env.unwrapped.robot.read_state().positions[0] > 0.2
    assert obs["observation"][6] > 0.06  # finger opening (m)


def test_nan_actions_are_held_not_propagated():
    env = gym.make("sim2real/PandaReach-v0")
    env.reset(seed=0)
    obs, reward, *_ = env.step(np.array([np.nan, np.inf, -np.inf], dtype=np.float32))
    assert all(np.all(np.isfinite(v)) for v in obs.values()) and np.isfinite(reward)


def test_rgb_mode_and_headless_render():
    env = gym.make("sim2real/PandaReach-v0", obs_mode="rgb", render_mode="rgb_array",
                   camera={"width": 64, "height": 48})
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (48, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["image"].std() > 5  # a real scene, not a blank frame
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 5


def test_panda_timing_matches_panda_gym():
    env = gym.make("sim2real/PandaReach-v0")
    physics = env.unwrapped.world.physics
    assert physics.timestep == pytest.approx(1 / 500) and physics.substeps == 20
    assert env.spec.max_episode_steps == 50
    assert env.unwrapped.task.distance_threshold == 0.05


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="obs_mode"):
        gym.make("sim2real/PandaReach-v0", obs_mode="depth")
    with pytest.raises(ValueError, match="needs a gripper"):
        from sim2real.envs import ArmEnv

        ArmEnv(robot="kuka", task="pick_and_place")
