"""BatchedQuadrotorVecEnv: the task's observation/reward/termination on the batched model, SB3 auto-reset, the
launch file's quadrotor randomization per vehicle, RL² trials."""
import gymnasium as gym
import numpy as np
import pytest

import sim2real.envs  # noqa: F401  (registers the ids)
from randomizers.quadrotor import QuadrotorRandomizer
from sim2real.envs.batched_quadrotor_env import BatchedQuadrotorVecEnv, euler_quaternion
from sim2real.tasks.quadrotor import CRASH_PENALTY

HOVER = "sim2real/CrazyflieHover-v0"


@pytest.mark.parametrize("mode", ["ctbr", "rpm", "attitude", "velocity"])
def test_steps_match_the_pybullet_env_from_the_same_start(mode):
    """Same start, layout and actions: same observations, rewards and (no) terminations for 1 s."""
    reference = gym.make(HOVER, control_mode=mode)
    obs_ref, _ = reference.reset(seed=4)
    base = reference.unwrapped
    kin = base.robot.true_kinematics()
    venv = BatchedQuadrotorVecEnv(HOVER, 2, control_mode=mode, seed=1)
    venv.reset()
    obs = venv.place([1], base.goal, [kin.position], [kin.quaternion], [kin.velocity])
    assert obs[1] == pytest.approx(obs_ref, abs=1e-6)
    scale = 0.03 if mode == "rpm" else 0.3  # per-rotor commands tumble the vehicle quickly
    for action in np.random.default_rng(0).uniform(-scale, scale, (48, 4)):
        obs_ref, reward_ref, terminated, truncated, info = reference.step(action)
        obs, reward, done, infos = venv.step(np.stack([action, action]))
        assert not terminated and not done[1]
        assert obs[1] == pytest.approx(obs_ref, abs=1e-5)
        assert reward[1] == pytest.approx(reward_ref, abs=1e-5)
    reference.close()


def test_auto_reset_reports_sb3_episode_info_and_a_fresh_start():
    venv = BatchedQuadrotorVecEnv(HOVER, 4, max_episode_steps=3, seed=0)
    first = venv.reset()
    for step in range(3):
        obs, reward, done, infos = venv.step(np.zeros((4, 4)))
    assert done.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] and info["episode"]["l"] == 3
        assert info["episode"]["r"] == pytest.approx(float(info["episode"]["r"]))
        assert info["terminal_observation"].shape == (25,) and "is_success" in info
        assert not np.allclose(info["terminal_observation"], obs[i])  # the returned one is the next episode's
    assert not np.allclose(first, obs)


def test_a_vehicle_that_drops_to_the_floor_crashes_with_the_task_penalty():
    venv = BatchedQuadrotorVecEnv(HOVER, 2, seed=0)
    venv.reset()
    ends = {}
    for step in range(60):  # 1.25 s: from at most 1.3 m, free fall takes < 0.52 s
        _, reward, done, infos = venv.step(np.tile([-1.0, 0, 0, 0], (2, 1)))  # zero thrust
        for i in np.flatnonzero(done):
            ends.setdefault(i, (step, reward[i], infos[i]))
    assert sorted(ends) == [0, 1]
    for step, reward, info in ends.values():
        assert info["termination"] == "crash" and not info["TimeLimit.truncated"]
        assert reward < -CRASH_PENALTY + 1.0 and step < 30


def test_each_vehicle_gets_the_pybullet_randomizers_values():
    entries = [{"group": "quadrotor", "params": [{"name": "quadrotor.latency", "range": [0.0, 0.02]},
                                                 {"name": "quadrotor.wind.gust_std", "range": [0.1, 0.3]}]}]
    venv = BatchedQuadrotorVecEnv(HOVER, 3, randomizers=entries, seed=2)
    venv.reset()
    assert len({v["quadrotor.mass"] for v in venv.values}) == 3  # drawn per vehicle
    env = QuadrotorRandomizer(gym.make(HOVER), entries[0]["params"])
    for i, values in enumerate(venv.values):
        env.set_randomization_values(values)
        env.reset(seed=0)
        robot, prm = env.unwrapped.robot, venv.sim.params
        mass, inertia = robot.physics.mass_properties()
        assert prm.mass[i] == pytest.approx(mass) and prm.inertia[:, i] == pytest.approx(inertia)
        for name in ("kf", "km", "asymmetry", "drag"):
            assert getattr(prm, name)[:, i] == pytest.approx(getattr(robot.physics, name))
        assert prm.motor_time_constant[i] == pytest.approx(robot.physics.motor_time_constant)
        assert prm.wind_mean[:, i] == pytest.approx(robot.physics.wind.mean)
        assert prm.gust_std[i] == pytest.approx(robot.physics.wind.gust_std)
        for name in ("latency", "gyro_noise_std", "position_noise_std", "velocity_noise_std"):
            assert getattr(prm, name)[i] == pytest.approx(getattr(robot, name))
    env.close()


def test_only_the_quadrotor_group_is_accepted():
    with pytest.raises(ValueError, match="only group quadrotor"):
        BatchedQuadrotorVecEnv(HOVER, 2, randomizers=[{"group": "sensing"}])
    with pytest.raises(ValueError, match="not a quadrotor env"):
        BatchedQuadrotorVecEnv("sim2real/PandaReach-v0", 2)


def test_trials_keep_a_vehicles_parameters_between_their_episodes():
    venv = BatchedQuadrotorVecEnv(HOVER, 2, max_episode_steps=2, randomizers=[{"group": "quadrotor"}],
                                  episodes_per_trial=2, seed=0)
    venv.reset()
    first = [dict(v) for v in venv.values]
    dones, episode_done = [], []
    for step in range(4):
        _, _, done, infos = venv.step(np.zeros((2, 4)))
        dones.append(done.copy())
        episode_done.append([info.get("episode_done", False) for info in infos])
        if step == 1:
            assert venv.values == first  # same world for the trial's second episode
    assert [d.tolist() for d in dones] == [[False] * 2, [False] * 2, [False] * 2, [True] * 2]
    assert episode_done[1] == [True, True] and episode_done[3] == [True, True]
    assert venv.values != first  # a new trial draws again


def test_euler_quaternion_matches_pybullet():
    import pybullet as p

    angles = np.random.default_rng(0).uniform(-3, 3, (6, 3))
    ours = euler_quaternion(angles[:, 0], angles[:, 1], angles[:, 2])
    for q, a in zip(ours, angles):
        assert q == pytest.approx(np.array(p.getQuaternionFromEuler(a.tolist())), abs=1e-12)


def test_the_rl2_trainer_trains_on_batched_trials(tmp_path):
    from policies.ppo import train_rl2
    from policies.vec import SB3TrialVecEnv

    venv = BatchedQuadrotorVecEnv(HOVER, 8, max_episode_steps=6, randomizers=[{"group": "quadrotor"}],
                                  episodes_per_trial=2, seed=0)
    config = {"total_steps": 8 * 24 * 2, "rollout_steps": 24, "seq_len": 12, "num_minibatches": 2, "epochs": 1,
              "seed": 0, "network": {"hidden_size": 16}}
    result = train_rl2(config, None, tmp_path, vec_env=SB3TrialVecEnv(venv), tensorboard=False)
    assert result.global_step == 8 * 24 * 2 and result.checkpoint.exists()
