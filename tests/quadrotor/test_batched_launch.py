"""``env.simulator: batched`` in launch files: validation, and sim2real train producing a PyBullet-deployable model."""
import os

import pytest

from sim2real.env_factory import make_env_fn
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.sb3_safe_load import load_sb3_model
from sim2real.train import make_vec_env, train

FAST = ("crazyflie_hover_fast", "crazyflie_hover_fast_rpm", "crazyflie_waypoints_fast", "crazyflie_waypoints_fast_rpm")


@pytest.mark.parametrize("name", FAST)
def test_shipped_fast_launch_files_resolve_to_the_batched_simulator(name):
    config = resolve(f"launch/{name}.yaml")
    assert config["env"]["simulator"] == "batched" and config["randomizers"][0]["group"] == "quadrotor"
    vec = make_vec_env({**config, "n_envs": 4}, 4)
    assert vec.num_envs == 4 and vec.reset().shape == (4, 25)


@pytest.mark.parametrize("override, message", [
    ("env.id=sim2real/PandaReach-v0 env.control_mode=ee", "steps quadrotors only"),
    ("env.obs_mode=rgb", "renders no images"),
    ("curriculum=adr", "curriculum: not available"),
    ('randomizers=[{"group":"sensing"}]', "takes group quadrotor only"),
])
def test_what_the_batched_model_cannot_run_is_one_line(override, message):
    with pytest.raises(UserError, match=message):
        resolve("launch/crazyflie_hover_fast.yaml", override.split())


def test_action_rate_penalty_needs_the_batched_simulator():
    with pytest.raises(UserError, match="only used with env.simulator: batched"):
        resolve("launch/crazyflie_hover.yaml", ["env.action_rate_penalty=0.1"])
    assert "action_rate_penalty" not in resolve("launch/crazyflie_hover.yaml")["env"]


def test_train_on_the_batched_model_then_evaluate_in_pybullet(tmp_path):
    config = resolve("launch/crazyflie_hover_fast.yaml", [
        "budget.total_timesteps=256", "n_envs=16", "algo.n_steps=8", "algo.batch_size=64", "eval.episodes=1",
        "eval.every_steps=256", "checkpoint.every_steps=256", f"output_dir={tmp_path}"])
    run_dir = train(config, str(tmp_path / "run"), progress=False)
    assert os.path.isfile(os.path.join(run_dir, "final", "model.zip"))
    assert os.path.isfile(os.path.join(run_dir, "evaluations.jsonl"))  # the periodic evaluation flew PyBullet
    env = make_env_fn(config, rank=0)()
    assert type(env.unwrapped).__name__ == "QuadrotorEnv"
    model = load_sb3_model(config, os.path.join(run_dir, "final", "model.zip"), env)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    env.close()
