"""``sim2real export``: RL² and SB3 policies as ONNX and TorchScript graphs whose outputs match the originals."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from sim2real.cli import main

ZOO_VISION = os.path.join(os.path.dirname(__file__), "..", "..", "policies", "zoo", "so101_reach_vision")


def _observations(config: dict, count: int = 12) -> list:
    """Observations of the config's env under random actions (seeded)."""
    from sim2real.env_factory import make_env_fn

    env = make_env_fn(config, rank=0)()
    rng = np.random.default_rng(0)
    try:
        obs, _ = env.reset(seed=3)
        out = [obs]
        for _ in range(count - 1):
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            out.append(obs)
    finally:
        env.close()
    return out


def test_rl2_export_round_trip_matches_the_checkpoint_on_every_backend(tiny_rl2_run, tmp_path, capsys):
    from policies.runner import PolicyRunner
    from sim2real.launch import resolve
    from sim2real.policy_files import load_batch_policy

    out = tmp_path / "export"
    assert main(["export", tiny_rl2_run, "--format", "onnx", "--format", "torchscript", "--out", str(out)]) == 0
    assert "exported RL² run (onnx, torchscript)" in capsys.readouterr().out
    assert {"policy.json", "policy.pt", "policy.onnx", "policy.ts", "launch.yaml"} <= set(os.listdir(out))
    observations = _observations(resolve(os.path.join(tiny_rl2_run, "launch.yaml")))
    runners = [PolicyRunner.load(os.path.join(tiny_rl2_run, "checkpoint.pt"))] + \
        [PolicyRunner.load(out, backend=b) for b in ("torch", "onnx", "torchscript")]
    actions = np.zeros((len(runners), len(observations), 3))
    for r, runner in enumerate(runners):
        runner.reset_trial()
        for t, obs in enumerate(observations):
            actions[r, t] = runner.act(obs)
            runner.observe(0.1 * t, t == 5)  # the reward and done inputs reach the graphs too
    for r in range(1, len(runners)):
        np.testing.assert_allclose(actions[r], actions[0], atol=1e-5)
    policy, config = load_batch_policy(str(out), None)  # the export records its launch file: no --launch needed
    assert policy.recurrent and config["env"]["id"] == "sim2real/SO101Reach-v0"


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_sb3_export_is_the_deterministic_actor(tiny_run, tmp_path):
    import onnxruntime as ort

    from sim2real.checkpoints import run_model_path
    from sim2real.policy_files import load_state_policy

    out = tmp_path / "sb3"
    assert main(["export", tiny_run, "--format", "onnx", "--format", "torchscript", "--out", str(out)]) == 0
    meta = json.loads((out / "sb3_policy.json").read_text())
    config, _ = run_model_path(tiny_run)
    model = load_state_policy(tiny_run, None)[0].model
    observations = _observations(config)
    batch = {k: np.stack([o[k] for o in observations]).astype(np.float32) for k in observations[0]}
    expected, _ = model.predict(batch, deterministic=True)
    inputs = [batch[name.removeprefix("obs_")] for name in meta["inputs"]]
    session = ort.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    onnx_actions = session.run(None, dict(zip(meta["inputs"], inputs)))[0]
    scripted = torch.jit.load(str(out / "policy.ts"))
    ts_actions = scripted(*[torch.from_numpy(x) for x in inputs]).detach().numpy()
    assert onnx_actions.shape == expected.shape == (len(observations), 3)
    np.testing.assert_allclose(onnx_actions, expected, atol=1e-5)
    np.testing.assert_allclose(ts_actions, expected, atol=1e-5)
    assert np.ptp(expected, axis=0).max() > 0  # the observations differ enough to tell actions apart


@pytest.mark.parametrize("args, fragment", [
    ([ZOO_VISION, "--format", "onnx"], "exports as its parts"),
    (["no/such/run", "--format", "onnx"], "not a policy"),
])
def test_export_mistakes_are_one_line(args, fragment, tmp_path, capsys):
    assert main(["export", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
