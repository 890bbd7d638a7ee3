"""TrialWrapper semantics, rollout bookkeeping across inner episodes/trials, and GAE by hand."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from policies.actor_critic import RecurrentActorCritic
from policies.config import NetworkConfig, RL2Config
from policies.normalization import ReturnScaler
from policies.ppo import _Carry, collect, compute_gae, make_vec_env
from policies.spaces import make_spec
from policies.trial import TrialWrapper


class CountEnv(gym.Env):
    """Episodes of ``length`` steps; obs = [step index]; reward = action; records reset options."""

    observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.t = 0
        self.reset_options: list[Any] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.reset_options.append(options)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), float(action), self.t >= self.length, False, {}


def test_trial_wrapper_runs_k_episodes_and_randomizes_only_at_trial_start():
    inner = CountEnv(3)
    env = TrialWrapper(inner, episodes_per_trial=2)
    obs, info = env.reset(seed=0, options={"task": 1})
    assert info["trial_start"] and inner.reset_options == [{"task": 1, "randomize": True}]
    flags = []
    for t in range(6):
        obs, r, term, trunc, info = env.step(1)
        flags.append((info["episode_done"], term, trunc))
        if t == 2:
            assert info["final_observation"][0] == 3 and obs[0] == 0  # next episode's first obs
    assert flags == [(False, False, False), (False, False, False), (True, False, False),
                     (False, False, False), (False, False, False), (True, True, False)]
    assert inner.reset_options[1:] == [{"randomize": False}]
    env.reset()
    assert inner.reset_options[-1] == {"randomize": True}


def test_rollout_keeps_state_across_inner_episodes_and_resets_across_trials():
    cfg = RL2Config(episodes_per_trial=2, rollout_steps=14, seq_len=7, num_envs=2, num_minibatches=1,
                    normalize_reward=False, network=NetworkConfig(hidden_size=8, embed_size=8))
    env = make_vec_env(cfg, [lambda: CountEnv(3)] * 2)
    torch.manual_seed(0)
    model = RecurrentActorCritic(make_spec(env.observation_space, env.action_space), cfg.network)
    carry = _Carry(model, 2)
    ro, _ = collect(model, env, env.reset(seed=0), carry, cfg, None, [], torch.zeros(2))
    # trials are 6 steps: starts at 0, 6, 12; inner episodes end at steps 2, 8 (inside a trial)
    expected_starts = torch.zeros(14)
    expected_starts[[0, 6, 12]] = 1
    assert torch.equal(ro.starts[:, 0], expected_starts)
    expected_prev_done = torch.zeros(14)
    expected_prev_done[[3, 9]] = 1
    assert torch.equal(ro.prev_done[:, 0], expected_prev_done)
    assert torch.equal(ro.trial_ends[:, 0], torch.roll(expected_starts, -1) * (torch.arange(14) < 13))
    assert torch.all(ro.prev_action[ro.starts.bool()] == -1)  # "no previous action" at trial starts
    # Re-running the whole rollout from a zero state with the recorded masks reproduces the rollout's
    # values: the state was reset exactly at trial starts, and carried everywhere else.
    _, values, _ = model.unroll(ro.obs, ro.prev_action, ro.prev_reward, ro.prev_done, model.initial_state(2),
                                ro.starts)
    torch.testing.assert_close(values, ro.values)
    # ... while resetting also at the inner-episode start (step 3) would change the values after it.
    starts_inner = ro.starts.clone()
    starts_inner[3] = 1
    _, values_wrong, _ = model.unroll(ro.obs, ro.prev_action, ro.prev_reward, ro.prev_done,
                                      model.initial_state(2), starts_inner)
    assert not torch.allclose(values_wrong[3:6], ro.values[3:6])


def test_gae_by_hand_runs_across_inner_episodes_and_stops_at_trial_end():
    rewards = torch.tensor([[1.0], [0.0], [2.0], [1.0]])
    values = torch.tensor([[0.5], [0.4], [0.3], [0.2]])
    trial_ends = torch.tensor([[0.0], [1.0], [0.0], [0.0]])  # trial ends after step 1
    gamma, lam, last = 0.9, 0.8, torch.tensor([0.6])
    adv, ret = compute_gae(rewards, values, trial_ends, last, gamma, lam)
    d3 = 1 + 0.9 * 0.6 - 0.2
    d2 = 2 + 0.9 * 0.2 - 0.3
    d1 = 0 - 0.4
    d0 = 1 + 0.9 * 0.4 - 0.5
    expected = torch.tensor([[d0 + 0.72 * d1], [d1], [d2 + 0.72 * d3], [d3]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_return_scaler_resets_only_at_trial_end():
    scaler = ReturnScaler(1, gamma=0.5)
    scaler(torch.tensor([1.0]), torch.tensor([0.0]))
    assert scaler.ret.item() == pytest.approx(1.0)
    scaler(torch.tensor([1.0]), torch.tensor([1.0]))
    assert scaler.ret.item() == 0.0


def test_truncated_trial_is_bootstrapped_from_its_last_observation():
    """A time limit *outside* the trial truncates it: the env reports it with the last observation, and
    the rollout adds γ·V(last observation) to that step's reward (no bootstrap at terminations)."""
    from gymnasium.wrappers import TimeLimit

    cfg = RL2Config(rollout_steps=8, seq_len=8, num_envs=1, num_minibatches=1, normalize_reward=False,
                    gamma=0.9, network=NetworkConfig(hidden_size=8, embed_size=8))
    env = make_vec_env(cfg, [lambda: TimeLimit(TrialWrapper(CountEnv(3), 5), max_episode_steps=4)])
    step_env = make_vec_env(cfg, [lambda: TimeLimit(TrialWrapper(CountEnv(3), 5), max_episode_steps=4)])
    step_env.reset(seed=0)
    steps = [step_env.step(torch.tensor([1])) for _ in range(4)]
    assert [s.trial_truncated.item() for s in steps] == [0, 0, 0, 1]
    assert steps[3].final_obs["obs"].item() == 1.0 and steps[3].obs["obs"].item() == 0.0  # 2nd episode, step 1
    torch.manual_seed(0)
    model = RecurrentActorCritic(make_spec(env.observation_space, env.action_space), cfg.network)
    ro, _ = collect(model, env, env.reset(seed=0), _Carry(model, 1), cfg, None, [], torch.zeros(1))
    raw_reward = ro.raw_actions.float()  # CountEnv pays the action
    bonus = (ro.rewards - raw_reward)[:, 0]
    assert torch.all(bonus[[0, 1, 2, 4, 5, 6]] == 0)
    assert torch.all(bonus[[3, 7]] != 0)
    assert torch.equal(ro.trial_ends[:, 0], torch.tensor([0, 0, 0, 1, 0, 0, 0, 1.0]))


