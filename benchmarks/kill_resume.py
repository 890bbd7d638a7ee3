"""kill -9 a real ``sim2real train`` process at random moments, then resume and evaluate it: no run may be lost.

Four kinds of kill, each followed by ``sim2real eval RUN`` (before the resume, when the run has a model yet),
``sim2real train --resume RUN`` until it exits (a resume may itself be killed) and ``sim2real eval RUN``:

- ``random``:      SB3 SAC+HER (launch/so101_reach.yaml, small: 300 steps, eval and checkpoint every 100, so the
                   budget is a multiple of the checkpoint interval), killed at a uniform random time between the
                   moment it wrote its run directory (imports done) and the end of an uninterrupted run;
- ``checkpoint``:  the same run with every file-system step of a checkpoint write slowed down by a random pause
                   (0-150 ms, in this script's child process only) and announced on stdout; the kill lands at a
                   random moment after a randomly chosen announcement, i.e. inside a checkpoint write;
- ``resume``:      a run killed at random, then its resume killed at random too, then resumed to the end;
- ``rl2``:         ``policy: rl2`` (launch/panda_reach_rl2.yaml, small) killed at a random moment.

A run is *unrecoverable* when a resume exits non-zero, the final checkpoint is not at the budget, the evaluation
fails, evaluations.jsonl has repeated or out-of-order steps, or temp files/staging folders are left.
Where each kill landed is read from the run directory right after the kill.

    nice -n 10 .venv/bin/python benchmarks/kill_resume.py --random 14 --checkpoint 14 --resume 4 --rl2 4 --jobs 2 \\
        --out benchmarks/results/kill_resume.json
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SB3 = ["launch/so101_reach.yaml", "algo.net_arch=[32, 32]", "algo.batch_size=64", "algo.learning_starts=100",
       "eval.episodes=1", "budget.total_timesteps=300", "eval.every_steps=100", "checkpoint.every_steps=100"]
RL2 = ["launch/panda_reach_rl2.yaml", "budget.total_timesteps=400", "rl2.rollout_steps=50", "rl2.seq_len=25",
       "rl2.network.hidden_size=16", "rl2.checkpoint_every=2", "eval.every_steps=50"]
MARK = "CHECKPOINT-STEP "


# --- the child: sim2real's CLI with slowed, announced checkpoint writes -----------------------------------------
def child(argv: list[str]) -> int:
    """Run ``sim2real`` with each file-system step of a checkpoint write announced and paused (benchmark only)."""
    import types

    import sim2real.checkpoints as checkpoints
    import sim2real.train as train
    from sim2real.cli import main

    rng = random.Random()

    def announced(name: str, real):
        def run(*args, **kwargs):
            if any("checkpoints" in str(a) for a in args):  # a step of a checkpoint write (not the run's start)
                print(f"{MARK}{name}", flush=True)
                time.sleep(rng.uniform(0.0, 0.15))
            return real(*args, **kwargs)
        return run

    fake_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake_os.rename = announced("rename", os.rename)
    checkpoints.os = fake_os  # type: ignore[assignment]
    checkpoints.shutil = types.SimpleNamespace(rmtree=announced("rmtree", shutil.rmtree))  # type: ignore
    for name in ("atomic_write_json", "atomic_write_text", "_write_manifest"):
        setattr(checkpoints, name, announced(name, getattr(checkpoints, name)))
    for name in ("save_replay_buffer", "dump", "package_versions"):  # inside the staging folder's fill
        setattr(train, name, announced(name, getattr(train, name)))
    return main(argv)


# --- the parent ---------------------------------------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim2real.cli", *args]


def _start(cmd: list[str]) -> tuple[subprocess.Popen, "queue.Queue[str]"]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _wait_for_start(proc: subprocess.Popen, run_dir: str) -> float:
    """Wait until the process has written its run directory's launch.yaml (imports done); returns the seconds."""
    start = time.perf_counter()
    while proc.poll() is None and not os.path.isfile(os.path.join(run_dir, "launch.yaml")):
        time.sleep(0.02)
    return time.perf_counter() - start


def _kill_after(proc: subprocess.Popen, delay_s: float) -> bool:
    """kill -9 ``proc`` after ``delay_s``; False if it had already exited."""
    try:
        proc.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _kill_inside_a_write(proc: subprocess.Popen, lines: "queue.Queue[str]", nth: int, rng: random.Random):
    """kill -9 at a random moment after the ``nth`` checkpoint-step announcement; returns (killed, last step)."""
    seen, last = 0, None
    while proc.poll() is None:
        try:
            line = lines.get(timeout=0.05)
        except queue.Empty:
            continue
        if line.startswith(MARK):
            seen, last = seen + 1, line[len(MARK):]
            if seen >= nth:
                return _kill_after(proc, rng.uniform(0.0, 0.15)), last
    return False, last


