"""Deployments with injected failures through the Dynamixel emulator: does every one end in the safe stop?

Each run drives the SO-101 Reach task on ``sim2real emulate dynamixel`` (its own process, a journal of every goal
written) through the real ServoArm and :class:`DeploymentLoop`. At a random policy step (seeded) one failure is
injected: the policy raises, the policy returns NaN/inf, the task raises, the driver's read or write raises a plain
exception, the log's disk is full. A run counts as safely stopped when ``safe_stop`` was called exactly once, the
stop record names the failure, nothing was sent after the hold, and the emulator's journal holds exactly the goals
that were sent (the connect write, every step's command, the hold).

    .venv/bin/python benchmarks/deploy_fault_injection.py --runs 30 --seed 0
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "hal"))

from robots.calibration import calibration_from_spec  # noqa: E402
from robots.so101 import so101_spec  # noqa: E402
from sim2real.deploy.faults import exit_code  # noqa: E402
from sim2real.deploy.goals import GoalSource  # noqa: E402
from sim2real.deploy.log import DeploymentLog  # noqa: E402
from sim2real.deploy.arm import DeploymentLoop  # noqa: E402
from sim2real.deploy.loop import LoopConfig  # noqa: E402
from sim2real.evaluation.emulated import EmulatorProcess  # noqa: E402
from sim2real.hal.drivers import make_robot  # noqa: E402
from sim2real.hal.lab_scene import LabScene  # noqa: E402
from sim2real.hal.safety import SafetyConfig, SafetyLayer  # noqa: E402
from sim2real.tasks import make_controller, make_task  # noqa: E402
from test_deploy_faults import FailingLog  # noqa: E402  (a real log whose disk fills up)

FAULTS = ("policy_raises", "policy_nan", "policy_inf", "task_raises", "read_raises", "write_raises", "log_full")
LAB = os.path.join(ROOT, "launch", "realities", "lab.yaml")


class Injected(Exception):
    """The failure put into a run."""


class Policy:
    """Moves toward +x; at call ``at`` (after the warm-up) fails as ``fault`` says."""

    def __init__(self, fault: str, at: int) -> None:
        self.fault, self.at, self.calls = fault, at, 0

    def reset_trial(self) -> None:
        self.calls = 0

    def act(self, obs):
        self.calls += 1
        if self.calls == self.at:
            if self.fault == "policy_raises":
                raise Injected("policy raised")
            if self.fault in ("policy_nan", "policy_inf"):
                return np.array([0.3, np.nan if self.fault == "policy_nan" else np.inf, 0.0])
        return np.array([0.3, 0.0, 0.0])

    def observe(self, reward, terminated, truncated) -> None:
        return None

    def goal_estimate(self):
        return None


def one_run(fault: str, step: int, workdir: str, calibration: str) -> dict:
    spec = so101_spec()
    task = make_task("reach", spec)
    base = task.layout.robot_base
    journal = os.path.join(workdir, "journal.jsonl")
    with open(LAB) as source:
        reality = os.path.join(workdir, "lab.yaml")
        with open(reality, "w") as target:
            target.write(source.read())
    emulator = EmulatorProcess.__new__(EmulatorProcess)  # the eval's emulator process, with a journal
    import subprocess

    emulator.process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "emulate", "dynamixel", "--reality",
                                         reality, "--journal", journal], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
    emulator.port = emulator.process.stdout.readline().split()[-1]
    with emulator:
        robot = make_robot("dynamixel", spec, base, emulator.port, calibration=calibration)
        stops: list[int] = []  # sends done when each safe stop began
        sent = []  # 1 per command that reached the bus
        real_stop = robot.safe_stop

        def counted_stop() -> None:
            stops.append(len(sent))
            real_stop()
        robot.safe_stop = counted_stop
        calls = {"read": 0, "write": 0}
        for name, method in (("read", "read_state"), ("write", "send_command")):
            original = getattr(robot, method)

            def failing(*args, _name=name, _original=original, **kwargs):
                calls[_name] += 1
                if fault == f"{_name}_raises" and calls[_name] == step + 5:
                    raise Injected(f"driver {_name} raised")
                result = _original(*args, **kwargs)
                if _name == "write":
                    sent.append(1)
                return result
            setattr(robot, method, failing)
        if fault == "task_raises":
            real = task.achieved_goal
            count = {"n": 0}

            def achieved_goal(state, scene):
                count["n"] += 1
                if count["n"] == step:
                    raise Injected("task raised")
                return real(state, scene)
            task.achieved_goal = achieved_goal
        scene = LabScene()
        task.setup(scene)
        path = os.path.join(workdir, "log.jsonl")
        log = FailingLog(path, 12 + step) if fault == "log_full" else DeploymentLog(path)
        robot.connect()
        try:
            safety = SafetyLayer(SafetyConfig.from_spec(spec, base), robot.model, 1 / 25)
            loop = DeploymentLoop(robot, task, make_controller("ee", spec, False, base), Policy(fault, step + 1),
                                  scene, GoalSource(), safety, log, LoopConfig(25.0, 1, 40))
            try:
                result, escaped = loop.run(), None
            except Exception as err:  # an exception the loop let out: no stop record (the loop did not stop it)
                result, escaped = None, f"{type(err).__name__}: {err}"
        finally:
            log.close()
            robot.disconnect()
    servos = len(spec.joints)
    journaled = sum(1 for _ in open(journal))  # complete: the emulator has exited
    stopped = (result.stopped if result is not None else None) or {"reason": escaped}
    safe = (result is not None and len(stops) == 1 and stopped.get("safe_stop_error") is None
            and len(sent) == stops[0] + 1  # the hold, and nothing after it
            and journaled == servos * (1 + len(sent)))  # the connect write, every command and the hold arrived
    return {"fault": fault, "step": step, "safe_stop_calls": len(stops), "kind": stopped.get("kind"),
            "reason": stopped.get("reason"), "exit_code": exit_code(result.stopped) if result is not None else None, "safe": safe,
            "sends_after_stop": len(sent) - stops[0] if stops else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every run here")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        calibration = os.path.join(tmp, "cal.json")
        with open(calibration, "w") as handle:
            handle.write(calibration_from_spec(so101_spec()).to_json())
        for i in range(args.runs):
            fault, step = FAULTS[i % len(FAULTS)], int(rng.integers(0, 35))
            workdir = os.path.join(tmp, f"run{i}")
            os.makedirs(workdir)
            rows.append(one_run(fault, step, workdir, calibration))
            r = rows[-1]
            print(f"{i:3d} {fault:14s} step {step:2d}: stop {r['kind']} exit {r['exit_code']} "
                  f"safe {r['safe']} ({r['reason']})", flush=True)
    unsafe = [r for r in rows if not r["safe"]]
    print(f"runs with an injected failure: {len(rows)}; ended without the safe stop: {len(unsafe)}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
