"""Recurrent PPO: learns a bandit, writes atomic resumable checkpoints, runs gymnasium and SB3 envs."""
from __future__ import annotations

import json
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

from policies.checkpoint import load_policy, safe_load
from policies.config import NetworkConfig, RL2Config
from policies.envs import BernoulliBanditVecEnv
from policies.errors import ConfigError
from policies.evaluate import evaluate_policy
from policies.ppo import train_rl2
from policies.trial import TrialWrapper
from policies.vec import GymVectorTrialEnv, SB3TrialVecEnv

SMALL = NetworkConfig(hidden_size=32, embed_size=16, encoder_sizes=())


def _bandit_cfg(total_steps: int, **kw) -> RL2Config:
    return RL2Config(network=SMALL, total_steps=total_steps, rollout_steps=20, seq_len=10, num_minibatches=4,
                     gae_lambda=0.3, learning_rate=3e-3, checkpoint_every=2, **kw)


def test_learns_two_armed_bandit(tmp_path):
    """After ~80k steps the policy beats random play by far more than the evaluation noise."""
    env = BernoulliBanditVecEnv(256, k=2, n=10, seed=0)
    result = train_rl2(_bandit_cfg(80_000), None, tmp_path, vec_env=env, tensorboard=False)
    model, _ = load_policy(result.checkpoint)
    returns = evaluate_policy(model, BernoulliBanditVecEnv(2000, k=2, n=10, seed=123))
    se = returns.std() / np.sqrt(len(returns))
    random_play = 5.0  # n * E[p]
    assert returns.mean() > random_play + 8 * se, (returns.mean(), se)


def test_checkpoint_resume_and_config_mismatch(tmp_path):
    env = BernoulliBanditVecEnv(16, k=3, n=10, seed=0)
    r1 = train_rl2(_bandit_cfg(16 * 20 * 2), None, tmp_path, vec_env=env, tensorboard=False)
    assert r1.global_step == 640
    data = safe_load(r1.checkpoint)
    assert data["iteration"] == 2 and "optimizer" in data
    r2 = train_rl2(_bandit_cfg(16 * 20 * 3), None, tmp_path, vec_env=env, tensorboard=False)
    assert r2.global_step == 960 and safe_load(r2.checkpoint)["iteration"] == 3
    lines = (tmp_path / "progress.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [1, 2, 3]
    with pytest.raises(ConfigError, match="^gamma"):
        train_rl2(_bandit_cfg(16 * 20 * 4, gamma=0.5), None, tmp_path, vec_env=env, tensorboard=False)
    assert not list(tmp_path.glob(".checkpoint.pt.*"))  # no temp files left behind


def test_init_from_starts_a_new_run_from_trained_weights(tmp_path):
    """A new run copies the weights it is pointed at; other networks or spaces are refused with one line."""
    env = BernoulliBanditVecEnv(16, k=3, n=10, seed=0)
    trained = train_rl2(_bandit_cfg(16 * 20 * 2), None, tmp_path / "a", vec_env=env, tensorboard=False).checkpoint
    frozen = replace(_bandit_cfg(16 * 20), learning_rate=1e-9)  # one update that moves no weight noticeably

    def weights(checkpoint):
        return {k: v for k, v in safe_load(checkpoint)["model"].items() if "norm" not in k}  # not the obs statistics

    start = weights(trained)
    warm = weights(train_rl2(replace(frozen, init_from=str(trained)), None, tmp_path / "b", vec_env=env,
                             tensorboard=False).checkpoint)
    cold = weights(train_rl2(frozen, None, tmp_path / "c", vec_env=env, tensorboard=False).checkpoint)
    assert all(torch.allclose(warm[k], start[k], atol=1e-6) for k in start)
    assert max(float((cold[k] - start[k]).abs().max()) for k in start) > 1e-2
    resumed = train_rl2(replace(frozen, total_steps=16 * 20 * 2, snapshot_every=1), None, tmp_path / "b",
                        vec_env=env, tensorboard=False)  # its own checkpoint wins; init_from may be dropped on resume
    assert resumed.global_step == 640 and [p.name for p in (tmp_path / "b" / "snapshots").glob("*.pt")] == [
        "step_000000000640.pt"]
    other_net = replace(frozen, init_from=str(trained), network=replace(SMALL, hidden_size=16))
    with pytest.raises(ConfigError, match=r"^init_from: .*network\.hidden_size = 32, this run 16$"):
        train_rl2(other_net, None, tmp_path / "d", vec_env=env, tensorboard=False)
    with pytest.raises(ConfigError, match="^init_from: .*other observation/action spaces"):
        train_rl2(replace(frozen, init_from=str(trained)), None, tmp_path / "e",
                  vec_env=BernoulliBanditVecEnv(16, k=4, n=10, seed=0), tensorboard=False)


def test_critic_warmup_leaves_the_actor_untouched(tmp_path):
    """During the warm-up only critic weights move (normalisers frozen too); afterwards the actor trains too."""
    env = BernoulliBanditVecEnv(16, k=3, n=10, seed=0)
    trained = train_rl2(_bandit_cfg(16 * 20 * 2), None, tmp_path / "a", vec_env=env, tensorboard=False).checkpoint
    start = safe_load(trained)["model"]
    cfg = replace(_bandit_cfg(16 * 20 * 3), init_from=str(trained), critic_warmup_steps=16 * 20 * 2, snapshot_every=1)
    train_rl2(cfg, None, tmp_path / "b", vec_env=env, tensorboard=False)  # 2 warm-up iterations, then 1 of both
    for snapshot, actor_moves in (("step_000000000640.pt", False), ("step_000000000960.pt", True)):
        after = safe_load(tmp_path / "b" / "snapshots" / snapshot)["model"]
        moved = {k for k, v in after.items() if not torch.equal(v, start[k])}  # normalisers included
        assert any(k.startswith("critic_") for k in moved)
        assert any(not k.startswith("critic_") for k in moved) == actor_moves, sorted(moved)


def test_snapshots_keep_loadable_weights_every_k_iterations(tmp_path):
    env = BernoulliBanditVecEnv(16, k=3, n=10, seed=0)
    train_rl2(replace(_bandit_cfg(16 * 20 * 5), snapshot_every=2), None, tmp_path, vec_env=env, tensorboard=False)
    snapshots = sorted((tmp_path / "snapshots").glob("*.pt"))
    assert [p.name for p in snapshots] == ["step_000000000640.pt", "step_000000001280.pt"]
    first, second = (load_policy(p)[0].state_dict() for p in snapshots)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # two different points of the run
    assert safe_load(snapshots[1])["global_step"] == 1280


def test_resume_drops_log_lines_written_after_the_last_checkpoint(tmp_path):
    """A run killed between checkpoints logged iterations that the resumed run repeats: log each step once."""
    env = BernoulliBanditVecEnv(16, k=3, n=10, seed=0)
    train_rl2(_bandit_cfg(16 * 20 * 2), None, tmp_path, vec_env=env, tensorboard=False)
    log = tmp_path / "progress.jsonl"
    with open(log, "a") as f:  # what a killed run leaves: iteration 3 logged (never checkpointed), then a torn line
        f.write(json.dumps({"iteration": 3, "global_step": 960, "trial_return_mean": -1.0}) + '\n{"iterat')
    result = train_rl2(_bandit_cfg(16 * 20 * 4), None, tmp_path, vec_env=env, tensorboard=False)
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["global_step"] for r in rows] == [320, 640, 960, 1280]
    assert rows[2]["trial_return_mean"] != -1.0  # the re-run iteration's own line, not the killed run's
    assert result.stats["steps_per_s"] > 0