def landed(run_dir: str, rl2: bool) -> str:
    """Where a kill landed, read from the run directory."""
    if not os.path.isfile(os.path.join(run_dir, "launch.yaml")):
        return "before the run directory was written"
    if rl2:
        temps = [n for n in os.listdir(run_dir) if n.startswith(".checkpoint.pt.")]
        if temps:
            return "rl2: inside a checkpoint.pt write"
        return "rl2: between checkpoints" if os.path.isfile(os.path.join(run_dir, "checkpoint.pt")) \
            else "rl2: before the first checkpoint"
    from sim2real.checkpoints import MANIFEST, newest_checkpoint

    root = os.path.join(run_dir, "checkpoints")
    names = os.listdir(root) if os.path.isdir(root) else []
    staging = [n for n in names if n.startswith(".staging-")]
    if any(n.startswith(".retired-") for n in names):
        return "publishing: old copy moved aside"
    if staging and all(os.path.isfile(os.path.join(root, n, MANIFEST)) for n in staging):
        return "checkpoint write: staging complete, not yet published"
    if staging:
        return "checkpoint write: staging folder being filled"
    newest = newest_checkpoint(run_dir)
    if newest is None:
        return "before the first checkpoint"
    latest = open(os.path.join(root, "LATEST")).read().strip() if os.path.isfile(os.path.join(root, "LATEST")) else ""
    if latest != os.path.basename(newest):
        return "publishing: LATEST not yet updated"
    if os.path.exists(os.path.join(run_dir, "final", ".model.tmp.zip")):
        return "writing final/model.zip"
    if os.path.isfile(os.path.join(run_dir, "final", "model.zip")):
        return "after the run finished"
    return "between checkpoints (training or evaluating)"


def _eval(run_dir: str, rl2: bool) -> int:
    """``sim2real eval RUN`` (SB3); RL² runs, which ``sim2real eval`` does not take, load their checkpoint the way
    ``sim2real deploy`` does (tensors only)."""
    if rl2:
        code = "import sys; from policies.checkpoint import load_policy; load_policy(sys.argv[1] + '/checkpoint.pt')"
        return subprocess.run([sys.executable, "-c", code, run_dir], cwd=ROOT, capture_output=True).returncode
    return subprocess.run(_cli("eval", run_dir, "--episodes", "1"), cwd=ROOT, capture_output=True).returncode


def _has_model(run_dir: str, rl2: bool) -> bool:
    if rl2:
        return os.path.isfile(os.path.join(run_dir, "checkpoint.pt"))
    from sim2real.checkpoints import newest_checkpoint

    return newest_checkpoint(run_dir) is not None or os.path.isfile(os.path.join(run_dir, "final", "model.zip"))


def _problems(run_dir: str, rl2: bool, budget: int) -> list[str]:
    """What is wrong with a run that should now be finished (empty: recovered)."""
    out = []
    if rl2:
        import torch

        step = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)["global_step"]
        if step < budget:
            out.append(f"checkpoint.pt at {step} < {budget}")
        logged = [json.loads(x)["global_step"] for x in open(os.path.join(run_dir, "progress.jsonl"))]
        leftovers = [n for n in os.listdir(run_dir) if n.startswith(".")]
    else:
        from sim2real.checkpoints import newest_checkpoint

        newest = newest_checkpoint(run_dir)
        step = json.load(open(os.path.join(newest, "state.json")))["num_timesteps"] if newest else None
        if step != budget:
            out.append(f"newest checkpoint at {step}, budget {budget}")
        if not os.path.isfile(os.path.join(run_dir, "final", "model.zip")):
            out.append("no final/model.zip")
        logged = [json.loads(x)["timesteps"] for x in open(os.path.join(run_dir, "evaluations.jsonl"))]
        leftovers = [os.path.join(d, n) for d, dirs, files in os.walk(run_dir) for n in dirs + files
                     if n.startswith((".staging-", ".retired-", ".tmp-", ".model.tmp"))]
    if logged != sorted(set(logged)):
        out.append(f"logged steps repeated or out of order: {logged}")
    if leftovers:
        out.append(f"left over: {leftovers}")
    if _eval(run_dir, rl2) != 0:
        out.append("eval failed after the resume")
    return out


