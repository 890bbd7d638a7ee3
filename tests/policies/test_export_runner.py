"""Export round trip (in-memory / TorchScript / ONNX), PolicyRunner trial semantics, refusal of pickles."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from gymnasium import spaces

from policies.actor_critic import RecurrentActorCritic
from policies.checkpoint import atomic_torch_save, load_policy
from policies.config import NetworkConfig, RL2Config
from policies.errors import PolicyFileError
from policies.export import export_policy
from policies.runner import PolicyRunner
from policies.spaces import make_spec

try:
    import onnxruntime  # noqa: F401  (optional extra: the ONNX backend)
    HAVE_ORT = True
except ImportError:
    HAVE_ORT = False

VEC = spaces.Box(-1.0, 1.0, (3,), np.float32)
DICT = spaces.Dict({"image": spaces.Box(0, 255, (3, 8, 8), np.uint8), "proprio": spaces.Box(-1, 1, (4,))})
CASES = {
    "gru-discrete": (VEC, spaces.Discrete(4), NetworkConfig(hidden_size=16, embed_size=8)),
    "lstm-box-tanh": (VEC, spaces.Box(-2.0, 2.0, (2,)), NetworkConfig(rnn_type="lstm", hidden_size=16, num_layers=2)),
    "dict-box-clip": (DICT, spaces.Box(-1.0, 1.0, (2,)), NetworkConfig(hidden_size=16, shared_recurrence=True,
                                                                       squash="clip", log_std_mode="state_dependent")),
}


def _model(obs_space, act_space, cfg) -> RecurrentActorCritic:
    torch.manual_seed(0)
    model = RecurrentActorCritic(make_spec(obs_space, act_space, cfg.squash), cfg)
    with torch.no_grad():  # sharpen the heads so that actions vary with the inputs
        for p in model.actor_head.parameters():
            p.mul_(50.0)
        model.encoder.obs_norm.mean.fill_(0.1)  # normalisation must be part of the exported graph
    return model.eval()


def _rollout(runner: PolicyRunner, obs_space, steps: int = 30) -> list:
    rng = np.random.default_rng(0)
    obs_space.seed(0)
    actions = []
    for t in range(steps):
        if t == 15:
            runner.reset_trial()
        actions.append(runner.act(obs_space.sample()))
        runner.observe(float(rng.normal()), episode_done=(t % 5 == 4))
    return actions


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_actions_agree(case, tmp_path):
    obs_space, act_space, cfg = CASES[case]
    model = _model(obs_space, act_space, cfg)
    backends = ("torch", "torchscript", "onnx") if HAVE_ORT else ("torch", "torchscript")  # onnx: optional extra
    export_policy(model, tmp_path, formats=backends[1:])
    runs = {b: _rollout(PolicyRunner.from_model(model) if b == "torch" else PolicyRunner.load(tmp_path, backend=b),
                        obs_space) for b in backends}
    if not HAVE_ORT:
        runs["onnx"] = runs["torchscript"]
    if isinstance(act_space, spaces.Discrete):
        assert runs["torch"] == runs["torchscript"] == runs["onnx"]
        assert len(set(runs["torch"])) > 1
    else:
        ref = np.stack(runs["torch"])
        assert ref.std(0).min() > 1e-3
        np.testing.assert_array_equal(np.stack(runs["torchscript"]), ref)
        np.testing.assert_allclose(np.stack(runs["onnx"]), ref, atol=1e-5)  # different kernels: float rounding


def test_runner_state_is_kept_within_trial_and_reset_between(tmp_path):
    obs_space, act_space, cfg = CASES["lstm-box-tanh"]
    runner = PolicyRunner.from_model(_model(obs_space, act_space, cfg))
    obs = np.zeros(3, np.float32)
    first = runner.act(obs)
    runner.observe(1.0, episode_done=True)
    second = runner.act(obs)  # same obs, but history (and hidden state) differ
    assert not np.allclose(first, second)
    runner.reset_trial()
    np.testing.assert_array_equal(runner.act(obs), first)


def test_runner_loads_checkpoint_file(tmp_path):
    obs_space, act_space, cfg = CASES["gru-discrete"]
    model = _model(obs_space, act_space, cfg)
    path = tmp_path / "policy.pt"
    atomic_torch_save({"model": model.state_dict(), "config": RL2Config(network=cfg).to_dict(),
                       "spec": model.spec.to_dict()}, path)
    assert _rollout(PolicyRunner.load(path), obs_space) == _rollout(PolicyRunner.from_model(model), obs_space)


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_of_arbitrary_objects_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": _Exploit(str(marker)), "config": {}, "spec": {}}))
    for load in (load_policy, PolicyRunner.load):
        with pytest.raises(PolicyFileError, match="refused"):
            load(evil)
    assert not marker.exists()
    whole_module = tmp_path / "module.pt"
    torch.save(_model(*CASES["gru-discrete"]), whole_module)  # a pickled nn.Module, not a state dict
    with pytest.raises(PolicyFileError, match="refused"):
        load_policy(whole_module)


def test_broken_exports_are_refused(tmp_path):
    (tmp_path / "policy.json").write_text("{not json")
    with pytest.raises(PolicyFileError, match="policy.json"):
        PolicyRunner.load(tmp_path)
    obs_space, act_space, cfg = CASES["gru-discrete"]
    export_policy(_model(obs_space, act_space, cfg), tmp_path / "ok", formats=("torchscript",))
    (tmp_path / "ok" / "policy.ts").write_bytes(b"garbage")
    with pytest.raises(PolicyFileError, match="TorchScript"):
        PolicyRunner.load(tmp_path / "ok", backend="torchscript")
    with pytest.raises(PolicyFileError, match="does not exist"):
        PolicyRunner.load(tmp_path / "ok", backend="onnx")


def test_an_export_folder_loads_its_tensors_only_weights_and_never_its_torchscript_program(tmp_path):
    """A TorchScript archive is a program: the default load reads ``policy.pt`` (weights only) and leaves
    ``policy.ts`` alone; without ``policy.pt`` the folder is refused unless a graph backend is asked for."""
    obs_space, act_space, cfg = CASES["lstm-box-tanh"]
    model = _model(obs_space, act_space, cfg)
    export_policy(model, tmp_path, formats=("torchscript",))
    (tmp_path / "policy.ts").write_bytes(b"not a program to run")
    runner = PolicyRunner.load(tmp_path)
    assert runner.backend == "torch"
    np.testing.assert_array_equal(_rollout(runner, obs_space), _rollout(PolicyRunner.from_model(model), obs_space))
    (tmp_path / "policy.pt").unlink()
    with pytest.raises(PolicyFileError, match="no policy.pt"):
        PolicyRunner.load(tmp_path)


def test_an_export_folder_whose_weights_carry_pickled_objects_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    export_policy(_model(*CASES["gru-discrete"]), tmp_path / "export", formats=("torchscript",))
    (tmp_path / "export" / "policy.pt").write_bytes(pickle.dumps({"model": _Exploit(str(marker)), "config": {},
                                                                  "spec": {}}))
    with pytest.raises(PolicyFileError, match="refused"):
        PolicyRunner.load(tmp_path / "export")
    assert not marker.exists()


def test_shipped_bandit_policy_is_near_bayes_optimal():
    """The zoo's n=10, k=5 policy, re-evaluated on fresh trials, is within 3 SE of the exact optimum."""
    from policies.baselines.bandits import bayes_optimal_value
    from policies.envs import BernoulliBanditVecEnv
    from policies.evaluate import evaluate_policy
    from policies.meta_bench import ZOO

    model, _ = load_policy(ZOO / "bandit_n10_k5.pt")
    torch.manual_seed(1)
    returns = evaluate_policy(model, BernoulliBanditVecEnv(4000, k=5, n=10, seed=2024))
    se = returns.std() / np.sqrt(len(returns))
    assert returns.mean() > bayes_optimal_value(10, 5) - 3 * se, (returns.mean(), se)
