"""RL² policies in ``sim2real eval``: trials of the launch file's length, memory across their episodes, the
adaptation table; every RL² file kind through the one loader."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from sim2real.cli import main


def _offline_trials(config: dict, weights: str, seeds: list[int], episodes: int) -> np.ndarray:
    """(trials, episodes) returns of the RL² policy stepped by hand: one PolicyRunner, reset per trial, fed every
    reward and episode end; the trial's world sampled by ``reset(seed)`` and kept between its episodes."""
    from policies.runner import PolicyRunner
    from sim2real.env_factory import make_env_fn
    from sim2real.evaluation.conditions import condition_config

    env = make_env_fn(condition_config("train", config), rank=0)()
    runner = PolicyRunner.load(weights, deterministic=True)
    out = np.zeros((len(seeds), episodes))
    try:
        for t, seed in enumerate(seeds):
            runner.reset_trial()
            for k in range(episodes):
                obs, _ = env.reset(seed=seed) if k == 0 else env.reset(options={"randomize": False})
                done = False
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(runner.act(obs))
                    done = terminated or truncated
                    runner.observe(float(reward), done)
                    out[t, k] += float(reward)
    finally:
        env.close()
    return out


def test_eval_runs_rl2_trials_with_memory_and_reports_adaptation(tiny_rl2_run, tmp_path, capsys):
    from sim2real.launch import resolve

    out = tmp_path / "report"
    assert main(["eval", tiny_rl2_run, "--conditions", "train,heldout-dynamics", "--episodes", "3", "--videos", "0",
                 "--n-envs", "2", "--seed", "7", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "episode in trial" in printed
    report = json.loads((out / "report.json").read_text())
    config = resolve(os.path.join(tiny_rl2_run, "launch.yaml"))
    for name in ("train", "heldout-dynamics"):
        condition = report["conditions"][name]
        episodes = condition["episodes"]["run"]
        assert [(e["seed"], e["index_in_trial"]) for e in episodes] == [(s, k) for s in (7, 8, 9) for k in range(3)]
        assert [row["episode"] for row in condition["adaptation"]] == [1, 2, 3]
        for k, row in enumerate(condition["adaptation"]):
            mean = np.mean([e["return"] for e in episodes if e["index_in_trial"] == k])
            assert row["return"]["value"] == pytest.approx(mean)
    # The batched evaluation (2 envs in lockstep) plays exactly the trials a single runner plays by hand
    returns = [e["return"] for e in report["conditions"]["train"]["episodes"]["run"]]
    expected = _offline_trials(config, os.path.join(tiny_rl2_run, "checkpoint.pt"), [7, 8, 9], 3)
    np.testing.assert_allclose(returns, expected.ravel(), rtol=1e-5, atol=1e-6)
    html = (out / "report.html").read_text()
    assert "Adaptation within a trial" in html and "episode in trial" in (out / "report.md").read_text()


def test_every_rl2_file_kind_loads_through_the_one_loader(tiny_rl2_run, tmp_path):
    from policies.checkpoint import load_policy as load_weights
    from policies.export import export_policy
    from sim2real.agents import RecurrentPolicy
    from sim2real.errors import UserError
    from sim2real.launch import resolve
    from sim2real.policy_files import load_batch_policy, policy_kind

    config = resolve(os.path.join(tiny_rl2_run, "launch.yaml"))
    export = export_policy(load_weights(os.path.join(tiny_rl2_run, "checkpoint.pt"))[0], tmp_path / "export", ())
    loose = tmp_path / "loose.pt"
    shutil.copy(os.path.join(tiny_rl2_run, "checkpoint.pt"), loose)
    observation = {"observation": np.zeros(config_obs(config), np.float32), "achieved_goal": np.zeros(3, np.float32),
                   "desired_goal": np.full(3, 0.1, np.float32)}
    actions = []
    for path, launch, kind in ((tiny_rl2_run, None, "RL² run"), (str(export), config, "RL² export"),
                               (str(loose), config, "RL² checkpoint")):
        assert policy_kind(path) == kind
        policy, loaded = load_batch_policy(path, launch)
        assert isinstance(policy, RecurrentPolicy) and policy.episodes_per_trial == 3
        assert loaded["env"]["id"] == "sim2real/SO101Reach-v0"
        policy.reset_trials(1)
        actions.append(policy.act_batch([observation])[0])
    np.testing.assert_allclose(actions[0], actions[1], atol=1e-6)
    np.testing.assert_allclose(actions[0], actions[2], atol=1e-6)
    with pytest.raises(UserError, match="needs --launch"):
        load_batch_policy(str(loose), None)
    early = tmp_path / "early"  # an RL² run before its first checkpoint
    early.mkdir()
    shutil.copy(os.path.join(tiny_rl2_run, "launch.yaml"), early / "launch.yaml")
    with pytest.raises(UserError, match="an RL² run without checkpoint.pt"):
        load_batch_policy(str(early), None)


def config_obs(config: dict) -> int:
    """Size of the ``observation`` vector of the config's env."""
    from sim2real.envs import env_task

    return env_task(config["env"]["id"]).robot_observation_size


class Recorded:
    """A batch policy that records what it is given and what it answers (a deployment drives slot 0 only)."""

    def __init__(self, policy) -> None:
        self.policy, self.calls = policy, []
        self.recurrent, self.episodes_per_trial = policy.recurrent, policy.episodes_per_trial

    def reset_trials(self, n):
        self.calls.append(("reset", n))
        self.policy.reset_trials(n)

    def act_batch(self, observations):
        actions = self.policy.act_batch(observations)
        self.calls.append(("act", observations[0], actions[0]))
        return actions

    def observe_batch(self, rewards, terminated, truncated):
        self.calls.append(("observe", float(rewards[0]), bool(terminated[0]), bool(truncated[0])))
        self.policy.observe_batch(rewards, terminated, truncated)

    def goal_estimates(self):
        return None


def test_rl2_on_the_emulated_arm_keeps_memory_across_the_trial_and_gets_the_rewards(tiny_rl2_run, tmp_path):
    from policies.runner import PolicyRunner
    from sim2real.evaluation.emulated import run_emulated
    from sim2real.policy_files import load_batch_policy

    policy, config = load_batch_policy(tiny_rl2_run, None)
    recorded = Recorded(policy)
    episodes, facts = run_emulated(recorded, config, 1, 11, str(tmp_path / "emulated"),
                                   watchdog_periods=50.0)  # not about timing: a busy CI core may lag
    assert facts["trips"] == []
    assert [e.index_in_trial for e in episodes] == [0, 1, 2] and all(np.isfinite(e.episode_return) for e in episodes)
    trial = recorded.calls[[c[0] for c in recorded.calls].index("reset", 1):]  # after the loop's warm-up call
    observed = [c for c in trial if c[0] == "observe"]
    assert len(observed) == 3 * 20 and sum(c[3] for c in observed) == 3  # each episode ends truncated, once
    for k, episode in enumerate(episodes):
        assert episode.episode_return == pytest.approx(sum(c[1] for c in observed[20 * k:20 * (k + 1)]))
    # each reward is the task's for the state the next step reads (the simulator's definition): the goal distance
    # in the next observation
    from sim2real.envs import env_task

    task = env_task(config["env"]["id"], config["env"]["reward_type"])
    for before, reward, after in zip(trial, trial[1:], trial[2:]):
        if before[0] == "act" and reward[0] == "observe" and after[0] == "act" and not reward[3]:
            next_obs = after[1]
            assert reward[1] == pytest.approx(float(task.compute_reward(next_obs["achieved_goal"],
                                                                        next_obs["desired_goal"])), abs=1e-5)
    # One trial: the memory is never reset between its episodes; the same runner stepped offline on the observations
    # and rewards the loop gave answers the same actions
    runner = PolicyRunner.load(os.path.join(tiny_rl2_run, "checkpoint.pt"), deterministic=True)
    runner.reset_trial()
    assert [c[0] for c in trial].count("reset") == 1
    for call in trial[1:]:
        if call[0] == "act":
            np.testing.assert_allclose(call[2], runner.act(call[1]), atol=1e-6)
        else:
            runner.observe(call[1], call[2] or call[3])