def test_steps_left_out_of_training_do_not_move_the_weights():
    """A rollout's ``keep`` mask (robust PLR's evaluation-only trials): whatever the excluded steps hold, the update
    is the same; with every step kept it is the update without a mask (up to rounding)."""
    from policies.ppo import ppo_update

    cfg = RL2Config(episodes_per_trial=2, rollout_steps=12, seq_len=6, num_envs=2, num_minibatches=2, epochs=2,
                    normalize_reward=False, network=NetworkConfig(hidden_size=8, embed_size=8))
    env = make_vec_env(cfg, [lambda: CountEnv(3)] * 2)
    torch.manual_seed(0)
    model = RecurrentActorCritic(make_spec(env.observation_space, env.action_space), cfg.network)
    ro, _ = collect(model, env, env.reset(seed=0), _Carry(model, 2), cfg, None, [], torch.zeros(2))
    adv, ret = compute_gae(ro.rewards, ro.values, ro.trial_ends, torch.zeros(2), cfg.gamma, cfg.gae_lambda)
    keep = torch.ones(12, 2)
    keep[:6, 1] = 0  # env 1's first trial is evaluated only

    def update(rollout, advantages, returns):
        net = RecurrentActorCritic(model.spec, cfg.network)
        net.load_state_dict(model.state_dict())
        ppo_update(net, torch.optim.Adam(net.parameters(), lr=1e-2), rollout, advantages, returns, cfg,
                   torch.Generator().manual_seed(1))
        return net.state_dict()

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    masked = update(replace(ro, keep=keep), adv, ret)
    changed_adv, changed_ret = adv.clone(), ret.clone()
    changed_adv[:6, 1] += 100.0
    changed_ret[:6, 1] -= 50.0
    assert same(masked, update(replace(ro, keep=keep), changed_adv, changed_ret))
    assert not same(masked, update(ro, adv, ret))
    ones, plain = update(replace(ro, keep=torch.ones(12, 2)), adv, ret), update(ro, adv, ret)
    assert all(torch.allclose(ones[k], plain[k], atol=1e-6) for k in plain)
