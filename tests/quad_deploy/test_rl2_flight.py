"""An RL² policy flown through the quadcopter emulators: the loop feeds the task's reward and episode ends to the
policy's memory, as in training, and the flight ends with a landing."""
from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from quad_support import REALITIES
from sim2real.cli import main
from sim2real.deploy.log import read_log

LAB = {"crazyflie": "crazyflie_lab.yaml", "mavlink": "quad_px4_crazyflie.yaml"}
STEPS = 24  # per episode: 0.5 s at 48 Hz


@pytest.fixture(scope="module")
def tiny_rl2_hover(tmp_path_factory) -> str:
    """An RL² Crazyflie CTBR hover run trained for one 48-step iteration (trials of 2 episodes of 24 steps): it
    need not hover well, it only has to fly briefly."""
    run = tmp_path_factory.mktemp("rl2_hover") / "run"
    smoke = ["budget.total_timesteps=48", "rl2.rollout_steps=48", "rl2.seq_len=24", "rl2.num_minibatches=1",
             "rl2.epochs=1", "rl2.network.hidden_size=16", "rl2.network.embed_size=16", "n_envs=1",
             f"env.max_episode_steps={STEPS}"]
    assert main(["train", "crazyflie_hover_rl2", *smoke, "--run-dir", str(run)]) == 0
    return str(run)


@pytest.mark.parametrize("kind", ["crazyflie", "mavlink"])
def test_rl2_flight_feeds_the_tasks_reward_and_episode_ends_and_lands(kind, tiny_rl2_hover, quad_emulator, tmp_path):
    from policies.runner import PolicyRunner
    from sim2real.tasks.quadrotor import step_reward

    em = quad_emulator(kind, **yaml.safe_load(open(os.path.join(REALITIES, LAB[kind]))))
    log = tmp_path / "log.jsonl"
    link = ["--uri", em.uri] if kind == "crazyflie" else ["--url", em.url]
    code = main(["deploy", tiny_rl2_hover, "--driver", kind, *link, "--episodes", "2", "--steps", str(STEPS),
                 "--log", str(log), "--stale-periods", "6", "--overrun-periods", "20"])  # reward feeding, not timing
    records = read_log(str(log))
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    rewards = [r for r in records if r["type"] == "reward"]
    assert code == 0, [r for r in records if r["type"] == "event"]
    assert [r for r in records if r["type"] == "event"][-1]["landed"]
    # one reward per action, the episode's last one flagged truncated (the end of an episode of the trial)
    assert [(r["episode"], r["step"]) for r in rewards] == [(s["episode"], s["step"]) for s in steps]
    assert [r["truncated"] for r in rewards] == [s["step"] == STEPS - 1 for s in steps]
    # each reward is the task's reward for the state the next step measured (the simulator's definition)
    for reward, after in zip(rewards, steps[1:]):
        if after["step"] == 0:
            continue
        distance = np.linalg.norm(np.asarray(after["reference"]) - np.asarray(after["position"]))
        assert reward["reward"] == pytest.approx(step_reward(distance, after["body_rates"], 1.0, "dense"), abs=1e-6)
    # the flown actions are those of the RL² runner stepped offline on the logged observations and rewards
    runner = PolicyRunner.load(os.path.join(tiny_rl2_hover, "checkpoint.pt"), deterministic=True)
    runner.reset_trial()
    for step, reward in zip(steps, rewards):
        action = np.clip(runner.act(np.asarray(step["observation"], np.float32)), -1.0, 1.0)
        np.testing.assert_allclose(step["action"], action, atol=1e-5)
        runner.observe(reward["reward"], reward["truncated"])


def test_eval_runs_a_quadrotor_rl2_policy_under_train_and_wider_quadrotor_dynamics(tiny_rl2_hover, tmp_path):
    import json

    out = tmp_path / "report"
    assert main(["eval", tiny_rl2_hover, "--conditions", "train,heldout-dynamics", "--episodes", "2", "--videos", "1",
                 "--n-envs", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    train_ranges = {p["name"]: p["range"] for e in report["conditions"]["train"]["facts"]["randomizers"]
                    for p in e["params"]}
    wide = report["conditions"]["heldout-dynamics"]["facts"]["dynamics_ranges"]
    assert set(wide) >= set(train_ranges) and all(name.startswith("quadrotor.") for name in wide)
    mass = train_ranges["quadrotor.mass"]
    assert wide["quadrotor.mass"][0] < mass[0] and wide["quadrotor.mass"][1] > mass[1]
    for name in ("train", "heldout-dynamics"):
        condition = report["conditions"][name]
        assert [row["episode"] for row in condition["adaptation"]] == [1, 2]
        assert all(np.isfinite(e["final_distance"]) for e in condition["episodes"]["run"])