def _resume(run_dir: str, rng: random.Random, kill_resume: bool, kills: list[dict[str, Any]], rl2: bool,
            full_run_s: float) -> int:
    """Resume until the process exits by itself; with ``kill_resume`` the first resume is killed at random."""
    if kill_resume:  # killed at a random moment after it said what it resumes from
        proc, lines = _start(_cli("train", "--resume", run_dir))
        while proc.poll() is None:
            try:
                if any(word in lines.get(timeout=0.05) for word in ("resuming", "from the start")):
                    break
            except queue.Empty:
                continue
        if _kill_after(proc, rng.uniform(0.0, full_run_s)):
            kills.append({"kind": "resume", "landed": "during a resume: " + landed(run_dir, rl2)})
    proc = subprocess.run(_cli("train", "--resume", run_dir), cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return proc.returncode


def trial(kind: str, index: int, base: str, seed: int, full_run_s: dict[str, float]) -> dict[str, Any]:
    rng = random.Random(f"{seed}-{kind}-{index}")
    rl2 = kind == "rl2"
    run_dir = os.path.join(base, f"{kind}-{index}")
    launch = RL2 if rl2 else SB3
    kills: list[dict[str, Any]] = []
    if kind == "checkpoint":
        proc, lines = _start([sys.executable, os.path.abspath(__file__), "--child", "train", *launch,
                              "--run-dir", run_dir])
        killed, last = _kill_inside_a_write(proc, lines, rng.randint(1, full_run_s["announcements"]), rng)
        where = f"{landed(run_dir, rl2)} (last step announced: {last})"
    else:
        proc, _ = _start(_cli("train", *launch, "--run-dir", run_dir))
        _wait_for_start(proc, run_dir)
        killed = _kill_after(proc, rng.uniform(0.0, full_run_s["rl2" if rl2 else "sb3"]))
        where = landed(run_dir, rl2)
    if killed:
        kills.append({"kind": kind, "landed": where})
    eval_before = _eval(run_dir, rl2) if _has_model(run_dir, rl2) else None  # None: no model written yet
    code = _resume(run_dir, rng, kind == "resume", kills, rl2, full_run_s["sb3"]) if os.path.isfile(
        os.path.join(run_dir, "launch.yaml")) else 0
    budget = 400 if rl2 else 300
    problems = ([f"resume exited {code}"] if code else []) + (
        _problems(run_dir, rl2, budget) if os.path.isfile(os.path.join(run_dir, "launch.yaml")) else [])
    return {"kind": kind, "index": index, "kills": kills, "eval_before_resume": eval_before, "problems": problems}


def _calibrate(base: str) -> dict[str, float]:
    """Wall time of uninterrupted runs (s) and how many checkpoint steps one run announces."""
    out = {}
    for name, launch in (("sb3", SB3), ("rl2", RL2)):
        run_dir = os.path.join(base, f"calibrate-{name}")
        proc, _ = _start(_cli("train", *launch, "--run-dir", run_dir))
        _wait_for_start(proc, run_dir)
        start = time.perf_counter()
        if proc.wait() != 0:
            raise SystemExit(f"the uninterrupted {name} run failed")
        out[name] = time.perf_counter() - start  # from the run directory's start to the end
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "train", *SB3, "--run-dir",
                           os.path.join(base, "calibrate-announced")], cwd=ROOT, check=True, capture_output=True,
                          text=True)
    out["announcements"] = sum(line.startswith(MARK) for line in proc.stdout.splitlines())
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for kind, default in (("random", 14), ("checkpoint", 14), ("resume", 4), ("rl2", 4)):
        parser.add_argument(f"--{kind}", type=int, default=default, help=f"trials of kind {kind}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="trials at a time")
    parser.add_argument("--keep", help="keep the run directories here (default: a temp folder, deleted)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    base = args.keep or tempfile.mkdtemp(prefix="kill-resume-")
    os.makedirs(base, exist_ok=True)
    started = time.time()
    full = _calibrate(base)
    print(f"uninterrupted (run directory written to end): SB3 {full['sb3']:.1f} s, RL2 {full['rl2']:.1f} s; "
          f"{full['announcements']:.0f} checkpoint steps announced per SB3 run", flush=True)
    def run_trial(kind: str, index: int) -> dict[str, Any]:
        result = trial(kind, index, base, args.seed, full)
        state = "UNRECOVERABLE " + "; ".join(result["problems"]) if result["problems"] else "recovered"
        print(f"{kind:>10} {index:>2}: " + (", ".join(k["landed"] for k in result["kills"]) or "not killed "
              "(finished first)") + f"; eval before resume: {result['eval_before_resume']} -> {state}", flush=True)
        return result

    plan = [(kind, index) for kind in ("random", "checkpoint", "resume", "rl2") for index in range(getattr(args, kind))]
    with ThreadPoolExecutor(args.jobs) as pool:  # each trial drives its own processes
        results = list(pool.map(lambda job: run_trial(*job), plan))
    kills = [k for r in results for k in r["kills"]]
    summary = {
        "kills": len(kills), "runs": len(results),
        "unrecoverable_runs": sum(bool(r["problems"]) for r in results),
        "eval_before_resume": dict(collections.Counter(
            {None: "no model yet", 0: "ok"}.get(r["eval_before_resume"], "FAILED") for r in results)),
        "landed": dict(collections.Counter(k["landed"].split(" (last")[0] for k in kills).most_common()),
        "wall_s": round(time.time() - started, 1), "uninterrupted_s": full, "seed": args.seed,
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"summary": summary, "runs": results}, handle, indent=2)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if summary["unrecoverable_runs"] else 0


if __name__ == "__main__":
    sys.exit(main())
