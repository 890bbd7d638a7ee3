"""End-to-end pixel policies with an asymmetric critic: the privileged state, SB3 PPO and RL² from launch files."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from sim2real.cli import main
from sim2real.envs.privileged import STATE_KEY, PrivilegedState
from sim2real.train import latest_checkpoint

PPO_SMOKE = ["budget.total_timesteps=128", "algo.n_steps=64", "algo.batch_size=64", "algo.n_epochs=1",
             "algo.net_arch=[32]", "eval.every_steps=128", "eval.episodes=1", "checkpoint.every_steps=64", "n_envs=1"]
RL2_SMOKE = ["budget.total_timesteps=100", "rl2.rollout_steps=50", "rl2.seq_len=25", "rl2.network.hidden_size=16",
             "rl2.network.embed_size=16", "rl2.network.cnn_channels=[4, 8, 8]", "n_envs=1", "rl2.num_minibatches=1"]


def _set_budget(run_dir, steps: int) -> None:
    path = run_dir / "launch.yaml"
    config = yaml.safe_load(path.read_text())
    config["budget"]["total_timesteps"] = steps
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_privileged_state_is_the_true_state_next_to_the_camera():
    env = PrivilegedState(gym.make("sim2real/PandaReach-v0", obs_mode="rgb"))
    try:
        obs, _ = env.reset(seed=0)
        assert set(obs) == {"image", "proprio", STATE_KEY} and env.observation_space[STATE_KEY].shape == (12,)
        arm = env.unwrapped
        state = obs[STATE_KEY]
        np.testing.assert_allclose(state[:6], obs["proprio"], atol=1e-6)  # EE position and velocity
        np.testing.assert_allclose(state[-3:], arm.goal, atol=1e-6)  # the goal the camera must find
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_sb3_asymmetric_policy_actor_ignores_the_state_and_the_critic_uses_it():
    from stable_baselines3 import PPO

    from sim2real.sb3_asymmetric import AsymmetricActorCriticPolicy

    env = PrivilegedState(gym.make("sim2real/PandaReach-v0", obs_mode="rgb"))
    try:
        model = PPO(AsymmetricActorCriticPolicy, env, n_steps=16, batch_size=16, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [32], "critic_keys": (STATE_KEY,)})
        policy = model.policy
        assert policy.pi_features_extractor.keys == ("image", "proprio")
        assert policy.vf_features_extractor.keys == (STATE_KEY,)
        obs, _ = env.reset(seed=0)
        other = dict(obs, state=obs[STATE_KEY] + 5.0)
        t1, _ = policy.obs_to_tensor(obs)
        t2, _ = policy.obs_to_tensor(other)
        with torch.no_grad():
            mean1 = policy.get_distribution(t1).distribution.mean
            mean2 = policy.get_distribution(t2).distribution.mean
            v1, v2 = policy.predict_values(t1), policy.predict_values(t2)
            values, _, _ = policy.evaluate_actions(t1, mean1)
        assert torch.equal(mean1, mean2) and not torch.allclose(v1, v2)
        torch.testing.assert_close(values, v1)
        # deployment: predict from the camera and proprioception alone
        action, _ = model.predict({"image": obs["image"], "proprio": obs["proprio"]}, deterministic=True)
        np.testing.assert_allclose(action, mean1.numpy()[0], atol=1e-6)
    finally:
        env.close()


def test_pixel_ppo_launch_file_trains_checkpoints_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "ppo"
    assert main(["train", "launch/panda_reach_pixels_ppo.yaml", *PPO_SMOKE, "--run-dir", str(run_dir)]) == 0
    checkpoint = latest_checkpoint(str(run_dir))
    assert checkpoint and json.load(open(f"{checkpoint}/state.json"))["num_timesteps"] == 128
    assert (run_dir / "final" / "model.zip").is_file()
    _set_budget(run_dir, 192)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "resuming" in capsys.readouterr().out
    checkpoint = latest_checkpoint(str(run_dir))
    assert json.load(open(f"{checkpoint}/state.json"))["num_timesteps"] == 192
    from stable_baselines3 import PPO

    from sim2real.sb3_asymmetric import AsymmetricActorCriticPolicy

    model = PPO.load(run_dir / "final" / "model.zip", device="cpu")
    assert isinstance(model.policy, AsymmetricActorCriticPolicy)
    assert model.policy.vf_features_extractor.keys == (STATE_KEY,)


def test_pixel_rl2_launch_file_trains_resumes_and_exports_the_actor(tmp_path, capsys):
    from policies.checkpoint import load_policy
    from policies.export import export_policy
    from policies.runner import PolicyRunner

    run_dir = tmp_path / "rl2"
    assert main(["train", "launch/panda_reach_pixels_rl2.yaml", *RL2_SMOKE, "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "checkpoint.pt").is_file()
    _set_budget(run_dir, 150)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "resuming" in capsys.readouterr().out
    progress = [json.loads(line) for line in open(run_dir / "progress.jsonl")]
    assert [p["global_step"] for p in progress] == [50, 100, 150]
    model, cfg = load_policy(run_dir / "checkpoint.pt")
    assert model.asymmetric and cfg.network.critic_keys == (STATE_KEY,)
    export_policy(model, tmp_path / "export", formats=("torchscript",))
    runner = PolicyRunner.load(tmp_path / "export")
    assert [p.key for p in runner.spec.obs_parts] == ["image", "proprio"]
    env = gym.make("sim2real/PandaReach-v0", obs_mode="rgb")
    try:
        obs, _ = env.reset(seed=0)
        action = runner.act(obs)  # a camera frame and proprioception: no privileged state needed
        assert action.shape == (3,) and np.all(np.abs(action) <= 1.0)
    finally:
        env.close()


PPO_LAUNCH, RL2_LAUNCH = "launch/panda_reach_pixels_ppo.yaml", "launch/panda_reach_pixels_rl2.yaml"


@pytest.mark.parametrize("launch,override,fragment", [
    (PPO_LAUNCH, "env.obs_mode=state", "asymmetric_critic: needs an arm env with env.obs_mode: rgb"),
    (PPO_LAUNCH, "algo.name=sac", "asymmetric_critic: with policy: mlp it needs algo.name: ppo"),
    (PPO_LAUNCH, "asymmetric_critic=yes please", "asymmetric_critic: expected bool"),
    (RL2_LAUNCH, "rl2.network.critic_keys=[state]", "set asymmetric_critic: true (the critic sees `state`)"),
    (RL2_LAUNCH, "rl2.network.shared_recurrence=true", "needs its own recurrence"),
])
def test_pixel_launch_errors_are_one_line(launch, override, fragment, capsys):
    assert main(["train", launch, override]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err
