"""RL² on the batched quadrotor through ``sim2real train`` (issue 19 item 5): the launch files of the experiment, the
one-line refusal of worker processes, and a tiny run whose checkpoint flies the PyBullet env through the one loader."""
import os

import numpy as np
import pytest

from sim2real.env_factory import make_env_fn
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.policy_files import load_policy
from sim2real.train import train

RL2, MLP = "launch/crazyflie_hover_rl2_dr.yaml", "launch/crazyflie_hover_rl2_dr_mlp.yaml"


def test_the_baseline_flies_the_same_worlds_on_the_same_budget():
    rl2, mlp = resolve(RL2), resolve(MLP)
    assert rl2["policy"] == "rl2" and mlp["policy"] == "mlp"
    assert rl2["env"] == mlp["env"] and rl2["env"]["simulator"] == "batched"
    assert rl2["randomizers"] == mlp["randomizers"]
    assert rl2["budget"]["total_timesteps"] == mlp["budget"]["total_timesteps"]
    names = {p["name"] for p in rl2["randomizers"][0]["params"]}
    assert {"quadrotor.mass", "quadrotor.kf", "quadrotor.motor.time_constant", "quadrotor.latency",
            "quadrotor.wind.x"} <= names


def test_worker_processes_are_refused_on_the_batched_model():
    with pytest.raises(UserError, match="rl2.workers: env.simulator: batched steps every vehicle"):
        resolve(RL2, ["rl2.workers=2"])


def test_tiny_rl2_run_on_the_batched_model_flies_pybullet(tmp_path):
    config = resolve(RL2, ["n_envs=8", "rl2.rollout_steps=24", "rl2.seq_len=12", "rl2.num_minibatches=2",
                           "rl2.epochs=1", "rl2.network.hidden_size=16", "env.max_episode_steps=10",
                           "budget.total_timesteps=384", "eval.every_steps=192", f"output_dir={tmp_path}"])
    run_dir = train(config, str(tmp_path / "run"), progress=False)
    rows = open(os.path.join(run_dir, "progress.jsonl")).read().splitlines()
    assert len(rows) == 2  # 384 steps = 2 updates of 8 vehicles x 24 steps
    assert '"trials"' in rows[-1]  # trials of 3 x 10 steps finished on the batched model
    policy, loaded = load_policy(run_dir, None)
    assert policy.recurrent and loaded["env"]["simulator"] == "batched"
    env = make_env_fn(loaded, rank=0)()
    assert type(env.unwrapped).__name__ == "QuadrotorEnv"
    try:
        policy.reset_trial()
        obs, _ = env.reset(seed=0)
        actions = []
        for _ in range(5):
            action = policy.act(obs)
            assert env.action_space.contains(action.astype(env.action_space.dtype))
            obs, reward, terminated, truncated, _ = env.step(action)
            policy.observe(float(reward), terminated, truncated)
            actions.append(action)
        assert np.all(np.isfinite(actions))
    finally:
        env.close()


def test_the_zoo_policy_holds_a_nominal_crazyflie_in_pybullet():
    """The shipped RL² hover policy (policies/zoo/crazyflie_hover_rl2_dr) on the nominal vehicle: after the first
    second of a 5 s episode it stays within 0.25 m of the hover point and does not crash."""
    config = resolve(RL2, ["randomizers=[]"])
    policy, _ = load_policy("policies/zoo/crazyflie_hover_rl2_dr.pt", config)
    env = make_env_fn(config, rank=0)()
    try:
        policy.reset_trial()
        obs, _ = env.reset(seed=123)
        errors, terminated, truncated = [], False, False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(policy.act(obs))
            policy.observe(float(reward), terminated, truncated)
            errors.append(info["position_error"])
    finally:
        env.close()
    assert not terminated and len(errors) == 240
    assert max(errors[48:]) < 0.25
