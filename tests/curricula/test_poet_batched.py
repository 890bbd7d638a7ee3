"""POET on the batched quadrotor model (``env.simulator: batched``): per-vehicle pinned values in the batched VecEnv,
the launch rules, each niche's agent flying its own environment, and a tiny run resumed after an interrupted
checkpoint (real numpy physics, real PPO)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import sim2real.poet_train as poet_train
from randomizers.curricula.store import HISTORY_FILE, read_history
from sim2real.cli import main
from sim2real.env_factory import make_batched_vec_env
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.train import train

LAUNCH = "launch/crazyflie_hover_poet.yaml"
LATENCY, GUST = "quadrotor.latency", "quadrotor.wind.gust_std"
# 8 vehicles, rollouts of 8 x 16 steps, 12-step episodes, every child admitted: a few seconds of numpy physics
TINY = ["budget.total_timesteps=512", "checkpoint.every_steps=256", "env.max_episode_steps=12", "n_envs=8",
        "algo.n_steps=16", "algo.batch_size=64", "algo.n_epochs=1",
        "curriculum_options.steps_per_generation=128", "curriculum_options.eval_episodes=4",
        "curriculum_options.candidates=2", "curriculum_options.mc_low=0.0", "curriculum_options.mc_high=1.0",
        "curriculum_options.solved_threshold=0.0", "curriculum_options.min_novelty=0.0",
        "curriculum_options.transfer_every=1", "curriculum_options.reproduce_every=1"]


def test_batched_env_pins_values_per_vehicle() -> None:
    config = resolve(LAUNCH, TINY)
    env = make_batched_vec_env(config)
    space = env.env_method("get_randomization_space", indices=[0])[0]
    assert {LATENCY, GUST} <= {p["name"] for p in space["params"]}
    env.env_method("set_randomization_values", {LATENCY: 0.07, GUST: 3.0}, indices=[1, 2])
    env.reset()
    assert [v[LATENCY] for v in env.values[1:3]] == [0.07, 0.07] and [v[GUST] for v in env.values[1:3]] == [3.0, 3.0]
    assert env.values[0][LATENCY] == 0.0 and env.values[0][GUST] == 1.0  # the launch file's point ranges
    assert len({v["quadrotor.mass"] for v in env.values}) == 8  # the Params not pinned stay randomized
    assert env.sim.params.latency[1] == 0.07 and env.sim.params.latency[0] == 0.0  # applied to the model
    assert env.sim.params.gust_std[2] == 3.0
    env.env_method("clear_randomization_values", indices=[1])
    env.reset()
    assert env.values[1][LATENCY] == 0.0 and env.values[2][LATENCY] == 0.07
    with pytest.raises(ValueError, match="outside hard limits"):
        env.env_method("set_randomization_values", {LATENCY: 0.5})
    with pytest.raises(ValueError, match="not a quadrotor param"):
        env.env_method("set_randomization_values", {"actuation.latency": 1})
    with pytest.raises(AttributeError):
        env.env_method("render_all")


def test_launch_rules_for_poet_on_the_batched_model() -> None:
    assert resolve(LAUNCH, TINY)["curriculum"] == "poet"
    with pytest.raises(UserError, match="curriculum: not available with env.simulator: batched"):
        resolve(LAUNCH, TINY + ["curriculum=adr", "curriculum_options={}"])
    with pytest.raises(UserError, match="curriculum: not available with env.simulator: batched"):
        resolve(LAUNCH, TINY + ["policy=rl2"])


def test_niche_agents_fly_their_own_environment_and_scores_repeat() -> None:
    config = resolve(LAUNCH, TINY)
    agent = poet_train.Sb3Agent(config, {LATENCY: 0.05, GUST: 0.0}, rank=2)
    assert all(v[LATENCY] == 0.05 and v[GUST] == 0.0 for v in agent.env.values)
    agent.train(128)
    assert agent.steps == 128
    first = poet_train.batched_successes(config, agent.model, {LATENCY: 0.05, GUST: 0.0}, 5, 300_000)
    again = poet_train.batched_successes(config, agent.model, {LATENCY: 0.05, GUST: 0.0}, 5, 300_000)
    assert len(first) == 5 and first == again
    evaluation = poet_train.pinned_batched_env(config, {LATENCY: 0.03}, 300_000, 3)
    assert evaluation.num_envs == 3 and all(v[LATENCY] == 0.03 for v in evaluation.values)
    with pytest.raises(UserError, match="outside hard limits"):
        poet_train.pinned_batched_env(config, {GUST: 9.0}, 0, 2)


def test_batched_poet_run_resumes_after_an_interrupted_checkpoint(tmp_path, monkeypatch, capsys,
                                                                  poet_checkpoint_interrupted) -> None:
    run_dir = str(tmp_path / "run")
    config = resolve(LAUNCH, TINY)
    calls = poet_checkpoint_interrupted
    with pytest.raises(KeyboardInterrupt):
        train(config, run_dir=run_dir, progress=False)
    monkeypatch.undo()
    assert len(calls) == 2  # one complete checkpoint, then the kill
    capsys.readouterr()
    assert main(["train", "--resume", run_dir]) == 0
    assert "resuming" in capsys.readouterr().out
    final = json.load(open(os.path.join(run_dir, "final", "poet.json")))
    assert final["timesteps"] >= 512 and len(final["population"]) >= 2
    records = read_history(os.path.join(run_dir, HISTORY_FILE))
    generations = [r["generation"] for r in records if r["event"] == "generation"]
    assert generations == list(range(len(generations)))
    # every score is eval_episodes vehicles of the batched model: the budget counts 4 per (agent, environment)
    assert final["evaluation_episodes"] % 4 == 0 and final["evaluation_episodes"] > 0
    latencies = {round(n["values"][LATENCY], 6) for n in final["population"] + final["archive"]}
    assert len(latencies) >= 2 and np.all(np.array(sorted(latencies)) <= 0.2)
    assert os.path.isfile(os.path.join(run_dir, "final", "model.zip"))


def test_root_agent_starts_from_given_weights(tmp_path, capsys) -> None:
    import torch

    config = resolve(LAUNCH, TINY)
    donor = poet_train.Sb3Agent(config, {LATENCY: 0.0}, rank=5)
    donor.train(128)
    donor.save(str(tmp_path / "donor"))
    path = str(tmp_path / "donor" / "model.zip")
    config["curriculum_options"]["root_agent"] = path
    assert poet_train.root_agent(config) == path
    root = poet_train.Sb3Agent(config, {LATENCY: 0.0}, rank=0, init=path)
    fresh = poet_train.Sb3Agent(config, {LATENCY: 0.0}, rank=0)
    given, own = donor.model.policy.state_dict(), root.model.policy.state_dict()
    assert root.steps == 0 and all(torch.equal(given[k], own[k]) for k in given)
    assert not all(torch.equal(given[k], v) for k, v in fresh.model.policy.state_dict().items())
    assert main(["train", LAUNCH, *TINY, f"curriculum_options.root_agent={tmp_path / 'none.zip'}",
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "root_agent" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
