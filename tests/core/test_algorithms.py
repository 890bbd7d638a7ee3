"""Any stable-baselines3 algorithm from a launch file: algo.kwargs passed through, algorithm switched by override,
VecNormalize statistics stored as JSON (never pickled) and applied by eval and deploy."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from sim2real.cli import main
from sim2real.errors import UserError
from sim2real.launch import resolve

REACH = "env:\n  id: sim2real/SO101Reach-v0\n  reward_type: dense\n  max_episode_steps: 20\nn_envs: 1\n"
TINY = ["algo.net_arch=[16]", "eval.episodes=1", "eval.every_steps=1000", "checkpoint.every_steps=1000"]


def _launch(tmp_path, text: str = REACH) -> str:
    path = tmp_path / "launch.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("algo,kwargs,attribute,value,extra", [
    ("a2c", "{n_steps: 8, gae_lambda: 0.9}", "n_steps", 8, []),
    ("td3", "{policy_delay: 3, target_policy_noise: 0.1}", "policy_delay", 3, ["algo.batch_size=16"]),
    # DDPG records TD3's policy classes in its zip: the loader still takes it for what it is
    ("ddpg", "{optimize_memory_usage: false}", "optimize_memory_usage", False, ["algo.batch_size=16"]),
])
def test_algorithm_trains_with_kwargs_and_the_loader_evaluates_it(tmp_path, capsys, algo, kwargs, attribute, value,
                                                                   extra):
    from sim2real.policy_files import load_batch_policy

    run = tmp_path / "run"
    off_policy = ["algo.learning_starts=40"] if algo != "a2c" else []
    assert main(["train", _launch(tmp_path), f"algo.name={algo.upper()}", f"algo.kwargs={kwargs}", *TINY,
                 *off_policy, *extra, "budget.total_timesteps=80", "--run-dir", str(run)]) == 0
    recorded = resolve(str(run / "launch.yaml"))
    assert recorded["algo"]["name"] == algo and recorded["algo"]["kwargs"] == resolve(
        _launch(tmp_path), [f"algo.name={algo}", f"algo.kwargs={kwargs}"])["algo"]["kwargs"]
    policy, _ = load_batch_policy(str(run), None)
    assert getattr(policy.model, attribute) == value and type(policy.model).__name__ == algo.upper()
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "success rate" in capsys.readouterr().out


def test_override_switches_an_off_policy_launch_file_to_ppo_with_one_note(tmp_path, capsys):
    run = tmp_path / "ppo"
    assert main(["train", "launch/panda_reach.yaml", "algo.name=PPO", "algo.n_steps=32", "algo.batch_size=32",
                 "algo.n_epochs=1", "n_envs=1", *TINY, "budget.total_timesteps=32", "--run-dir", str(run)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "algo.her" in notes[0] and "algo.learning_starts" in notes[0]
    recorded = resolve(str(run / "launch.yaml"))["algo"]
    assert recorded["name"] == "ppo" and "her" not in recorded and "learning_starts" not in recorded
    assert (run / "final" / "model.zip").is_file()


@pytest.mark.parametrize("overrides,fragment", [
    (["algo.name=ppo", "algo.her=true"], "algo.her does not apply to ppo"),  # set together: a mistake
    (["algo.kwargs={warp_speed: 9}"], "algo.kwargs.warp_speed: not an argument of stable-baselines3 SAC"),
    (["algo.kwargs={learning_rate: 0.1}"], "set algo.learning_rate instead"),
    (["algo.kwargs={action_noise: 0.1}"], "needs a Python object"),
    (["algo.name=dqn"], "choose from: ppo, a2c, sac, td3, ddpg"),
    (["normalize.obs=yes please"], "normalize.obs: expected bool"),
])
def test_algorithm_mistakes_are_one_line(overrides, fragment):
    with pytest.raises(UserError) as err:
        resolve("launch/panda_reach.yaml", overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_value_sb3_refuses_is_one_line_at_exit_2(tmp_path, capsys):
    assert main(["train", _launch(tmp_path), "algo.kwargs={ent_coef: lots}", *TINY, "algo.learning_starts=40",
                 "budget.total_timesteps=80", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SAC refused these settings" in err[0] and "ent_coef" in err[0]


def test_normalized_run_stores_json_statistics_and_eval_applies_them(tmp_path, capsys):
    from sim2real.policy_files import load_batch_policy
    from sim2real.train import latest_checkpoint
    from sim2real.vec_normalize import STATS_FILE, restore_statistics, wrap
    from sim2real.train import make_vec_env

    run = tmp_path / "norm"
    assert main(["train", _launch(tmp_path), "normalize.obs=true", "normalize.reward=true", "algo.batch_size=16",
                 "algo.learning_starts=40", *TINY[:2], "eval.every_steps=60", "checkpoint.every_steps=60",
                 "budget.total_timesteps=120", "--run-dir", str(run)]) == 0
    stats = json.loads((run / "final" / STATS_FILE).read_text())
    assert stats["norm_obs"] and stats["norm_reward"] and stats["return"]["count"] > 100
    assert set(stats["obs"]) == {"observation", "achieved_goal", "desired_goal"}  # every vector key of the dict
    assert not [f for _, _, files in os.walk(run) for f in files if f.endswith((".pkl", ".pickle"))]
    checkpoint = latest_checkpoint(str(run))
    assert os.path.isfile(os.path.join(checkpoint, STATS_FILE))

    config = resolve(str(run / "launch.yaml"))
    vec = wrap(make_vec_env(config, 1), config)  # a resumed run restores the checkpoint's statistics
    try:
        restore_statistics(vec, checkpoint)
        saved = json.loads(open(os.path.join(checkpoint, STATS_FILE)).read())
        assert np.allclose(vec.obs_rms["desired_goal"].mean, saved["obs"]["desired_goal"]["mean"])
        assert vec.ret_rms.count == saved["return"]["count"]
    finally:
        vec.close()

    policy, _ = load_batch_policy(str(run), None)
    obs = {"observation": np.ones(policy.model.observation_space["observation"].shape, np.float32),
           "achieved_goal": np.zeros(3, np.float32), "desired_goal": np.full(3, 0.2, np.float32)}
    mean, var = (np.asarray(stats["obs"]["desired_goal"][k]) for k in ("mean", "var"))
    expected = np.clip((0.2 - mean) / np.sqrt(var + stats["epsilon"]), -10, 10)
    assert np.allclose(policy.normalize({k: v[None] for k, v in obs.items()})["desired_goal"][0], expected,
                       atol=1e-6)
    raw, _ = policy.model.predict({k: v[None] for k, v in obs.items()}, deterministic=True)
    normalized, _ = policy.model.predict(policy.normalize({k: v[None] for k, v in obs.items()}), deterministic=True)
    assert np.allclose(policy.act_batch([obs]), normalized) and not np.allclose(raw, normalized)
    capsys.readouterr()
    assert main(["eval", str(run), "--conditions", "train", "--episodes", "2", "--videos", "0", "--out",
                 str(tmp_path / "report")]) == 0


def test_missing_or_forged_statistics_are_one_line(tmp_path, capsys):
    from sim2real.policy_files import load_batch_policy

    run = tmp_path / "norm"
    assert main(["train", _launch(tmp_path), "normalize.obs=true", "algo.batch_size=16", "algo.learning_starts=40",
                 *TINY, "budget.total_timesteps=60", "--run-dir", str(run)]) == 0
    stats = run / "final" / "vecnormalize.json"
    forged = json.loads(stats.read_text())
    forged["obs"]["observation"]["var"][0] = -1.0
    stats.write_text(json.dumps(forged))
    with pytest.raises(UserError, match="not normalization statistics written by sim2real"):
        load_batch_policy(str(run), None)
    stats.write_text('{"py/object": "os.system"}')
    with pytest.raises(UserError, match="not normalization statistics"):
        load_batch_policy(str(run), None)
    stats.unlink()
    shutil.rmtree(run / "checkpoints")
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sets normalize.obs, and there is no vecnormalize.json" in err[0]
