"""Checkpoints of SB3 runs survive a kill -9 at any moment: every crash window resumes, evaluates and finishes.

Each test starts from a copy of one small finished SAC+HER run and puts its files in the state a kill -9 leaves
in one window of a checkpoint write (or of the run around it), then resumes it with the real CLI.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pytest

from sim2real.cli import main
from sim2real.launch import resolve
from sim2real.train import latest_checkpoint, train

TINY = ["algo.net_arch=[32, 32]", "algo.batch_size=64", "algo.learning_starts=100", "eval.episodes=1",
        "budget.total_timesteps=300", "eval.every_steps=100", "checkpoint.every_steps=100"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run: checkpoints step-200 and step-300, evaluations at 100, 200, 300, final/model.zip."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "launch/so101_reach.yaml", *TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def run(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def _killed_after_step_200(run_dir) -> None:
    """The files of a run killed after its step-300 evaluation but before its step-300 checkpoint."""
    shutil.rmtree(run_dir / "final")
    shutil.rmtree(run_dir / "checkpoints" / "step-300")
    (run_dir / "checkpoints" / "LATEST").write_text("step-200\n")


def _resume_and_evaluate(run_dir, capsys) -> str:
    """Resume with the CLI (must finish the budget), then evaluate; returns the resume's stdout."""
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert (run_dir / "final" / "model.zip").is_file()
    assert json.load(open(os.path.join(latest_checkpoint(str(run_dir)), "state.json")))["num_timesteps"] == 300
    assert main(["eval", str(run_dir), "--episodes", "1"]) == 0
    return out


def _evaluations(run_dir) -> list[int]:
    return [json.loads(line)["timesteps"] for line in open(run_dir / "evaluations.jsonl")]


def test_killed_between_removing_the_old_checkpoint_and_renaming_the_new_one(run, capsys):
    """The window of the old rmtree + os.replace: LATEST names step-300, only its complete staging copy exists."""
    shutil.rmtree(run / "final")
    os.rename(run / "checkpoints" / "step-300", run / "checkpoints" / ".staging-step-300")
    assert main(["eval", str(run), "--episodes", "1"]) == 0  # evaluable before the resume too
    out = _resume_and_evaluate(run, capsys)
    assert "from step-300" in out  # the complete staging copy is the newest checkpoint
    assert not (run / "checkpoints" / ".staging-step-300").exists()


def test_killed_while_writing_the_staging_folder(run, capsys):
    _killed_after_step_200(run)
    staging = run / "checkpoints" / ".staging-step-300"
    shutil.copytree(run / "checkpoints" / "step-200", staging)
    for name in ("manifest.json", "replay_buffer.npz", "replay_buffer.pkl"):
        if (staging / name).exists():
            (staging / name).unlink()
    out = _resume_and_evaluate(run, capsys)
    assert "from step-200" in out and not staging.exists()


def test_killed_before_latest_was_updated_resumes_from_the_newest_complete_checkpoint(run, capsys):
    shutil.rmtree(run / "final")
    (run / "checkpoints" / "LATEST").write_text("step-200\n")
    out = _resume_and_evaluate(run, capsys)
    assert "from step-300" in out
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step-300"
    assert _evaluations(run) == [100, 200, 300]  # nothing re-run


def test_latest_naming_a_half_deleted_checkpoint_falls_back_to_the_previous_one(run, capsys):
    shutil.rmtree(run / "final")
    (run / "checkpoints" / "step-300" / "model.zip").unlink()
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    out = _resume_and_evaluate(run, capsys)
    assert "from step-200" in out


def test_resume_removes_temp_files_of_interrupted_writes(run, capsys):
    _killed_after_step_200(run)
    leftovers = [run / "final" / ".model.tmp.zip", run / ".tmp-abc123", run / "checkpoints" / ".tmp-x1y2",
                 run / "checkpoints" / ".retired-step-100" / "model.zip"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    _resume_and_evaluate(run, capsys)
    assert [p for p in leftovers if p.exists()] == []
    assert not (run / "checkpoints" / ".retired-step-100").exists()


def test_resume_drops_evaluations_and_tensorboard_points_past_the_checkpoint_only(run, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    probe = run / "tb" / "probe"
    writer = SummaryWriter(str(probe))
    for step in (100, 200, 300):
        writer.add_scalar("probe/value", step, step)
    writer.close()
    _killed_after_step_200(run)
    with open(run / "evaluations.jsonl", "a") as handle:
        handle.write('{"timesteps": 3')  # torn by the kill
    _resume_and_evaluate(run, capsys)
    assert _evaluations(run) == [100, 200, 300]
    events = EventAccumulator(str(probe))
    events.Reload()
    assert [s.step for s in events.Scalars("probe/value")] == [100, 200]  # the point at the checkpoint stays


def test_a_finished_run_resumed_again_does_nothing_and_rewrites_nothing(run, capsys):
    def snapshot():
        return {str(p.relative_to(run)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
                for p in sorted(run.rglob("*")) if p.is_file()}

    before = snapshot()
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert snapshot() == before


def test_a_run_killed_before_its_first_checkpoint_starts_over(run, capsys):
    shutil.rmtree(run / "final")
    shutil.rmtree(run / "checkpoints")
    out = _resume_and_evaluate(run, capsys)
    assert "from the start" in out
    assert _evaluations(run) == [100, 200, 300]


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_old_pickled_replay_buffer_is_never_unpickled(run, capsys):
    _killed_after_step_200(run)
    marker = run.parent / "code-ran"
    checkpoint = run / "checkpoints" / "step-200"
    for name in ("replay_buffer.npz", "replay_buffer.json", "manifest.json"):  # an old-style checkpoint
        (checkpoint / name).unlink(missing_ok=True)
    (checkpoint / "replay_buffer.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "replay_buffer.pkl" in line]
    assert not marker.exists()
    assert len(err) == 1 and "ignored" in err[0]
    assert (run / "final" / "model.zip").is_file()


def test_a_resumed_off_policy_run_continues_with_its_replay_buffer(run):
    _killed_after_step_200(run)
    saved = np.load(run / "checkpoints" / "step-200" / "replay_buffer.npz", allow_pickle=False)
    saved_pos = json.load(open(run / "checkpoints" / "step-200" / "replay_buffer.json"))["pos"]
    config = resolve(str(run / "launch.yaml"))
    train(config, run_dir=str(run), resume=True, progress=False)
    meta = json.load(open(run / "checkpoints" / "step-300" / "replay_buffer.json"))
    assert saved_pos > 100 and meta["pos"] == saved_pos + 100  # restored + 100 new, not 100 in an empty buffer
    resumed = np.load(run / "checkpoints" / "step-300" / "replay_buffer.npz", allow_pickle=False)
    for name in ("observations/observation", "actions", "rewards", "ep_start"):
        np.testing.assert_array_equal(resumed[name][:saved_pos], saved[name][:saved_pos])
