"""Asymmetric RL² actor-critic: the actor ignores the privileged state, the critic uses it; exports hold the actor."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from policies.actor_critic import RecurrentActorCritic
from policies.config import NetworkConfig, RL2Config
from policies.errors import ConfigError
from policies.export import export_policy
from policies.runner import PolicyRunner
from policies.spaces import first_prev_action, make_spec

try:
    import onnxruntime  # noqa: F401  (optional extra)
    HAVE_ORT = True
except ImportError:
    HAVE_ORT = False

OBS = spaces.Dict({"image": spaces.Box(0, 255, (16, 16, 3), np.uint8), "proprio": spaces.Box(-1, 1, (4,)),
                   "state": spaces.Box(-1, 1, (5,))})
ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)
CFG = NetworkConfig(hidden_size=16, embed_size=16, encoder_sizes=(16,), cnn_channels=(4, 8, 8), critic_keys=("state",))


def _model(cfg: NetworkConfig = CFG) -> RecurrentActorCritic:
    torch.manual_seed(0)
    model = RecurrentActorCritic(make_spec(OBS, ACT), cfg)
    with torch.no_grad():
        for p in model.actor_head.parameters():
            p.mul_(50.0)  # actions vary visibly with the inputs
    return model.eval()


def _batch(seed: int, n: int = 3) -> dict[str, torch.Tensor]:
    OBS.seed(seed)
    samples = [OBS.sample() for _ in range(n)]
    return {k: torch.as_tensor(np.stack([s[k] for s in samples]), dtype=torch.float32) for k in OBS.spaces}


def test_channels_last_images_are_recognised():
    spec = make_spec(OBS, ACT)
    image = next(p for p in spec.obs_parts if p.key == "image")
    assert image.channels_last and image.chw == (3, 16, 16)


def test_actor_ignores_the_privileged_state_and_the_critic_uses_it():
    model = _model()
    obs = _batch(0)
    other = dict(obs, state=torch.randn_like(obs["state"]) * 3.0)
    n = 3
    inputs = (first_prev_action(n, model.spec.action), torch.zeros(n), torch.zeros(n), model.initial_state(n))
    p1, v1, s1 = model.step(obs, *inputs)
    p2, v2, s2 = model.step(other, *inputs)
    a = model.actor_state_layers
    assert torch.equal(p1, p2) and torch.equal(s1[:a], s2[:a])  # actor: bit-identical
    assert (v1 - v2).abs().min() > 1e-4 and not torch.equal(s1[a:], s2[a:])  # critic: moves with the state
    image_changed = dict(obs, image=torch.flip(obs["image"], dims=[1]))
    assert not torch.equal(model.step(image_changed, *inputs)[0], p1)  # the actor does look at the image
    # gradients: the actor's output has none w.r.t. the state; the value does
    state = obs["state"].clone().requires_grad_(True)
    params, value, _ = model.step(dict(obs, state=state), *inputs)
    assert torch.autograd.grad(params.sum(), state, allow_unused=True)[0] is None
    assert torch.autograd.grad(value.sum(), state)[0].abs().sum() > 0
    # the actor alone (what is exported) gives the same distribution without the state key
    actor_obs = {k: v for k, v in obs.items() if k != "state"}
    params_actor, state_actor = model.actor_step(actor_obs, *inputs[:3], inputs[3][:a])
    assert torch.equal(params_actor, p1) and torch.equal(state_actor, s1[:a])


def test_unroll_matches_steps_for_the_asymmetric_model():
    model = _model()
    T, B = 4, 2
    seq = [_batch(t, B) for t in range(T)]
    obs = {k: torch.stack([s[k] for s in seq]) for k in seq[0]}
    pa, pr, pd = torch.zeros(T, B, 2), torch.randn(T, B), torch.zeros(T, B)
    starts = torch.zeros(T, B)
    starts[2, 1] = 1.0
    params, values, _ = model.unroll(obs, pa, pr, pd, model.initial_state(B), starts)
    state = model.initial_state(B)
    for t in range(T):
        state = state * (1.0 - starts[t]).view(1, -1, 1)
        p, v, state = model.step({k: obs[k][t] for k in obs}, pa[t], pr[t], pd[t], state)
        torch.testing.assert_close(p, params[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v, values[t], atol=1e-5, rtol=1e-5)


def test_cnn_rl2_export_round_trip_holds_only_the_actor(tmp_path):
    model = _model()
    formats = ("torchscript", "onnx") if HAVE_ORT else ("torchscript",)
    export_policy(model, tmp_path, formats=formats)
    meta = json.loads((tmp_path / "policy.json").read_text())
    assert [p["key"] for p in meta["spec"]["obs_parts"]] == ["image", "proprio"]
    assert meta["output_names"] == ["dist_params", "hidden_out"]
    assert meta["hidden_shape"] == [model.actor_state_layers, 16]
    runners = [PolicyRunner.from_model(model)] + [PolicyRunner.load(tmp_path, backend=b) for b in formats]
    OBS.seed(1)
    frames = [OBS.sample() for _ in range(12)]
    runs = []
    for runner in runners:
        actions = []
        for t, frame in enumerate(frames):  # deployment frames: no privileged state
            actions.append(runner.act({"image": frame["image"], "proprio": frame["proprio"]}))
            runner.observe(0.5 * t, episode_done=t == 5)
        runs.append(np.stack(actions))
    assert runs[0].std(0).min() > 1e-3
    for other in runs[1:]:
        np.testing.assert_allclose(other, runs[0], atol=1e-5)
    with pytest.raises(ValueError, match="obs: expected image"):
        runners[1].act({"proprio": frames[0]["proprio"]})


def test_critic_keys_are_checked():
    with pytest.raises(ConfigError, match="'nope' is not an observation key"):
        RecurrentActorCritic(make_spec(OBS, ACT), NetworkConfig(critic_keys=("nope",)))
    with pytest.raises(ConfigError, match="needs its own recurrence"):
        NetworkConfig(critic_keys=("state",), shared_recurrence=True).validate()
    with pytest.raises(ConfigError, match="actor needs at least one"):
        RecurrentActorCritic(make_spec(OBS, ACT), NetworkConfig(critic_keys=("image", "proprio", "state")))
    cfg = RL2Config.from_dict({"network": {"critic_keys": ["state"]}})
    assert cfg.network.critic_keys == ("state",) and cfg.to_dict()["network"]["critic_keys"] == ["state"]
