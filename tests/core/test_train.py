import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sim2real.cli import main
from sim2real.train import latest_checkpoint

SMALL = ["algo.net_arch=[32, 32]", "algo.batch_size=64", "algo.learning_starts=100", "eval.episodes=2"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim2real.cli", *args]


def test_train_writes_a_complete_run_and_eval_reads_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "launch/panda_reach.yaml", *SMALL, "budget.total_timesteps=400", "eval.every_steps=200",
                 "checkpoint.every_steps=200", "--run-dir", str(run_dir)])
    assert code == 0
    for name in ("launch.yaml", "versions.json", "evaluations.jsonl", "final/model.zip"):
        assert (run_dir / name).is_file(), name
    checkpoint = latest_checkpoint(str(run_dir))
    assert checkpoint and os.path.isfile(os.path.join(checkpoint, "replay_buffer.npz"))
    assert not os.path.exists(os.path.join(checkpoint, "replay_buffer.pkl"))  # never a pickle
    assert json.load(open(os.path.join(checkpoint, "state.json")))["num_timesteps"] == 400
    assert json.load(open(run_dir / "versions.json"))["pybullet"] != "not installed"
    history = [json.loads(line) for line in open(run_dir / "evaluations.jsonl")]
    assert [h["timesteps"] for h in history] == [200, 400]
    assert any(d.name == "train_1" for d in (run_dir / "tb").iterdir())
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    assert "success rate" in capsys.readouterr().out
    assert json.load(open(run_dir / "eval.json"))["episodes"] == 3