class PointEnv(gym.Env):
    """1-D point pushed towards a hidden target; 5-step episodes, Box action (m)."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if (options or {}).get("randomize", True):
            self.target = self.np_random.uniform(-1, 1)
        self.x, self.t = 0.0, 0
        return np.array([self.x, self.t], np.float32), {}

    def step(self, action):
        self.x += float(action[0])
        self.t += 1
        return np.array([self.x, self.t], np.float32), -abs(self.x - self.target), False, self.t >= 5, {}


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_gymnasium_env_fns_with_box_actions(tmp_path, rnn_type):
    cfg = RL2Config(network=NetworkConfig(rnn_type=rnn_type, hidden_size=16, embed_size=8), episodes_per_trial=3,
                    total_steps=2 * 30 * 2, rollout_steps=30, seq_len=15, num_minibatches=2)
    result = train_rl2(cfg, [PointEnv, PointEnv], tmp_path)
    model, loaded_cfg = load_policy(result.checkpoint)
    assert loaded_cfg.network.rnn_type == rnn_type and result.global_step == 120
    assert list((tmp_path / "tb").iterdir())  # TensorBoard events written


def test_sb3_vec_env_adapter(tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = SB3TrialVecEnv(DummyVecEnv([lambda: TrialWrapper(PointEnv(), 2)] * 2))
    cfg = RL2Config(network=NetworkConfig(hidden_size=16, embed_size=8, shared_recurrence=True),
                    total_steps=40, rollout_steps=20, seq_len=10, num_minibatches=2)
    result = train_rl2(cfg, None, tmp_path, vec_env=venv, tensorboard=False)
    assert result.stats["trials"] == 4 and result.stats["trial_return_mean"] < 0  # 2 envs x 20 steps, 10-step trials


def test_gymnasium_vector_env_adapter(tmp_path):
    mode = gym.vector.AutoresetMode
    venv = gym.vector.SyncVectorEnv([lambda: TrialWrapper(PointEnv(), 2)] * 2, autoreset_mode=mode.SAME_STEP)
    cfg = RL2Config(network=NetworkConfig(hidden_size=16, embed_size=8),
                    total_steps=40, rollout_steps=20, seq_len=10, num_minibatches=2)
    result = train_rl2(cfg, None, tmp_path, vec_env=GymVectorTrialEnv(venv), tensorboard=False)
    assert result.stats["trials"] == 4 and result.stats["trial_return_mean"] < 0
    with pytest.raises(ValueError, match="SAME_STEP"):
        GymVectorTrialEnv(gym.vector.SyncVectorEnv([PointEnv], autoreset_mode=mode.NEXT_STEP))
