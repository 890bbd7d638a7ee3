"""Behaviour cloning of the scripted experimenter into RL² and feed-forward policies (benchmarks/heavier_clone.py,
issue 24): demonstrations, the fit, and runs the policy loader, the behaviour benchmark and ``rl2.init_from`` read."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from sim2real.launch import resolve

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clone():
    return _module("heavier_clone")


@pytest.fixture(scope="module")
def small_rl2_config():
    config = resolve("so101_heavier_rl2_bc")
    config["rl2"]["network"] = {**config["rl2"]["network"], "hidden_size": 16, "encoder_sizes": [16],
                                "embed_size": 16}
    config["rl2"]["init_from"] = ""
    return config


@pytest.fixture(scope="module")
def demos(clone, small_rl2_config):
    return clone.collect(small_rl2_config, episodes=4, noise=0.3, noisy_fraction=0.5, seed=3)


def test_demonstrations_keep_the_expert_labels_and_execute_noisy_motion(demos):
    valid = demos.valid > 0
    assert demos.observations.shape[:2] == demos.valid.shape == (4, 50)
    assert (demos.valid.sum(axis=1) > 10).all()  # every episode pokes before it answers
    assert np.all(demos.valid[:, 1:] <= demos.valid[:, :-1])  # valid steps are a prefix; padding after
    last = demos.answer_steps.astype(bool)
    assert (demos.labels[last][:, 3] == 1.0).all()  # the expert answers at each episode's last step
    assert (demos.labels[valid & ~last][:, 3] == -1.0).all()  # and never before
    np.testing.assert_array_equal(demos.executed[..., 3], demos.labels[..., 3])  # the gate is not noised
    np.testing.assert_array_equal(demos.executed[last][:, 4:], demos.labels[last][:, 4:])  # nor the answer
    scores = demos.labels[valid & ~last][:, 4:]  # before it: the running belief, one block or none yet
    assert set((scores > 0).sum(axis=1)) <= {0, 1} and (scores > 0).sum(axis=1).max() == 1
    assert (demos.executed[valid & ~last][:, 4:] == -1.0).all()  # what the expert sent then
    motion_gap = np.abs(demos.executed[..., :3] - demos.labels[..., :3]).max(axis=(1, 2))  # per episode
    assert (motion_gap > 0.05).sum() >= 1 and (motion_gap == 0.0).sum() >= 1  # noisy and clean episodes


def test_belief_scores_the_block_that_pushed_back_hardest(clone):
    np.testing.assert_array_equal(clone.belief(np.zeros(3)), [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(clone.belief(np.array([0.2, 0.9, 0.4])), [-1.0, 1.0, -1.0])


def test_demonstrations_round_trip_through_npz(demos, tmp_path, clone):
    demos.save(str(tmp_path / "demos.npz"))
    again = clone.Demonstrations.load(str(tmp_path / "demos.npz"))
    np.testing.assert_array_equal(again.labels, demos.labels)
    assert again.success_rate == demos.success_rate
    from sim2real.errors import UserError

    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(UserError, match="not a demonstrations file"):
        clone.Demonstrations.load(str(tmp_path / "bad.npz"))


def test_cloning_fits_the_recurrent_actor_and_the_run_plays_the_benchmark(clone, small_rl2_config, demos, tmp_path):
    from policies.checkpoint import model_from_checkpoint, safe_load

    behaviour = _module("heavier_behaviour")
    _, _, _, first = clone.clone_rl2(small_rl2_config, demos, iterations=1, batch=4, lr=3e-3, answer_weight=10.0,
                                     seed=0)
    model, cfg, spec, last = clone.clone_rl2(small_rl2_config, demos, iterations=60, batch=4, lr=3e-3,
                                             answer_weight=10.0, seed=0)
    assert last < 0.5 * first  # the fit learns the demonstrations
    clone.write_rl2_run(str(tmp_path), small_rl2_config, model, cfg, spec)
    reloaded, _ = model_from_checkpoint(safe_load(tmp_path / "checkpoint.pt"))  # what rl2.init_from reads
    assert reloaded.spec == spec
    agent = behaviour.run_agent(str(tmp_path), sample=False)
    import gymnasium as gym

    from sim2real.envs.experiment_env import ExperimentRandomizer

    env = ExperimentRandomizer(gym.make("sim2real/SO101Heavier-v0"))
    records = behaviour.play(env, agent, 0.0, episodes=1, seed=0)
    assert records[0]["steps"] > 1  # it does not answer at once as the untrained learners did


def test_cloning_the_feed_forward_baseline_writes_an_sb3_run(clone, demos, tmp_path):
    from sim2real.policy_files import load_policy

    config = resolve("so101_heavier_ppo")
    config["algo"]["net_arch"] = [16, 16]
    loss = clone.clone_mlp(config, demos, iterations=20, batch=64, lr=3e-3, answer_weight=10.0, seed=0,
                           out=str(tmp_path))
    assert np.isfinite(loss)
    policy, _ = load_policy(str(tmp_path), None)
    action = policy.act(demos.observations[0, 0])
    assert action.shape == demos.labels.shape[-1:]


def test_clone_refuses_a_launch_file_of_another_task(clone, tmp_path):
    from sim2real.errors import UserError

    with pytest.raises(UserError, match="Heavier"):
        clone.main(["launch/so101_towers_rl2.yaml", "--episodes", "1", "--out", str(tmp_path / "x")])
