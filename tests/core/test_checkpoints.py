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


def _resume_and_evaluate(run_dir, capsys, budget: int = 300) -> str:
    """Resume with the CLI (must finish the budget), then evaluate; returns the resume's stdout."""
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert (run_dir / "final" / "model.zip").is_file()
    assert json.load(open(os.path.join(latest_checkpoint(str(run_dir)), "state.json")))["num_timesteps"] == budget
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


# --- every crash window of one checkpoint write, without training ------------------------------------------------
class _Killed(BaseException):
    """Stands for kill -9: nothing after it runs, no cleanup (a BaseException passes every ``except Exception``)."""


class _KillAt:
    """Counts the file-system steps a checkpoint write takes (rename, rmtree, atomic writes); dies at step ``at``."""

    def __init__(self, at: int) -> None:
        self.at, self.done = at, 0

    def step(self, real):
        def run(*args, **kwargs):
            if self.done == self.at:
                raise _Killed
            self.done += 1
            return real(*args, **kwargs)
        return run


def _write_with_kill(monkeypatch, run_dir, step: int, version: str, at: int) -> bool:
    """Write checkpoint ``step`` holding ``version``, killed at file-system step ``at``; True if it completed."""
    import types

    from sim2real import checkpoints

    kill = _KillAt(at)
    fake_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake_os.rename = kill.step(os.rename)
    fake_shutil = types.SimpleNamespace(rmtree=kill.step(shutil.rmtree))
    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "os", fake_os)
        patch.setattr(checkpoints, "shutil", fake_shutil)
        for name in ("atomic_write_json", "atomic_write_text"):
            patch.setattr(checkpoints, name, kill.step(getattr(checkpoints, name)))

        def fill(folder: str) -> None:
            (open(os.path.join(folder, "model.zip"), "w")).write(version)
            if at == -1:
                raise _Killed  # killed while the files are being written
            (open(os.path.join(folder, "state.json"), "w")).write(json.dumps({"num_timesteps": step}))

        try:
            checkpoints.write_checkpoint(str(run_dir), step, fill, keep=2)
            return True
        except _Killed:
            return False


def _versions(run_dir) -> dict[str, str]:
    from sim2real.checkpoints import is_complete

    root = run_dir / "checkpoints"
    return {p.name: (p / "model.zip").read_text() for p in sorted(root.glob("step-*")) if is_complete(str(p))}


@pytest.mark.parametrize("step,previous", [(200, "old"), (300, None)])  # a rewrite of the newest step; a new one
def test_a_kill_at_any_step_of_a_checkpoint_write_leaves_a_complete_checkpoint(monkeypatch, tmp_path, step, previous):
    from sim2real.checkpoints import newest_checkpoint, recover

    outcomes = set()
    for at in range(-1, 20):
        run_dir = tmp_path / f"at{at}"
        _write_with_kill(monkeypatch, run_dir, 100, "old", at=99)
        _write_with_kill(monkeypatch, run_dir, 200, "old", at=99)
        completed = _write_with_kill(monkeypatch, run_dir, step, "new", at=at)
        assert newest_checkpoint(str(run_dir)) is not None  # what eval reads, before any repair
        newest = recover(str(run_dir))  # what a resume continues from
        assert newest == newest_checkpoint(str(run_dir)) and os.path.basename(newest) in ("step-200", f"step-{step}")
        versions = _versions(run_dir)
        assert versions[os.path.basename(newest)] in ("old", "new")
        if previous is None:  # a new step never replaces the older ones before it is complete
            assert versions["step-200"] == "old" or versions.get(f"step-{step}") == "new"
        left = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        assert left == ["LATEST", *sorted(versions)]  # no staging, retired or temp files after a repair
        assert (run_dir / "checkpoints" / "LATEST").read_text().strip() == os.path.basename(newest)
        outcomes.add((completed, versions[os.path.basename(newest)]))
        if completed:
            break
    assert (True, "new") in outcomes and (False, "old") in outcomes  # every window up to completion was hit


# --- real kill -9 (smoke; benchmarks/kill_resume.py does >= 30) ---------------------------------------------------
def _train_in_child(config, run_dir, die_in: str | None = None) -> int:
    """Fork (imports already done) and train there; with ``die_in`` the child kill -9s itself on entering that
    function of :mod:`sim2real.checkpoints` / :mod:`sim2real.train`."""
    import signal

    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            if die_in is not None:
                import sim2real.checkpoints
                import sim2real.train

                module = sim2real.train if hasattr(sim2real.train, die_in) else sim2real.checkpoints
                setattr(module, die_in, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
            train(config, run_dir=str(run_dir), progress=False)
        finally:
            os._exit(0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("kill", ["after 2 s", "save_replay_buffer", "_publish"])
def test_kill_9_then_resume_finishes_and_evaluates(tmp_path, capsys, kill):
    """Killed at a moment in the run, or inside a checkpoint write (half-written staging folder, complete staging
    folder not yet published): the resume finishes the budget and the run evaluates."""
    import signal
    import time

    run_dir = tmp_path / "run"
    config = resolve("launch/so101_reach.yaml", [*TINY, "budget.total_timesteps=200"])
    timed = kill.startswith("after")
    pid = _train_in_child(config, run_dir, None if timed else kill)
    if timed:
        time.sleep(float(kill.split()[1]))
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert not timed or os.WIFSIGNALED(status) or (run_dir / "final" / "model.zip").is_file()
    _resume_and_evaluate(run_dir, capsys, budget=200)
