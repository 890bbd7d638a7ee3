"""Progress display: bars with counts and ETA when drawn, nothing but milestone lines when the output is not a
terminal; RL² training reports steps, trial return and success through it; ``sim2real emulate`` prints its address
line at once through a pipe."""
from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time

import pytest
from rich.console import Console

from sim2real.progress import progress_bars


def test_bars_are_quiet_when_output_is_not_a_terminal(capsys):
    with progress_bars() as bars:  # pytest captures stdout: not a terminal
        bar = bars.add("train", total=10)
        bars.update(bar, advance=3, status="run: 3/3 succeeded")
        bars.line("train: run ...")
    assert not bars.live
    assert capsys.readouterr().out == "train: run ...\n"


def test_bars_show_counts_status_and_eta_when_forced():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with progress_bars(True, console) as bars:
        bar = bars.add("heldout-dynamics", total=10)
        bars.update(bar, advance=3, status="run: 2/3 succeeded")
        bars.line("not printed: the bar says it")
    text = out.getvalue()
    assert bars.live and "heldout-dynamics" in text and "3/10" in text and "run: 2/3 succeeded" in text
    assert "ETA" in text and "━" in text and "not printed" not in text


def test_counter_prints_milestones_without_bars_and_moves_a_bar_with_them(capsys):
    with progress_bars(False) as bars:
        report = bars.counter("training epochs", line_every=2)
        for epoch in range(1, 6):
            report(epoch, 5, f"loss {1.0 / epoch:.2f}")
    assert capsys.readouterr().out.splitlines() == ["training epochs: 2/5, loss 0.50", "training epochs: 4/5, loss 0.25",
                                                     "training epochs: 5/5, loss 0.20"]
    out = io.StringIO()
    with progress_bars(True, Console(file=out, force_terminal=True, width=120)) as bars:
        report = bars.counter("rendering")
        for done in range(1, 5):
            report(done, 8, "")
    assert "rendering" in out.getvalue() and "4/8" in out.getvalue()


def test_perception_fit_reports_each_epoch_with_counts():
    import numpy as np

    from sim2real.vision.training import fit

    rng = np.random.default_rng(0)
    calls = []
    fit(rng.integers(0, 255, (24, 40, 40, 3)).astype(np.uint8), rng.uniform(-0.1, 0.1, (24, 3)).astype(np.float32),
        epochs=2, progress=lambda done, total, status: calls.append((done, total, status)))
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)] and all("validation error" in c[2] for c in calls)


@pytest.mark.parametrize("progress", [True, False])
def test_rl2_training_reports_steps_trial_return_and_success(progress, tmp_path, capsys, monkeypatch):
    from sim2real.launch import resolve

    monkeypatch.setenv("COLUMNS", "160")
    from sim2real.train import train

    config = resolve("launch/panda_reach_rl2.yaml", ["budget.total_timesteps=200", "rl2.rollout_steps=50",
                                                     "rl2.seq_len=25", "rl2.network.hidden_size=16",
                                                     "eval.every_steps=100", "rl2.episodes_per_trial=1"])
    train(config, run_dir=str(tmp_path / "rl2"), progress=progress)
    out = capsys.readouterr().out
    stats = [json.loads(line) for line in open(tmp_path / "rl2" / "progress.jsonl")]
    assert 0.0 <= stats[-1]["episode_success_rate"] <= 1.0  # the envs' is_success reaches the trainer
    if progress:
        assert "RL² training" in out and "200/200" in out and "success" in out and "trial return" in out
    else:
        assert "RL² training" not in out and "━" not in out
        assert "steps] trial return" in out and "success" in out


def _first_line_through_pipe(args: list[str], timeout_s: float = 30.0) -> tuple[str, subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": ""})
    deadline, data = time.monotonic() + timeout_s, b""
    while b"\n" not in data and time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            data += os.read(process.stdout.fileno(), 4096)
    return data.decode(), process


@pytest.mark.parametrize("args, words", [(["emulate", "dynamixel"], "dynamixel bus emulator"),
                                         (["emulate", "crazyflie", "--port", "0"], "crazyflie emulator"),
                                         (["emulate", "mavlink", "--port", "0"], "mavlink emulator")])
def test_emulate_address_line_reaches_a_pipe_while_it_serves(args, words):
    line, process = _first_line_through_pipe(args)
    try:
        assert words in line and " on " in line, line
        assert process.poll() is None  # read while the emulator still serves, not when it exits
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_plain_eval_counts_episodes_and_prints_one_line_without_a_terminal(tiny_run, capsys):
    from sim2real.cli import main
    from sim2real.train import evaluate_run

    calls = []
    evaluate_run(tiny_run, 3, seed=5, progress=lambda done, total, status: calls.append((done, total, status)))
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)] and calls[-1][2].endswith("/3 succeeded")
    capsys.readouterr()
    assert main(["eval", tiny_run, "--episodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("episodes: 2/2, ") and lines[1].startswith("episodes 2  success rate")
