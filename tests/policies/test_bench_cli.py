"""``sim2real bench rl2-bandits|rl2-mdp``: train → zoo → --eval-only, and one-line user errors."""
from __future__ import annotations

import json
import re

import pytest

from sim2real.cli import main


def test_train_then_eval_only_from_the_zoo(tmp_path, capsys):
    common = ["--configs", "3x2", "--trials", "40", "--zoo", str(tmp_path / "zoo"), "--skip-baselines"]
    assert main(["bench", "rl2-bandits", *common, "--steps", "2000", "--run-dir", str(tmp_path / "runs")]) == 0
    card = json.loads((tmp_path / "zoo" / "bandit_n3_k2.json").read_text())
    assert card["env_steps"] >= 2000 and card["train_wall_time_s"] > 0 and card["seed"] == 0
    out = tmp_path / "res.json"
    assert main(["bench", "rl2-bandits", *common, "--eval-only", "--json", str(out)]) == 0
    res = json.loads(out.read_text())["bandit_n3_k2"]["results"]
    assert 0.0 <= res["RL2"]["mean"] <= 3.0 and res["RL2"]["se"] > 0
    assert "RL2" in capsys.readouterr().out
    assert main(["bench", "rl2-bandits", *common, "--configs", "6x2", "--policy-of", "3x2", "--eval-only",
                 "--json", str(out)]) == 0  # the 3-pull policy on 6-pull trials
    longer = json.loads(out.read_text())["bandit_n6_k2"]
    assert longer["policy"] == "bandit_n3_k2" and 0.0 <= longer["results"]["RL2"]["mean"] <= 6.0
    assert "policy of n=3" in capsys.readouterr().out


def test_envs_overrides_the_recipes_parallel_trials(tmp_path):
    zoo = tmp_path / "zoo"
    assert main(["bench", "rl2-bandits", "--configs", "3x2", "--trials", "10", "--zoo", str(zoo), "--skip-baselines",
                 "--steps", "500", "--envs", "12", "--run-dir", str(tmp_path / "runs")]) == 0
    card = json.loads((zoo / "bandit_n3_k2.json").read_text())
    assert card["config"]["num_envs"] == 12 and card["command"].endswith("--envs 12")


