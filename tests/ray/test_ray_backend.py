"""The Ray backend on a real two-node cluster (loopback): VecEnv semantics against SB3's DummyVecEnv, an actor
killed mid-run, SB3 and RL² trainings, evaluation equal to the local one, and a seed sweep."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from sim2real.env_factory import make_env_fn
from sim2real.launch import resolve

STRENGTH = "dynamics.actuator.strength"
RANDOMIZED = [f"randomizers=[{{group: dynamics, params: [{{name: {STRENGTH}, range: [0.8, 1.2]}}]}}]"]


def _config(cluster, *overrides: str) -> dict:
    return resolve("so101_reach", ["backend=ray", f"ray.address={cluster.address}", "n_envs=4", "ray.num_actors=2",
                                   "env.max_episode_steps=4", *RANDOMIZED, *overrides])


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


@pytest.fixture(scope="module")
def vec_pair(loopback_cluster):
    """The same 4 randomized envs in 2 Ray actors (one per node) and in a DummyVecEnv."""
    from sim2real.ray_backend.vec_env import ray_vec_env

    config = _config(loopback_cluster, "ray.cpus_per_actor=0")  # leaves the nodes' CPUs to the trainings below
    vec = ray_vec_env(config)
    reference = DummyVecEnv([make_env_fn(config, rank) for rank in range(4)])
    reference.seed(config["seed"])
    yield vec, reference
    vec.close()
    reference.close()


def test_actors_hold_blocks_of_envs_on_both_nodes(vec_pair, loopback_cluster):
    vec, _ = vec_pair
    assert [list(b) for b in vec.blocks] == [[0, 1], [2, 3]]
    # SPREAD is best effort for actors that reserve no CPU (cpus_per_actor 0 here): both live on cluster nodes
    assert vec.pool.nodes() and set(vec.pool.nodes()) <= set(loopback_cluster.nodes)


def test_reset_step_and_auto_reset_match_dummy_vec_env(vec_pair):
    vec, reference = vec_pair
    vec.seed(7)
    reference.seed(7)
    assert _equal(vec.reset(), reference.reset())
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(9):  # episodes of 4 steps: two auto-resets per env
        actions = rng.uniform(-1, 1, (4, *vec.action_space.shape)).astype(np.float32)
        obs, rewards, dones, infos = vec.step(actions)
        ref_obs, ref_rewards, ref_dones, ref_infos = reference.step(actions)
        assert _equal(obs, ref_obs)
        np.testing.assert_allclose(rewards, ref_rewards)
        assert np.array_equal(dones, ref_dones)
        for info, ref in zip(infos, ref_infos):
            assert info["TimeLimit.truncated"] == ref["TimeLimit.truncated"]
            assert ("terminal_observation" in info) == ("terminal_observation" in ref)
            if "terminal_observation" in ref:
                ends += 1
                assert _equal(info["terminal_observation"], ref["terminal_observation"])
    assert ends == 8
    vec.set_options({"randomize": True})  # options, like seeds, are used by the next reset only
    assert vec._options == [{"randomize": True}] * 4
    vec.reset()
    assert vec._options == [{}] * 4 and vec._seeds == [None] * 4


def test_env_method_get_attr_set_attr_follow_indices(vec_pair):
    vec, reference = vec_pair
    assert vec.get_attr("spec", [3, 0])[0].id == "sim2real/SO101Reach-v0"
    space = vec.env_method("get_randomization_space", indices=[2])[0]
    assert space == reference.env_method("get_randomization_space", indices=[2])[0]
    vec.set_attr("sweep_marker", 5, indices=[1, 2])
    assert vec.get_attr("sweep_marker", [2, 1]) == [5, 5]
    assert vec.has_attr("spec") and not vec.has_attr("no_such_attribute")
    assert vec.env_is_wrapped(Monitor) == [True] * 4
    with pytest.raises(Exception, match="no_such_method"):
        vec.env_method("no_such_method", indices=[0])


def test_killed_actor_is_restarted_with_its_pinned_values(vec_pair, capsys):
    vec, _ = vec_pair
    vec.env_method("set_randomization_values", {STRENGTH: 1.15}, indices=[3])
    obs = vec.reset()
    node, pid = vec.actor_processes()[1]
    os.kill(pid, signal.SIGKILL)
    actions = np.zeros((4, *vec.action_space.shape), np.float32)
    _, rewards, dones, infos = vec.step(actions)
    assert dones.tolist() == [False, False, True, True] and rewards[2:].tolist() == [0.0, 0.0]
    assert all(infos[i]["actor_restarted"] and infos[i]["TimeLimit.truncated"] for i in (2, 3))
    assert _equal(infos[3]["terminal_observation"], {k: v[3] for k, v in obs.items()})
    assert vec.pool.restarts == [0, 1] and vec.actor_processes()[1][1] != pid
    assert vec.reset_infos[3]["randomization"][STRENGTH] == pytest.approx(1.15)  # applied again after restart
    assert "env actor 1 (envs 2-3)" in capsys.readouterr().err
    _, _, dones, infos = vec.step(actions)  # the run goes on
    assert not dones.any()


@pytest.fixture(scope="module")
def ppo_run(loopback_cluster, tmp_path_factory):
    """A tiny PPO run on both nodes; an env actor is killed once the first checkpoint is written."""
    import sim2real.ray_backend.vec_env as ray_vec
    from sim2real.train import train

    root = tmp_path_factory.mktemp("ray_ppo")
    config = resolve("so101_reach", [
        "backend=ray", f"ray.address={loopback_cluster.address}", "ray.num_actors=2", "n_envs=2", "algo.name=ppo",
        "algo.n_steps=64", "algo.batch_size=64", "algo.n_epochs=1", "algo.net_arch=[16,16]", "env.max_episode_steps=20",
        "budget.total_timesteps=512", "checkpoint.every_steps=128", "eval.every_steps=100000"])
    made = []
    original = ray_vec.ray_vec_env

    def recording(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    def kill_after_first_checkpoint() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (root / "run" / "checkpoints" / "LATEST").exists():
            time.sleep(0.05)
        if made:
            os.kill(made[0].actor_processes()[0][1], signal.SIGKILL)

    ray_vec.ray_vec_env = recording
    killer = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    killer.start()
    try:
        run_dir = train(config, run_dir=str(root / "run"), progress=False)
    finally:
        ray_vec.ray_vec_env = original
    killer.join(timeout=5)
    return run_dir, made[0]


def test_ppo_trains_on_two_nodes_and_survives_a_killed_actor(ppo_run, loopback_cluster):
    from sim2real.checkpoints import checkpoint_step, newest_checkpoint

    run_dir, vec = ppo_run
    assert vec.pool.restarts == [1, 0]
    assert len(set(vec.pool.nodes())) == 2  # one actor per node (each node has one CPU)
    assert checkpoint_step(newest_checkpoint(run_dir)) == 512
    assert os.path.isfile(os.path.join(run_dir, "final", "model.zip"))
    assert vec.closed


def test_ray_evaluation_reproduces_the_local_report(ppo_run, loopback_cluster, tmp_path, capsys):
    from sim2real.evaluation.command import run_eval
    from sim2real.evaluation.run import EvalSettings

    run_dir, _ = ppo_run
    reports = {}
    for backend in ("local", "ray"):
        settings = EvalSettings(["train", "heldout-dynamics"], episodes=3, n_envs=2, videos=0, backend=backend,
                                ray_address=loopback_cluster.address)
        _, summary = run_eval([run_dir], None, settings, str(tmp_path / backend))
        reports[backend] = summary["conditions"]
    assert reports["ray"] == reports["local"]
    assert len(reports["ray"]["train"]["episodes"]["run"]) == 3
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("ray: evaluation chunks")][-1]
    assert all(node in line for node in loopback_cluster.nodes)


def test_rl2_trains_with_trial_envs_in_actors(loopback_cluster, tmp_path, capsys):
    from sim2real.train import train

    config = resolve(None, ["env.id=sim2real/SO101Reach-v0", "env.reward_type=dense", "env.max_episode_steps=20",
                            "policy=rl2", *RANDOMIZED, "rl2={episodes_per_trial: 3, rollout_steps: 60, seq_len: 20, "
                            "num_minibatches: 1, epochs: 1, network: {hidden_size: 16, embed_size: 16}}",
                            "backend=ray", f"ray.address={loopback_cluster.address}", "n_envs=2",
                            "budget.total_timesteps=120"])
    run_dir = train(config, run_dir=str(tmp_path / "run"), progress=False)
    assert os.path.isfile(os.path.join(run_dir, "checkpoint.pt"))
    progress = [json.loads(line) for line in open(os.path.join(run_dir, "progress.jsonl"), encoding="utf-8")]
    assert progress[-1]["global_step"] == 120
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("ray: 2 trial envs in 2 actors on ")]
    assert all(node in line for node in loopback_cluster.nodes), line


def test_seed_sweep_runs_as_tasks_with_one_summary(loopback_cluster, tmp_path):
    from sim2real.ray_backend.sweep import plan, run_sweep

    launch = tmp_path / "tiny.yaml"
    launch.write_text("name: tiny\nenv: {id: sim2real/SO101Reach-v0, max_episode_steps: 10}\n"
                      "algo: {name: ppo, n_steps: 32, batch_size: 32, n_epochs: 1, net_arch: [16, 16]}\n"
                      "n_envs: 1\nbudget: {total_timesteps: 64}\neval: {every_steps: 100000}\n"
                      "checkpoint: {every_steps: 64}\n", encoding="utf-8")
    points = plan(str(launch), ["seed=0,1", "algo.learning_rate=1e-3"], str(tmp_path / "sweep"))
    summary = run_sweep(points, str(tmp_path / "sweep"), 2, loopback_cluster.address)
    (group,) = summary["groups"]
    assert group["overrides"] == "algo.learning_rate=1e-3" and group["seeds"] == [0, 1]
    assert sorted(group["nodes"]) == sorted(loopback_cluster.nodes)
    for run_dir in group["run_dirs"]:
        assert os.path.isfile(os.path.join(run_dir, "final", "model.zip"))
        assert json.load(open(os.path.join(run_dir, "eval.json"), encoding="utf-8"))["episodes"] == 2
    rates = group["success_per_seed"]
    assert group["success"]["value"] == pytest.approx(np.mean(rates))
    assert os.path.isfile(tmp_path / "sweep" / "sweep.md")


def test_rl2_with_pipelined_actors_trains_the_same_weights_as_in_process(loopback_cluster, tmp_path, capsys):
    """Two actors, one per env half: the trainer computes one half's actions while the other half's actor steps
    (``step_async``/``step_wait``), and the weights equal an in-process run's (env ``i`` seeded ``seed + i``)."""
    import torch

    from sim2real.ray_backend.trial_vec_env import RayTrialVecEnv
    from sim2real.train import train

    common = ["env.id=sim2real/SO101Reach-v0", "env.reward_type=dense", "env.max_episode_steps=10", "policy=rl2",
              *RANDOMIZED, "rl2={episodes_per_trial: 2, rollout_steps: 20, seq_len: 10, num_minibatches: 1, "
              "epochs: 1, network: {hidden_size: 8, embed_size: 8}}", "n_envs=4", "budget.total_timesteps=160"]
    stepped = []
    original = RayTrialVecEnv.step_async

    def counting(self, stage, action):
        stepped.append(stage)
        return original(self, stage, action)

    RayTrialVecEnv.step_async = counting
    try:
        ray_run = train(resolve(None, [*common, "backend=ray", f"ray.address={loopback_cluster.address}",
                                       "ray.num_actors=2", "ray.cpus_per_actor=0"]),
                        run_dir=str(tmp_path / "ray"), progress=False)
    finally:
        RayTrialVecEnv.step_async = original
    local_run = train(resolve(None, [*common, "rl2.workers=0"]), run_dir=str(tmp_path / "local"), progress=False)
    assert stepped[:4] == [0, 1, 0, 1]  # both halves in flight in turn: the pipelined path ran
    ray_weights, local_weights = (torch.load(os.path.join(run, "checkpoint.pt"), weights_only=True)["model"]
                                  for run in (ray_run, local_run))
    assert ray_weights.keys() == local_weights.keys()
    assert all(torch.equal(ray_weights[k], local_weights[k]) for k in ray_weights)