def test_ppo_trains_too(tmp_path):
    run_dir = tmp_path / "ppo"
    launch = tmp_path / "ppo.yaml"
    launch.write_text("env:\n  id: sim2real/SO101Reach-v0\n  reward_type: dense\nalgo:\n  name: ppo\n")
    assert main(["train", str(launch), "algo.net_arch=[16]",
                 "algo.n_steps=64", "algo.batch_size=32", "algo.n_epochs=1", "n_envs=1", "eval.episodes=1",
                 "budget.total_timesteps=128", "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "final" / "model.zip").is_file()


def test_kill_9_mid_run_then_resume_finishes_the_budget(tmp_path):
    run_dir = tmp_path / "killed"
    args = _cli("train", "launch/panda_reach.yaml", *SMALL, "budget.total_timesteps=1600", "eval.every_steps=400",
                "checkpoint.every_steps=300", "--run-dir", str(run_dir))
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while latest_checkpoint(str(run_dir)) is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.load(open(os.path.join(latest_checkpoint(str(run_dir)), "state.json")))["num_timesteps"]
    assert 0 < killed_at < 1600
    assert not (run_dir / "final").exists()

    resumed = subprocess.run(_cli("train", "--resume", str(run_dir)), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    final_state = json.load(open(os.path.join(latest_checkpoint(str(run_dir)), "state.json")))
    assert final_state["num_timesteps"] == 1600
    assert (run_dir / "final" / "model.zip").is_file()


def test_resume_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope")]) == 2


@pytest.mark.parametrize("argv", [["info"], ["--help"]])
def test_info_and_help(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse --help
        code = stop.code
    assert code == 0
    out = capsys.readouterr().out
    assert "sim2real/PandaReach-v0" in out or "train" in out


ADR_LAUNCH = """
env: {id: sim2real/PandaReach-v0}
randomizers: [{group: dynamics}, {group: actuation}]
curriculum: adr
curriculum_options: {buffer_size: 4}
algo: {name: ppo, n_steps: 64, batch_size: 64, n_epochs: 1, net_arch: [16]}
n_envs: 2
budget: {total_timesteps: 256}
eval: {every_steps: 256, episodes: 1}
checkpoint: {every_steps: 128}
"""


def test_launch_file_curriculum_is_trained_and_checkpointed(tmp_path):
    launch = tmp_path / "adr.yaml"
    launch.write_text(ADR_LAUNCH)
    run_dir = tmp_path / "adr"
    assert main(["train", str(launch), "--run-dir", str(run_dir)]) == 0
    checkpoint = latest_checkpoint(str(run_dir))
    state = json.load(open(os.path.join(checkpoint, "curriculum.json")))
    assert state  # the teacher's state travels with every checkpoint
    history = [json.loads(line) for line in open(run_dir / "curriculum_history.jsonl")]
    assert history[0]["event"] == "start" and history[0]["teacher"] == "adr"


def test_curriculum_launch_errors_are_one_line(tmp_path, capsys):
    launch = tmp_path / "adr.yaml"
    launch.write_text(ADR_LAUNCH)
    assert main(["train", str(launch), "curriculum_options.p_x=1"]) == 2
    assert "not an option of adr" in capsys.readouterr().err
    assert main(["train", str(launch), "randomizers=[]"]) == 2
    assert "randomizers is empty" in capsys.readouterr().err


def test_rl2_policy_trains_from_a_launch_file_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "rl2"
    small = ["budget.total_timesteps=200", "rl2.rollout_steps=50", "rl2.seq_len=25", "rl2.network.hidden_size=16"]
    assert main(["train", "launch/panda_reach_rl2.yaml", *small, "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "checkpoint.pt").is_file()
    progress = [json.loads(line) for line in open(run_dir / "progress.jsonl")]
    assert progress[-1]["global_step"] == 200
    # resuming a finished run keeps its step count and checkpoint
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "resuming" in capsys.readouterr().out


@pytest.mark.parametrize("override,fragment", [
    ("algo.learning_rate=0.1", "algo settings apply to policy: mlp"),
    ("rl2.total_steps=10", "set budget.total_timesteps instead"),
    ("rl2.bogus=1", "rl2:"),
    ("rl2.workers=3", "rl2: workers: expected an integer in [0, 2]"),
    ("policy=mlp", "rl2: only used with policy: rl2"),
])
def test_rl2_launch_errors_are_one_line(override, fragment, capsys):
    assert main(["train", "launch/panda_reach_rl2.yaml", override]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_rl2_with_an_adr_curriculum_in_worker_processes_keeps_the_teacher_and_writes_its_history(tmp_path):
    import torch

    run_dir = tmp_path / "rl2_adr"
    assert main(["train", "launch/panda_reach_rl2.yaml", "curriculum=adr", "rl2.workers=2",
                 "curriculum_options={buffer_size: 2, metric: return, t_high: -5.0, t_low: -200.0}",
                 "budget.total_timesteps=300", "rl2.rollout_steps=150", "rl2.seq_len=50",
                 "rl2.network.hidden_size=16", "--run-dir", str(run_dir)]) == 0
    data = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert data["curriculum"]["teacher"] == "adr" and "buffers" in data["curriculum"]
    progress = [json.loads(line) for line in open(run_dir / "progress.jsonl")]
    assert any(key.startswith("curriculum/") for key in progress[-1])
    history = [json.loads(line) for line in open(run_dir / "curriculum_history.jsonl")]
    assert history[0]["event"] == "start" and history[0]["teacher"] == "adr"
    assert main(["curriculum", "plot", str(run_dir)]) == 0 and (run_dir / "curriculum_ranges.png").is_file()


def test_rl2_training_whose_env_worker_is_killed_ends_in_one_line(tmp_path, capsys):
    import multiprocessing
    import threading

    def kill_worker_1() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [p for p in multiprocessing.active_children() if p.name == "rl2-env-worker-1" and p.pid]
            if found:
                time.sleep(0.5)
                os.kill(found[0].pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_1, daemon=True)
    killer.start()
    code = main(["train", "launch/panda_reach_rl2.yaml", "rl2.workers=2", "budget.total_timesteps=30000",
                 "rl2.network.hidden_size=16", "--run-dir", str(tmp_path / "run")])
    killer.join(timeout=5)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "rl2.workers: env worker 1 (env 1) died (signal SIGKILL) during" in err


def test_rl2_curricula_must_use_trial_returns(capsys):
    assert main(["train", "launch/panda_reach_rl2.yaml", "curriculum=adr"]) == 2
    assert "set metric: return" in capsys.readouterr().err
    assert main(["train", "launch/panda_reach_rl2.yaml", "curriculum=plr", "curriculum_options={score: success}"]) == 2
    assert "scores whole trials by their value loss" in capsys.readouterr().err
    assert main(["train", "launch/panda_reach_rl2.yaml", "curriculum=robust_plr",
                 "curriculum_options={score: max_mc}"]) == 2
    assert "rl2.normalize_reward" in capsys.readouterr().err