def test_task_critic_trains_an_asymmetric_policy_whose_actor_runs_without_the_task(tmp_path):
    common = ["--configs", "2", "--trials", "8", "--zoo", str(tmp_path / "zoo"), "--skip-baselines"]
    assert main(["bench", "rl2-mdp", *common, "--steps", "800", "--envs", "16", "--task-critic",
                 "--run-dir", str(tmp_path / "runs")]) == 0
    card = json.loads((tmp_path / "zoo" / "mdp_n2.json").read_text())
    assert card["config"]["network"]["critic_keys"] == ["task"] and card["command"].endswith("--task-critic")
    out = tmp_path / "res.json"  # --eval-only builds the plain env: the exported actor needs no task key
    assert main(["bench", "rl2-mdp", *common, "--eval-only", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mdp_n2"]["results"]["RL2"]["se"] > 0
    longer = ["--configs", "3", "--trials", "8", "--zoo", str(tmp_path / "zoo"), "--skip-baselines", "--steps", "480",
              "--envs", "16", "--run-dir", str(tmp_path / "runs")]  # a curriculum over trial length: 2 → 3 episodes
    warm = [*longer, "--task-critic", "--init-from", str(tmp_path / "zoo" / "mdp_n2.pt"), "--lr", "0.0005",
            "--critic-warmup", "240", "--gamma", "0.995"]
    assert main(["bench", "rl2-mdp", *warm]) == 0
    card = json.loads((tmp_path / "zoo" / "mdp_n3.json").read_text())
    assert card["config"]["init_from"].endswith("mdp_n2.pt") and card["config"]["learning_rate"] == 0.0005
    assert card["config"]["critic_warmup_steps"] == 240 and card["config"]["gamma"] == 0.995
    assert card["command"].endswith(f"--task-critic --init-from {tmp_path / 'zoo' / 'mdp_n2.pt'} --lr 0.0005 "
                                    "--gamma 0.995 --critic-warmup 240")


@pytest.mark.parametrize("weights,message", [
    ("trained", "init_from: .*observation/action spaces"),  # trained with the task critic's inputs, run without
    ("missing", "init_from: policy file: .* does not exist"),
])
def test_init_from_errors_are_one_line(tmp_path, capsys, weights, message):
    path = tmp_path / "w.pt"
    if weights == "trained":
        assert main(["bench", "rl2-mdp", "--configs", "2", "--steps", "160", "--envs", "16", "--task-critic",
                     "--skip-baselines", "--run-dir", str(tmp_path / "first"), "--zoo", str(tmp_path)]) == 0
        (tmp_path / "mdp_n2.pt").rename(path)
    capsys.readouterr()
    assert main(["bench", "rl2-mdp", "--configs", "2", "--steps", "160", "--envs", "16", "--skip-baselines",
                 "--run-dir", str(tmp_path / "runs"), "--zoo", str(tmp_path / "zoo"), "--init-from", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything was written


@pytest.mark.parametrize("argv,field", [
    (["bench", "rl2-bandits", "--configs", "10y5"], "--configs"),
    (["bench", "rl2-mdp", "--configs", "0"], "--configs"),
    (["bench", "rl2-bandits", "--trials", "1"], "--trials"),
    (["bench", "rl2-bandits", "--baselines-only", "--eval-only"], "--baselines-only"),
    (["bench", "rl2-bandits", "--envs", "0"], "--envs"),
    (["bench", "rl2-bandits", "--envs", "8", "--eval-only"], "--envs"),
    (["bench", "rl2-mdp", "--task-critic", "--baselines-only"], "--task-critic"),
    (["bench", "rl2-mdp", "--init-from", "w.pt", "--eval-only"], "--init-from"),
    (["bench", "rl2-bandits", "--configs", "500x5", "--policy-of", "100x5"], "--policy-of"),
    (["bench", "rl2-bandits", "--critic-warmup", "-1"], "--critic-warmup"),
    (["bench", "rl2-bandits", "--configs", "3x2", "--steps", "10", "--gamma", "1.5"], "--gamma: expected a number in [0, 1]"),
    (["bench", "rl2-mdp", "--gamma", "0.99", "--baselines-only"], "--gamma"),
    (["bench", "rl2-bandits", "--critic-warmup", "10", "--eval-only"], "--critic-warmup"),
    (["bench", "rl2-bandits", "--configs", "500x5", "--policy-of", "100x10", "--eval-only"], "--policy-of 100x10"),
    (["bench", "rl2-mdp", "--configs", "25", "--policy-of", "10,25", "--eval-only"], "--policy-of"),
    (["bench", "rl2-mdp", "--configs", "2,3", "--init-from", "w.pt"], "--init-from: give one setting"),
    (["bench", "rl2-bandits", "--configs", "3x2", "--steps", "10", "--lr", "2"], "--lr: expected a number in (0, 1)"),
    (["bench", "rl2-bandits", "--configs", "100x10", "--envs", "13", "--steps", "10"], "--envs 13"),
])
def test_user_errors_are_one_line(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "\n" not in err and "Traceback" not in err


def test_eval_only_without_weights_names_what_exists(tmp_path, capsys):
    (tmp_path / "bandit_n10_k5.pt").write_bytes(b"")
    assert main(["bench", "rl2-mdp", "--configs", "10", "--eval-only", "--zoo", str(tmp_path)]) == 2
    assert "available: bandit_n10_k5" in capsys.readouterr().err


def test_every_shipped_recipe_is_a_valid_config():
    from policies import meta_bench as mb

    for n, k in mb.PAPER_BANDITS:
        mb.bandit_config(n, k).validate()
    for n in mb.PAPER_MDP:
        mb.mdp_config(n).validate()


def test_baselines_only_needs_no_weights(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "rl2-bandits", "--configs", "10x3", "--trials", "200", "--baselines-only",
                 "--zoo", str(tmp_path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())["bandit_n10_k3"]["results"]
    assert "RL2" not in res and res["Gittins"]["mean"] <= res["Bayes-optimal (exact)"]["mean"] + 4 * res["Gittins"]["se"]
