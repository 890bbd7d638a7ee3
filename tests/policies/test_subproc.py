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
from policies.subproc import EnvWorkerError, EnvWorkerException, SubprocTrialVecEnv, split, worker_blocks
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


def test_worker_blocks_stay_inside_the_two_pipeline_halves() -> None:
    assert worker_blocks(5, 2) == split(5, 2) and worker_blocks(7, 1) == [range(0, 7)]
    assert worker_blocks(6, 3) == [range(0, 2), range(2, 3), range(3, 6)]  # halves 0-2 and 3-5
    assert worker_blocks(8, 4) == [range(0, 2), range(2, 4), range(4, 6), range(6, 8)]
    with pytest.raises(ValueError, match="workers"):
        worker_blocks(2, 3)


def test_stages_step_on_their_own_like_one_step() -> None:
    """Two stages in flight at once, an env method on a worker whose step is in flight, answers in any order."""
    sync = SyncTrialVecEnv([_pendulum_trials] * 3)
    sub = SubprocTrialVecEnv([_pendulum_trials] * 3, 2)
    try:
        assert sub.stages == [range(0, 2), range(2, 3)] and sub.stage_workers == [[0], [1]]
        sync.reset(seed=5)
        sub.reset(seed=5)
        actions = torch.rand(12, 3, 1, generator=torch.Generator().manual_seed(1)) * 4 - 2
        for t, action in enumerate(actions):
            expected = sync.step(action)
            sub.step_async(0, action[:2])
            sub.step_async(1, action[2:])
            if t == 3:
                assert sub.env_method("get_wrapper_attr", "episode_index", indices=[1]) == \
                    sync.env_method("get_wrapper_attr", "episode_index", indices=[1])
            second, first = sub.step_wait(1), sub.step_wait(0)
            for rows, got in ((slice(0, 2), first), (slice(2, 3), second)):
                want = expected
                assert torch.equal(got.reward, want.reward[rows]) and torch.equal(got.obs["obs"], want.obs["obs"][rows])
                assert torch.equal(got.trial_truncated, want.trial_truncated[rows])
    finally:
        sync.close()
        sub.close()


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
    """0 workers, 1 worker (stepped after both halves' actions), 2 and 3 workers (pipelined halves)."""
    base = dict(num_envs=3, rollout_steps=8, seq_len=4, num_minibatches=2, epochs=2, total_steps=48, seed=3,
                network={"hidden_size": 8, "embed_size": 8, "encoder_sizes": [8]})
    weights, stats = [], []
    for workers in (0, 1, 2, 3):
        result = train_rl2({**base, "workers": workers}, [_pendulum_trials] * 3, tmp_path / f"w{workers}",
                           tensorboard=False)
        data = torch.load(result.checkpoint, weights_only=True)
        weights.append(data["model"])
        stats.append({k: v for k, v in result.stats.items() if k not in ("wall_time_s", "steps_per_s")})
    for other in weights[1:]:
        assert other.keys() == weights[0].keys()
        assert all(torch.equal(other[k], weights[0][k]) for k in other)
    assert stats[0] == stats[1] == stats[2] == stats[3] and stats[0]["trials"] > 0


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


class _LoggedStages:
    """Two stages (envs 0-1 | env 2) stepped by two in-process vec envs when waited for; logs what the trainer did."""

    def __init__(self) -> None:
        self.parts = [SyncTrialVecEnv([_pendulum_trials] * 2), SyncTrialVecEnv([_pendulum_trials])]
        self.stages = [range(0, 2), range(2, 3)]
        self.num_envs = 3
        self.observation_space, self.action_space = self.parts[0].observation_space, self.parts[0].action_space
        self.sent: list = [None, None]
        self.log: list[str] = []

    def reset(self, seed=None):
        obs = [self.parts[0].reset(seed), self.parts[1].reset(None if seed is None else seed + 2)]
        return {k: torch.cat([o[k] for o in obs]) for k in obs[0]}

    def step_async(self, stage: int, action: torch.Tensor) -> None:
        self.log.append(f"send {stage}")
        self.sent[stage] = action.clone()

    def step_wait(self, stage: int):
        self.log.append(f"wait {stage}")
        return self.parts[stage].step(self.sent[stage])

    def close(self) -> None:
        for part in self.parts:
            part.close()


def test_the_rollout_computes_one_stage_while_the_other_steps(tmp_path) -> None:
    """Each step: stage 1's actions are sent before stage 0's step is waited for, and stage 0's next actions before
    stage 1's step is waited for; training is the same as with every env in the trainer's process."""
    base = dict(num_envs=3, rollout_steps=8, seq_len=4, num_minibatches=2, epochs=1, total_steps=24, seed=4,
                network={"hidden_size": 8, "embed_size": 8, "encoder_sizes": [8]})
    staged = _LoggedStages()
    piped = train_rl2(base, None, tmp_path / "staged", vec_env=staged, tensorboard=False)
    staged.close()
    assert staged.log == ["send 0", "send 1"] + ["wait 0", "send 0", "wait 1", "send 1"] * 7 + ["wait 0", "wait 1"]
    plain = train_rl2({**base, "workers": 0}, [_pendulum_trials] * 3, tmp_path / "plain", tensorboard=False)
    a, b = (torch.load(r.checkpoint, weights_only=True)["model"] for r in (piped, plain))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _randomized_reach() -> gym.Env:
    import sim2real.envs  # noqa: F401
    from randomizers.wrappers import ActuationRandomizer

    return TrialWrapper(ActuationRandomizer(gym.make("sim2real/PandaReach-v0", max_episode_steps=3)), 2)


def test_a_curriculum_sees_the_same_trials_in_the_same_order_with_pipelined_workers(tmp_path) -> None:
    """Robust PLR (levels pinned through env_method while the other half steps, training flags per half): 0 and 2
    workers train the same weights and leave the teacher in the same state."""
    from randomizers.curricula import PLRTeacher
    from randomizers.curricula.trials import TrialCurriculum, setter_for
    from randomizers.params import ParamSpace

    results = []
    for workers in (0, 2):
        hooks: list = []

        def curriculum(vec):
            space = ParamSpace.from_dict(vec.env_method("get_randomization_space", indices=[0])[0])
            teacher = PLRTeacher(space, capacity=4, min_fill=2, replay_prob=0.5, robust=True, seed=0)
            hooks.append(TrialCurriculum(teacher, setter_for(vec)))
            return hooks[-1]

        config = dict(num_envs=4, rollout_steps=12, seq_len=6, num_minibatches=2, epochs=1, total_steps=144, seed=0,
                      workers=workers, network={"hidden_size": 8, "embed_size": 8, "encoder_sizes": [8]})
        result = train_rl2(config, [_randomized_reach] * 4, tmp_path / f"w{workers}", tensorboard=False,
                           curriculum=curriculum)
        results.append((torch.load(result.checkpoint, weights_only=True), hooks[0].teacher))
    (a, teacher_a), (b, teacher_b) = results
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert teacher_a.replays > 0 and teacher_a.state_dict() == teacher_b.state_dict()
