"""The same "Which is heavier?" (or "Towers") policy on the emulated SO-101 (issue 24): the Feetech bus emulator
serves the arm in a child process (``sim2real emulate feetech``), the stock SDK drives it through
:class:`~sim2real.hal.servo_arm.ServoArm`, and the blocks live in an
:class:`~sim2real.hal.emulated_workspace.EmulatedWorkspace` (simulated around the measured arm, which also measures
each block's contact force). :class:`~sim2real.deploy.experiment.ExperimentEpisodes` in the deployment's rate loop
runs the episodes at 25 Hz in real time through the safety layer. Prints accuracy and blocks poked per agent.

    python benchmarks/heavier_emulated.py [--task towers] --episodes 20 --difficulty 0.0 [--run rl2=RUN_DIR ...]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.deploy.experiment import experiment_loop
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.loop import DeployResult, LoopConfig
from sim2real.emulators.process import stop_process
from sim2real.evaluation.stats import wilson_ci
from sim2real.hal.emulated_workspace import EmulatedWorkspace
from sim2real.hal.feetech import FeetechBus
from sim2real.hal.servo_arm import ServoArm
from sim2real.tasks import make_task
from sim2real.tasks.experiment_scripted import EpisodePolicy, KnockDown, PokeAll, RandomAnswer
from sim2real.tasks.experiments import Heavier

BUDGET = 50  # steps: the training envs' budget
RATE_HZ = 25.0


def run_emulated(policy: Any, episodes: int, difficulty: float, seed: int, log_path: str,
                 reality: str | None = None, watchdog_s: float | None = None,
                 latency_ms: float = 16.0, task_name: str = "heavier") -> DeployResult:
    """``episodes`` episodes of ``task_name`` (heavier or towers) by ``policy`` on an emulated SO-101 (``sim2real
    emulate feetech`` in a child process, as in real use) with blocks at ``difficulty``; ``watchdog_s`` (s)
    replaces the loop's overrun and stale-state limits and ``latency_ms`` sets the bus's reply timeout (a shared
    machine under load cannot hold 25 Hz, and its emulator answers late)."""
    spec = so101_spec()
    task = make_task(task_name, spec)
    task.difficulty = difficulty
    command = [sys.executable, "-m", "sim2real.cli", "emulate", "feetech"] + (["--reality", reality] if reality else [])
    emulator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    log = None
    try:
        line = emulator.stdout.readline()
        if " on /dev/" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        calibration = calibration_from_spec(spec)
        arm = ServoArm(spec, FeetechBus(line.split()[-1], calibration.ids, 1_000_000, latency_ms), calibration,
                       task.layout.robot_base)
        log = DeploymentLog(log_path)
        config = LoopConfig(RATE_HZ, episodes=episodes, steps_per_episode=BUDGET, seed=seed,
                            stale_after_s=watchdog_s, overrun_after_s=watchdog_s)
        with EmulatedWorkspace(task) as workspace, arm:
            return experiment_loop(arm, task, workspace, policy, log, config).run()
    finally:
        if log is not None:
            log.close()
        stop_process(emulator)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("heavier", "towers"), default="heavier")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--difficulty", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR")
    parser.add_argument("--watchdog-s", type=float, default=None,
                        help="overrun and stale-state limit (s); default: the deployment's (a few periods)")
    parser.add_argument("--latency-ms", type=float, default=16.0, help="the bus's reply latency allowance (ms)")
    args = parser.parse_args(argv)
    task = make_task(args.task, so101_spec())
    agents: dict[str, Any] = {"random answer": EpisodePolicy(RandomAnswer(task, np.random.default_rng(0)))}
    if isinstance(task, Heavier):
        agents["scripted poke-all"] = EpisodePolicy(PokeAll(task))
    else:
        agents["scripted knock-down"] = EpisodePolicy(KnockDown(task))
    if args.run:
        from sim2real.policy_files import load_policy

        for item in args.run:
            name, _, path = item.partition("=")
            agents[name] = load_policy(path, None)[0]
    print("| agent | difficulty | accuracy (95 % CI) | blocks poked | steps | stopped |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, policy in agents.items():
            result = run_emulated(policy, args.episodes, args.difficulty, args.seed,
                                  os.path.join(folder, "log.jsonl"), watchdog_s=args.watchdog_s,
                                  latency_ms=args.latency_ms, task_name=args.task)
            done = result.episodes
            acc = wilson_ci(sum(e["success"] for e in done), max(len(done), 1))
            poked = np.mean([e["poked"] for e in done]) if done else float("nan")
            steps = np.mean([e["steps"] for e in done]) if done else float("nan")
            stopped = f"{result.stopped['kind']}: {result.stopped['reason']}" if result.stopped else "-"
            print(f"| {name} | {args.difficulty:.2f} | {acc.value:.2f} [{acc.low:.2f}, {acc.high:.2f}] "
                  f"(n={len(done)}) | {poked:.2f} | {steps:.1f} | {stopped} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
