"""``sim2real train`` with ``curriculum: poet`` (tiny real runs in PyBullet): SB3 and RL² agents, resume after a
checkpoint write interrupted half-way, the plot, and the frontier agent loadable as the run's policy."""
from __future__ import annotations

import json
import os

import pytest
import yaml

import sim2real.poet_train as poet_train
from randomizers.curricula.store import HISTORY_FILE, read_history
from sim2real.checkpoints import CHECKPOINTS, STAGING_PREFIX
from sim2real.cli import main
from sim2real.launch import resolve
from sim2real.poet_plot import poet_series
from sim2real.train import train

# every child passes the criterion (bounds 0..1, threshold 0): admission, agents for new niches and transfers all
# run within a few hundred steps; quality does not matter here
TINY = ["budget.total_timesteps=300", "checkpoint.every_steps=100", "env.max_episode_steps=10",
        "algo.learning_starts=50", "algo.batch_size=32", "algo.net_arch=[32,32]", "algo.buffer_size=1000",
        "curriculum_options.steps_per_generation=100", "curriculum_options.eval_episodes=2",
        "curriculum_options.candidates=2", "curriculum_options.mc_low=0.0", "curriculum_options.mc_high=1.0",
        "curriculum_options.solved_threshold=0.0", "curriculum_options.min_novelty=0.0",
        "curriculum_options.transfer_every=1", "curriculum_options.reproduce_every=1"]


RL2_POET = {  # RL² agents, one-iteration chunks of 60 steps, trials of 3 episodes
    "name": "tiny_poet_rl2", "n_envs": 1, "seed": 0, "policy": "rl2",
    "env": {"id": "sim2real/SO101Reach-v0", "reward_type": "dense", "max_episode_steps": 20},
    "randomizers": [{"group": "dynamics", "params": [
        {"name": "dynamics.actuator.strength", "range": [1.0, 1.0], "hard_limits": [0.3, 1.0]}]}],
    "rl2": {"episodes_per_trial": 3, "rollout_steps": 60, "seq_len": 20, "num_minibatches": 1, "epochs": 1,
            "network": {"hidden_size": 16, "embed_size": 16}},
    "curriculum": "poet",
    "curriculum_options": {"params": ["dynamics.actuator.strength"], "steps_per_generation": 60,
                           "eval_episodes": 1, "candidates": 1, "mc_low": 0.0, "solved_threshold": 0.0,
                           "min_novelty": 0.0, "transfer_every": 1},
    "budget": {"total_timesteps": 240}, "checkpoint": {"every_steps": 120}}


def _generations(run_dir: str) -> list[int]:
    return [r["generation"] for r in read_history(os.path.join(run_dir, HISTORY_FILE))
            if r["event"] == "generation"]


def test_sb3_poet_run_resumes_after_an_interrupted_checkpoint(tmp_path, monkeypatch, capsys,
                                                              poet_checkpoint_interrupted) -> None:
    run_dir = str(tmp_path / "run")
    config = resolve("launch/so101_reach_poet.yaml", TINY)
    calls = poet_checkpoint_interrupted
    with pytest.raises(KeyboardInterrupt):
        train(config, run_dir=run_dir, progress=False)
    monkeypatch.undo()
    assert len(calls) == 2  # one complete checkpoint, then the kill
    saved = json.load(open(os.path.join(run_dir, CHECKPOINTS, f"step-{calls[0]}", "curriculum.json")))
    with open(os.path.join(run_dir, HISTORY_FILE), "a") as handle:
        handle.write('{"event": "generation", "generation": 9')  # a torn last line
    capsys.readouterr()

    assert main(["train", "--resume", run_dir]) == 0
    assert "resuming" in capsys.readouterr().out and not any(
        n.startswith(STAGING_PREFIX) for n in os.listdir(os.path.join(run_dir, CHECKPOINTS)))
    generations = _generations(run_dir)
    assert generations == list(range(len(generations)))  # the rewound history has each generation once
    assert generations[saved["state"]["generation"] - 1] == saved["state"]["generation"] - 1
    final = json.load(open(os.path.join(run_dir, "final", "poet.json")))
    assert final["timesteps"] == 300 and final["generations"] == len(generations)
    niches = final["population"] + final["archive"]
    assert len(niches) >= 2 and final["evaluation_episodes"] > 0
    assert set(poet_series(read_history(os.path.join(run_dir, HISTORY_FILE)))["niches"]) == {n["id"] for n in niches}
    newest = sorted(os.listdir(os.path.join(run_dir, CHECKPOINTS, "step-300", "agents")))
    assert newest == sorted(f"niche-{n['id']}" for n in final["population"])

    out = tmp_path / "poet.png"
    assert main(["curriculum", "plot", run_dir, "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"

    from sim2real.policy_files import load_batch_policy, policy_kind

    assert policy_kind(run_dir) == "SB3 run"
    policy, _ = load_batch_policy(run_dir, None)
    assert policy.act_batch([poet_train.PinnedEnv(config, {}, 0)().reset(seed=0)[0]]).shape == (1, 3)


def test_rl2_poet_run(tmp_path) -> None:
    launch = tmp_path / "launch.yaml"
    launch.write_text(yaml.safe_dump(RL2_POET), encoding="utf-8")
    run_dir = train(resolve(str(launch)), run_dir=str(tmp_path / "run"), progress=False)
    final = json.load(open(os.path.join(run_dir, "final", "poet.json")))
    assert final["timesteps"] == 240 and len(final["population"]) >= 2
    agents = os.listdir(os.path.join(run_dir, CHECKPOINTS, "step-240", "agents"))
    assert all(os.path.isfile(os.path.join(run_dir, CHECKPOINTS, "step-240", "agents", a, "checkpoint.pt"))
               for a in agents)
    from sim2real.policy_files import policy_kind

    assert policy_kind(run_dir) == "RL² run"


def test_poet_launch_errors_are_one_line(tmp_path, capsys) -> None:
    for override, expected in (("curriculum_options.params=[dynamics.link.mass]", "'dynamics.link.mass'"),
                               ("curriculum_options.mc_high=1.5", "'mc_high'"),
                               ("curriculum_options.population=3", "'population'")):
        assert main(["train", "launch/so101_reach_poet.yaml", override, "--run-dir", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "r")
