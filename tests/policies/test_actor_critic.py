"""Recurrent actor-critic: step/unroll agreement, trial-boundary resets, heads, RL² inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from policies.actor_critic import RecurrentActorCritic
from policies.config import NetworkConfig
from policies.networks import one_hot_or_zero
from policies.spaces import first_prev_action, make_spec, raw_to_env_action

VEC = spaces.Box(-1.0, 1.0, (3,), np.float32)
DICT = spaces.Dict({"image": spaces.Box(0, 255, (3, 12, 12), np.uint8), "proprio": spaces.Box(-1, 1, (4,))})

CASES = [
    (VEC, spaces.Discrete(4), NetworkConfig(hidden_size=16, embed_size=8)),
    (VEC, spaces.Box(-2.0, 2.0, (2,)), NetworkConfig(rnn_type="lstm", hidden_size=16, num_layers=2)),
    (DICT, spaces.Box(-1.0, 1.0, (2,)), NetworkConfig(hidden_size=16, shared_recurrence=True,
                                                      log_std_mode="state_dependent", squash="clip")),
    (DICT, spaces.Discrete(3), NetworkConfig(rnn_type="lstm", hidden_size=8, shared_recurrence=True)),
]


def _inputs(spec, T: int, B: int, gen: torch.Generator):
    obs = {p.key: torch.rand(T, B, *p.shape, generator=gen) * (255 if p.uint8 else 1) for p in spec.obs_parts}
    if spec.action.discrete:
        prev_a = torch.randint(0, spec.action.n, (T, B, 1), generator=gen).float()
    else:
        prev_a = torch.rand(T, B, spec.action.n, generator=gen) * 2 - 1
    return obs, prev_a, torch.randn(T, B, generator=gen), (torch.rand(T, B, generator=gen) < 0.3).float()


@pytest.mark.parametrize("obs_space,act_space,cfg", CASES)
def test_unroll_matches_stepping(obs_space, act_space, cfg):
    torch.manual_seed(0)
    spec = make_spec(obs_space, act_space, cfg.squash)
    model = RecurrentActorCritic(spec, cfg)
    T, B = 7, 3
    obs, prev_a, prev_r, prev_d = _inputs(spec, T, B, torch.Generator().manual_seed(1))
    starts = torch.zeros(T, B)
    starts[0] = 1
    starts[4, 1] = 1
    state0 = torch.randn(model.state_layers, B, cfg.hidden_size)
    params, values, final = model.unroll(obs, prev_a, prev_r, prev_d, state0, starts)
    state = state0
    for t in range(T):
        state = state * (1 - starts[t]).view(1, -1, 1)
        p, v, state = model.step({k: x[t] for k, x in obs.items()}, prev_a[t], prev_r[t], prev_d[t], state)
        torch.testing.assert_close(p, params[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v, values[t], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, final, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_gradients_stop_at_trial_start_but_cross_inner_episodes(rnn_type):
    """The loss at a step after a trial start has no gradient w.r.t. inputs before that start, while
    inputs earlier in the same trial (across inner-episode ends) do get gradient."""
    torch.manual_seed(0)
    spec = make_spec(VEC, spaces.Discrete(2))
    model = RecurrentActorCritic(spec, NetworkConfig(rnn_type=rnn_type, hidden_size=8, embed_size=8))
    T, B = 6, 1
    obs = {"obs": torch.randn(T, B, 3, requires_grad=True)}
    prev_done = torch.tensor([[0.0], [0.0], [1.0], [0.0], [1.0], [0.0]])  # inner episode ends
    starts = torch.zeros(T, B)
    starts[0] = starts[3] = 1  # trial 1: steps 0-2, trial 2: steps 3-5
    params, values, _ = model.unroll(obs, torch.zeros(T, B, 1), torch.zeros(T, B), prev_done,
                                     model.initial_state(B), starts)
    (values[5].sum() + params[5].sum()).backward()
    grad = obs["obs"].grad.abs().sum(dim=(1, 2))
    assert torch.all(grad[:3] == 0)
    assert torch.all(grad[3:] > 0)


def test_hidden_state_changes_output_within_trial():
    """Same observation, different history ⇒ different output (the policy remembers)."""
    torch.manual_seed(0)
    spec = make_spec(VEC, spaces.Discrete(2))
    model = RecurrentActorCritic(spec, NetworkConfig(hidden_size=8, embed_size=8))
    obs = {"obs": torch.zeros(1, 3)}
    a, r, d = first_prev_action(1, spec.action), torch.zeros(1), torch.zeros(1)
    p0, _, s1 = model.step(obs, a, r, d, model.initial_state(1))
    p1, _, _ = model.step(obs, torch.ones(1, 1), torch.ones(1), torch.ones(1), s1)
    p_fresh, _, _ = model.step(obs, a, r, d, model.initial_state(1))
    assert torch.equal(p0, p_fresh)
    assert not torch.allclose(p0, p1)


def test_one_hot_zero_at_trial_start():
    idx = torch.tensor([[-1.0], [0.0], [2.0]])
    assert one_hot_or_zero(idx, 3).tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 1]]


@pytest.mark.parametrize("squash", ["tanh", "clip"])
def test_gaussian_actions_stay_in_bounds(squash):
    spec = make_spec(VEC, spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)), squash)
    raw = torch.randn(1000, 2) * 5
    act = raw_to_env_action(raw, spec.action)
    assert torch.all(act[:, 0] >= -2) and torch.all(act[:, 0] <= 2)
    assert torch.all(act[:, 1] >= 0) and torch.all(act[:, 1] <= 10)
    mid = raw_to_env_action(torch.zeros(1, 2), spec.action)
    torch.testing.assert_close(mid, torch.tensor([[0.0, 5.0]]))


def test_state_dependent_log_std_depends_on_input():
    spec = make_spec(VEC, spaces.Box(-1, 1, (2,)))
    torch.manual_seed(0)
    dep = RecurrentActorCritic(spec, NetworkConfig(hidden_size=8, log_std_mode="state_dependent"))
    ind = RecurrentActorCritic(spec, NetworkConfig(hidden_size=8, log_std_mode="state_independent"))
    for model, varies in ((dep, True), (ind, False)):
        with torch.no_grad():
            for p in model.actor_head.parameters():
                p.normal_()
        obs = {"obs": torch.randn(5, 3)}
        params, _, _ = model.step(obs, torch.zeros(5, 2), torch.zeros(5), torch.zeros(5), model.initial_state(5))
        log_std = params[:, 2:]
        assert bool((log_std.std(0) > 1e-6).any()) == varies
