"""Replay buffers round-trip through npz + JSON exactly (plain, Dict observations, HER), with nothing unpickled."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

import sim2real  # noqa: F401  (registers the environments)
from sim2real.errors import UserError
from sim2real.replay_buffers import ARRAYS_FILE, META_FILE, load_replay_buffer, save_replay_buffer

BOX = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACTION = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DICT = gym.spaces.Dict({"observation": BOX, "achieved_goal": gym.spaces.Box(-1, 1, (3,), np.float32),
                        "desired_goal": gym.spaces.Box(-1, 1, (3,), np.float32)})


def _fill(buffer, space: gym.Space, steps: int, episode_length: int, seed: int = 0) -> None:
    """``steps`` random transitions per env; episodes end every ``episode_length`` steps (with timeouts)."""
    rng = np.random.default_rng(seed)
    n = buffer.n_envs

    def sample():
        if isinstance(space, gym.spaces.Dict):
            return {k: rng.uniform(-1, 1, (n, *s.shape)).astype(np.float32) for k, s in space.spaces.items()}
        return rng.uniform(-1, 1, (n, *space.shape)).astype(np.float32)

    for t in range(steps):
        done = np.full(n, (t + 1) % episode_length == 0)
        infos = [{"TimeLimit.truncated": bool(d)} for d in done]
        buffer.add(sample(), sample(), rng.uniform(-1, 1, (n, buffer.action_dim)).astype(np.float32),
                   rng.normal(size=n).astype(np.float32), done, infos)


def _same(a, b) -> None:
    assert (a.pos, a.full) == (b.pos, b.full)
    for name in ("observations", "next_observations"):
        left, right = getattr(a, name), getattr(b, name)
        if isinstance(left, dict):
            assert left.keys() == right.keys()
            for key in left:
                np.testing.assert_array_equal(left[key], right[key])
        else:
            np.testing.assert_array_equal(left, right)
    for name in ("actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def _goal_vec_env(n: int = 2) -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make("sim2real/SO101Reach-v0", reward_type="sparse") for _ in range(n)])


@pytest.mark.parametrize("steps", [7, 40])  # partly filled, and wrapped around (full)
def test_plain_and_dict_buffers_round_trip(tmp_path, steps):
    for cls, space in ((ReplayBuffer, BOX), (DictReplayBuffer, DICT)):
        saved = cls(16, space, ACTION, n_envs=2)
        _fill(saved, space, steps, episode_length=5)
        save_replay_buffer(saved, str(tmp_path))
        restored = cls(16, space, ACTION, n_envs=2)
        load_replay_buffer(restored, str(tmp_path))
        _same(saved, restored)
        assert restored.full == (steps >= 8)


@pytest.mark.parametrize("steps", [23, 61])
def test_her_buffer_round_trips_with_its_episode_bookkeeping(tmp_path, steps):
    env = _goal_vec_env()
    try:
        kwargs = dict(n_envs=2, env=env, n_sampled_goal=4, goal_selection_strategy="future")
        saved = HerReplayBuffer(80, env.observation_space, env.action_space, **kwargs)
        _fill(saved, env.observation_space, steps, episode_length=10)
        save_replay_buffer(saved, str(tmp_path))
        restored = HerReplayBuffer(80, env.observation_space, env.action_space, **kwargs)
        load_replay_buffer(restored, str(tmp_path))
        _same(saved, restored)
        for name in ("ep_start", "ep_length", "_current_ep_start"):
            np.testing.assert_array_equal(getattr(saved, name), getattr(restored, name))
        assert int(restored.ep_length.max()) == 10
        np.random.seed(3)
        first = saved.sample(32)
        np.random.seed(3)
        second = restored.sample(32)  # the same transitions and relabelled goals
        np.testing.assert_array_equal(first.observations["desired_goal"].numpy(),
                                      second.observations["desired_goal"].numpy())
        np.testing.assert_array_equal(first.rewards.numpy(), second.rewards.numpy())
    finally:
        env.close()


def test_files_hold_only_the_filled_rows_and_no_pickle(tmp_path):
    buffer = ReplayBuffer(1000, BOX, ACTION, n_envs=1)
    _fill(buffer, BOX, 12, episode_length=4)
    save_replay_buffer(buffer, str(tmp_path))
    with np.load(tmp_path / ARRAYS_FILE, allow_pickle=False) as arrays:
        assert arrays["observations"].shape == (12, 1, 4)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert (meta["class"], meta["pos"], meta["full"]) == ("ReplayBuffer", 12, False)


def test_a_buffer_of_another_shape_or_an_object_array_is_refused_in_one_line(tmp_path):
    buffer = ReplayBuffer(16, BOX, ACTION, n_envs=1)
    _fill(buffer, BOX, 5, episode_length=4)
    save_replay_buffer(buffer, str(tmp_path))
    with pytest.raises(UserError, match="ReplayBuffer of 16 x 1 rows, but the launch file builds a ReplayBuffer "
                                        "of 32 x 1"):
        load_replay_buffer(ReplayBuffer(32, BOX, ACTION, n_envs=1), str(tmp_path))
    arrays = dict(np.load(tmp_path / ARRAYS_FILE))
    arrays["rewards"] = np.array([[{"a": 1}]] * 5, dtype=object)  # would need unpickling
    with open(tmp_path / ARRAYS_FILE, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.raises(UserError, match="not a replay buffer written by sim2real") as err:
        load_replay_buffer(ReplayBuffer(16, BOX, ACTION, n_envs=1), str(tmp_path))
    assert "\n" not in str(err.value)
