"""Trial envs in worker processes: the same steps as in-process envs, the same training for any worker count, and a
dead, silent or failing worker ends in a clear error instead of a hang."""
from __future__ import annotations

import os
import signal
import sys
import time

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch

from policies.config import RL2Config
from policies.errors import ConfigError
from policies.ppo import train_rl2
from policies.subproc import EnvWorkerError, EnvWorkerException, SubprocTrialVecEnv, split
from policies.trial import TrialWrapper
from policies.vec import SyncTrialVecEnv

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import this test module


def _pendulum_trials() -> gym.Env:
    """Trials of 2 inner episodes of 4 steps, cut after 7 steps: ends, resets and truncations all happen."""
    inner = gym.make("Pendulum-v1", max_episode_steps=4)
    return gym.wrappers.TimeLimit(TrialWrapper(inner, 2), max_episode_steps=7)


class _SlowEnv(gym.Wrapper):
    def step(self, action):
        time.sleep(1.5)
        return self.env.step(action)


class _BrokenEnv(gym.Wrapper):
    def step(self, action):
        raise FloatingPointError("the physics blew up")


def _slow() -> gym.Env:
    return TrialWrapper(_SlowEnv(gym.make("Pendulum-v1", max_episode_steps=4)), 2)


def _broken() -> gym.Env:
    return TrialWrapper(_BrokenEnv(gym.make("Pendulum-v1", max_episode_steps=4)), 2)


def _assert_same_steps(a, b) -> None:
    for name in ("reward", "episode_done", "trial_terminated", "trial_truncated"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.obs.keys() == b.obs.keys() and all(torch.equal(a.obs[k], b.obs[k]) for k in a.obs)
    assert (a.final_obs is None) == (b.final_obs is None)
    if a.final_obs is not None:
        assert all(torch.equal(a.final_obs[k], b.final_obs[k]) for k in a.final_obs)


def test_split_gives_contiguous_blocks_of_nearly_equal_size() -> None:
    assert split(5, 2) == [range(0, 3), range(3, 5)]
    assert split(4, 4) == [range(i, i + 1) for i in range(4)]
    with pytest.raises(ValueError, match="workers"):
        split(2, 3)


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_step_exactly_like_in_process_envs(workers: int) -> None:
    sync = SyncTrialVecEnv([_pendulum_trials] * 3)
    sub = SubprocTrialVecEnv([_pendulum_trials] * 3, workers)
    try:
        assert sub.observation_space == sync.observation_space and sub.action_space == sync.action_space
        first = sub.reset(seed=11)
        assert all(torch.equal(first[k], v) for k, v in sync.reset(seed=11).items())
        actions = torch.rand(20, 3, 1, generator=torch.Generator().manual_seed(0)) * 4 - 2
        truncations = 0
        for action in actions:
            a, b = sync.step(action), sub.step(action)
            _assert_same_steps(a, b)
            truncations += int(b.trial_truncated.sum())
        assert truncations > 0  # the final-observation path ran
        assert sub.env_method("get_wrapper_attr", "episodes_per_trial", indices=[2, 0]) == [2, 2]
    finally:
        sync.close()
        sub.close()
    assert not any(p.is_alive() for p in sub.processes)


def test_rl2_training_is_the_same_for_any_worker_count(tmp_path) -> None:
    base = dict(num_envs=2, rollout_steps=8, seq_len=4, num_minibatches=2, epochs=2, total_steps=32, seed=3,
                network={"hidden_size": 8, "embed_size": 8, "encoder_sizes": [8]})
    weights, stats = [], []
    for workers in (0, 1, 2):
        result = train_rl2({**base, "workers": workers}, [_pendulum_trials] * 2, tmp_path / f"w{workers}",
                           tensorboard=False)
        data = torch.load(result.checkpoint, weights_only=True)
        weights.append(data["model"])
        stats.append({k: v for k, v in result.stats.items() if k not in ("wall_time_s", "steps_per_s")})
    for other in weights[1:]:
        assert other.keys() == weights[0].keys()
        assert all(torch.equal(other[k], weights[0][k]) for k in other)
    assert stats[0] == stats[1] == stats[2] and stats[0]["trials"] > 0


def test_resume_with_another_worker_count_is_allowed(tmp_path) -> None:
    base = dict(num_envs=2, rollout_steps=8, seq_len=4, num_minibatches=2, epochs=1, seed=0, checkpoint_every=1,
                network={"hidden_size": 8, "embed_size": 8, "encoder_sizes": [8]})
    train_rl2({**base, "total_steps": 16, "workers": 0}, [_pendulum_trials] * 2, tmp_path, tensorboard=False)
    result = train_rl2({**base, "total_steps": 32, "workers": 2}, [_pendulum_trials] * 2, tmp_path,
                       tensorboard=False)
    assert result.global_step == 32


def test_a_killed_worker_is_one_clear_line_not_a_hang() -> None:
    sub = SubprocTrialVecEnv([_pendulum_trials] * 2, 2)
    try:
        sub.reset(seed=0)
        os.kill(sub.processes[1].pid, signal.SIGKILL)
        sub.processes[1].join(timeout=5)
        start = time.monotonic()
        with pytest.raises(EnvWorkerError) as caught:
            sub.step(torch.zeros(2, 1))
        assert time.monotonic() - start < 5
    finally:
        sub.close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("env worker 1 (env 1) died (signal SIGKILL) during step")


def test_a_silent_worker_times_out() -> None:
    sub = SubprocTrialVecEnv([_slow], 1, timeout_s=0.3)
    try:
        sub.reset(seed=0)
        start = time.monotonic()
        with pytest.raises(EnvWorkerError, match=r"env worker 0 \(env 0\) did not answer step within 0.3 s"):
            sub.step(torch.zeros(1, 1))
        assert time.monotonic() - start < 1.4
    finally:
        sub.close()


def test_an_env_raising_in_a_worker_carries_its_traceback() -> None:
    sub = SubprocTrialVecEnv([_pendulum_trials, _broken], 2)
    try:
        sub.reset(seed=0)
        expected = "env worker 1 .* FloatingPointError: the physics blew up"
        with pytest.raises(EnvWorkerException, match=expected) as caught:
            sub.step(torch.zeros(2, 1))
        assert "Traceback" in str(caught.value)
    finally:
        sub.close()


@pytest.mark.parametrize("workers", [-1, 3, True])
def test_workers_setting_is_validated(workers) -> None:
    with pytest.raises(ConfigError, match="workers"):
        RL2Config.from_dict({"num_envs": 2, "workers": workers, "num_minibatches": 1})


def test_discrete_actions_reach_the_workers_as_integers() -> None:
    def cartpole() -> gym.Env:
        return TrialWrapper(gym.make("CartPole-v1"), 2)

    sub = SubprocTrialVecEnv([cartpole, cartpole], 2)
    try:
        sub.reset(seed=0)
        step = sub.step(torch.tensor([0, 1]))
        assert step.reward.tolist() == [1.0, 1.0] and np.all(step.episode_done.numpy() == 0)
    finally:
        sub.close()
