"""Deploy a trained Reach policy through each emulator, and inject faults: the safety guarantees must hold."""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import yaml

from robots.calibration import Calibration
from robots.so101 import so101_spec
from sim2real.cli import main
from sim2real.deploy.log import read_log

LAB = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "..", "..", "launch", "realities", "lab.yaml")))
GOALS = "[[-0.02, 0.05, 0.12], [-0.1, -0.05, 0.06]]"


def _deploy(policy, protocol, port, calibration, log, *extra):
    return main(["deploy", policy, "--driver", protocol, "--port", port, "--calibration", calibration,
                 "--log", str(log), *extra])


def _journal_radians(path: str, calibration: str) -> np.ndarray:
    """Every goal written to any servo, converted to joint angles (rad), one row per write."""
    cal = Calibration.from_json(open(calibration).read())
    joint = {j.servo_id: i for i, j in enumerate(cal.joints)}
    angles = []
    for line in open(path):
        record = json.loads(line)
        i = joint[record["id"]]
        ticks = np.array([j.offset for j in cal.joints], dtype=float)
        ticks[i] = record["ticks"]
        angles.append((i, cal.ticks_to_radians(ticks)[i]))
    return np.array(angles)


def _assert_within_limits(journal: str, calibration: str) -> int:
    spec = so101_spec()
    angles = _journal_radians(journal, calibration)
    assert len(angles) > 0
    index = angles[:, 0].astype(int)
    assert np.all(angles[:, 1] >= spec.lower[index] - 1e-3) and np.all(angles[:, 1] <= spec.upper[index] + 1e-3)
    return len(angles)


@pytest.mark.parametrize("protocol", ["dynamixel", "feetech"])
def test_trained_policy_reaches_goals_through_the_emulator(protocol, emulator, reach_policy, calibration_file,
                                                           tmp_path, capsys):
    journal = str(tmp_path / "journal.jsonl")
    em = emulator(protocol, journal=journal, **LAB)
    goals = tmp_path / "goals.json"
    goals.write_text(GOALS)
    log = tmp_path / "log.jsonl"
    # The default watchdog (3 periods late) rides out a scheduling hiccup on a shared CI core
    assert _deploy(reach_policy, protocol, em.port, calibration_file, log, "--episodes", "3", "--steps", "30",
                   "--goals-file", str(goals)) == 0
    records = read_log(str(log))
    episodes = [r for r in records if r["type"] == "episode"]
    assert len(episodes) == 3 and all(e["success"] for e in episodes), episodes
    assert max(e["final_distance"] for e in episodes) < 0.03
    assert records[-1]["type"] == "summary" and records[-1]["stopped"] is None
    _assert_within_limits(journal, calibration_file)
    out = tmp_path / "report.png"
    assert main(["deploy-report", str(log), "--out", str(out)]) == 0 and out.stat().st_size > 10_000


def _tripped(log) -> dict:
    records = read_log(str(log))
    assert records[-1]["type"] == "summary", "log must end with its summary"
    events = [r for r in records if r["type"] == "event"]
    assert len(events) == 1
    period = records[0]["period"]
    assert events[0]["stop_latency"] < period  # safe stop within one control period of the trip
    return events[0]


def test_link_dropped_mid_episode(emulator, reach_policy, calibration_file, tmp_path):
    em = emulator("dynamixel")
    killer = threading.Timer(6.0, em.process.kill)  # USB adapter pulled out
    killer.start()
    log = tmp_path / "log.jsonl"
    try:
        code = _deploy(reach_policy, "dynamixel", em.port, calibration_file, log, "--episodes", "20")
    finally:
        killer.cancel()
    assert code == 6  # the adapter is gone, so the hold cannot be written either: "the safe stop itself failed"
    event = _tripped(log)  # (the servos' own bus watchdog stops them)
    assert event["kind"] in ("link", "watchdog") and event["safe_stop_error"] is not None


def test_bus_goes_silent_gives_stale_state_and_a_safe_stop(emulator, reach_policy, calibration_file, tmp_path):
    journal = str(tmp_path / "journal.jsonl")
    em = emulator("feetech", journal=journal, faults={"silent_after_s": 6.0})
    log = tmp_path / "log.jsonl"
    assert _deploy(reach_policy, "feetech", em.port, calibration_file, log, "--episodes", "20") == 3
    event = _tripped(log)
    assert event["kind"] == "watchdog" and ("stale" in event["reason"] or "overrun" in event["reason"])
    _assert_within_limits(journal, calibration_file)


def test_latency_spikes_trip_the_overrun_watchdog(emulator, reach_policy, calibration_file, tmp_path):
    em = emulator("dynamixel", faults={"delay_probability": 0.2, "delay_s": 0.09, "after_s": 5.0})
    log = tmp_path / "log.jsonl"
    assert _deploy(reach_policy, "dynamixel", em.port, calibration_file, log, "--episodes", "5") == 3
    event = _tripped(log)
    assert event["kind"] == "watchdog" and ("overrun" in event["reason"] or "stale" in event["reason"])


def test_corrupt_and_dropped_replies_are_survived_or_stopped_safely(emulator, reach_policy, calibration_file,
                                                                   tmp_path):
    journal = str(tmp_path / "journal.jsonl")
    em = emulator("dynamixel", journal=journal, faults={"corrupt_probability": 0.03, "drop_probability": 0.02, "after_s": 4.0})
    log = tmp_path / "log.jsonl"
    code = _deploy(reach_policy, "dynamixel", em.port, calibration_file, log, "--episodes", "2", "--steps", "30",
                   "--goal=-0.05,0.0,0.1")
    records = read_log(str(log))
    assert records[-1]["type"] == "summary"
    assert code == 0 or (code == 3 and _tripped(log))
    _assert_within_limits(journal, calibration_file)


def test_stop_file_is_an_estop(emulator, reach_policy, calibration_file, tmp_path):
    em = emulator("feetech")
    stop = tmp_path / "STOP"
    threading.Timer(5.0, stop.touch).start()
    log = tmp_path / "log.jsonl"
    assert _deploy(reach_policy, "feetech", em.port, calibration_file, log, "--episodes", "20",
                   "--stop-file", str(stop)) == 4
    assert _tripped(log)["kind"] == "estop"


class _WildPolicy:
    """Saturated actions (a non-finite one is a safe stop: tested below)."""

    def reset_trial(self) -> None:
        return None

    def act(self, obs):
        return np.array([5.0, -7.0, 9.0])

    def observe(self, reward, terminated, truncated) -> None:
        return None

    def goal_estimate(self):
        return None


class _JumpController:
    """A broken controller asking for targets far past every joint limit (and NaN now and then)."""

    def __init__(self, spec) -> None:
        self.spec, self.calls = spec, 0

    def to_command(self, action, state, robot):
        from sim2real.hal.types import JointCommand

        self.calls += 1
        if self.calls % 4 == 0:
            return JointCommand(np.full(len(self.spec.joints), np.nan))
        return JointCommand(self.spec.upper + 3.0 if self.calls % 2 else self.spec.lower - 3.0)


def _reach_rig(emulator, protocol: str, calibration: str, tmp_path):
    """(journal path, spec, Reach task, robot (not connected), lab scene) on a journaling ``protocol`` emulator."""
    from sim2real.hal.drivers import make_robot
    from sim2real.hal.lab_scene import LabScene
    from sim2real.tasks import make_task

    journal = str(tmp_path / "journal.jsonl")
    em = emulator(protocol, journal=journal)
    spec = so101_spec()
    task = make_task("reach", spec)
    robot = make_robot(protocol, spec, task.layout.robot_base, em.port, calibration=calibration)
    scene = LabScene()
    task.setup(scene)
    return journal, spec, task, robot, scene


def test_nan_and_jumps_past_the_limits_never_reach_the_servos(emulator, calibration_file, tmp_path):
    from sim2real.deploy.goals import GoalSource
    from sim2real.deploy.log import DeploymentLog
    from sim2real.deploy.arm import DeploymentLoop
    from sim2real.deploy.loop import LoopConfig
    from sim2real.hal.safety import SafetyConfig, SafetyLayer

    journal, spec, task, robot, scene = _reach_rig(emulator, "feetech", calibration_file, tmp_path)
    log = DeploymentLog(str(tmp_path / "log.jsonl"))
    with robot:
        safety = SafetyLayer(SafetyConfig.from_spec(spec, task.layout.robot_base), robot.model, 1 / 25)
        loop = DeploymentLoop(robot, task, _JumpController(spec), _WildPolicy(), scene, GoalSource(), safety, log,
                              LoopConfig(25.0, episodes=1, steps_per_episode=40))
        result = loop.run()
    log.close()
    assert result.stopped is None and len(result.episodes) == 1
    kinds = {i.kind for i in safety.interventions}
    assert {"action_clip", "nan_command", "joint_limit", "max_step", "rate_limit"} <= kinds
    sent = np.array([r["applied"] for r in read_log(str(tmp_path / "log.jsonl")) if r["type"] == "step"])
    assert np.all(np.isfinite(sent)) and np.all(sent >= spec.lower - 1e-3) and np.all(sent <= spec.upper + 1e-3)
    assert _assert_within_limits(journal, calibration_file) >= 6 * 40


class _FailingPolicy:
    """Acts ``action`` for ``good`` steps, then raises (a crashed policy) or returns NaN."""

    def __init__(self, good: int, fault: str, action=(0.5, -0.5, 0.5)) -> None:
        self.good, self.fault, self.action, self.calls = good, fault, np.asarray(action, dtype=float), 0

    def reset_trial(self) -> None:
        self.calls = 0  # after the loop's warm-up call

    def act(self, obs):
        self.calls += 1
        if self.calls <= self.good:
            return self.action
        if self.fault == "raise":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return np.array([0.1, np.nan, 0.2])

    def observe(self, reward, terminated, truncated) -> None:
        return None

    def goal_estimate(self):
        return None


def _last_goals(journal: str, calibration: str) -> np.ndarray:
    """The last goal written to each servo (rad, joint order) and how many writes there were."""
    cal = Calibration.from_json(open(calibration).read())
    last = {}
    for line in open(journal):
        record = json.loads(line)
        last[record["id"]] = record["ticks"]
    return cal.ticks_to_radians(np.array([last[j.servo_id] for j in cal.joints], dtype=float))


@pytest.mark.parametrize("fault, kind", [("raise", "error"), ("nan", "policy")])
def test_a_policy_that_crashes_or_returns_nan_mid_episode_holds_the_arm(fault, kind, emulator, calibration_file,
                                                                         tmp_path):
    from sim2real.deploy.goals import GoalSource
    from sim2real.deploy.log import DeploymentLog
    from sim2real.deploy.arm import DeploymentLoop
    from sim2real.deploy.loop import LoopConfig
    from sim2real.hal.safety import SafetyConfig, SafetyLayer
    from sim2real.tasks import make_controller

    journal, spec, task, robot, scene = _reach_rig(emulator, "dynamixel", calibration_file, tmp_path)
    log_path = str(tmp_path / "log.jsonl")
    log = DeploymentLog(log_path)
    robot.connect()
    try:
        safety = SafetyLayer(SafetyConfig.from_spec(spec, task.layout.robot_base), robot.model, 1 / 25)
        loop = DeploymentLoop(robot, task, make_controller("ee", spec, False, task.layout.robot_base),
                              _FailingPolicy(15, fault), scene, GoalSource(), safety, log,
                              LoopConfig(25.0, episodes=1, steps_per_episode=40))
        result = loop.run()
        log.close()
        threading.Event().wait(0.3)  # the arm was moving when it stopped: its servos settle on the hold goal, and
        writes = sum(1 for _ in open(journal))  # the emulator's journal takes that goal, before anything is compared
        held = [robot.read_state().positions]
        threading.Event().wait(0.4)
        held.append(robot.read_state().positions)
        assert sum(1 for _ in open(journal)) == writes  # nothing written after the safe stop
    finally:
        robot.disconnect()
    assert result.stopped["kind"] == kind and result.stopped["safe_stop_error"] is None, result.stopped
    records = read_log(log_path)
    assert records[-1]["type"] == "summary" and [r for r in records if r["type"] == "event"][0]["kind"] == kind
    assert ("CUDA error" if fault == "raise" else "non-finite action") in result.stopped["reason"]
    assert max(r["step"] for r in records if r["type"] == "step" and r["phase"] == "policy") == 14
    goals = _last_goals(journal, calibration_file)
    assert np.max(np.abs(held[1] - held[0])) < 0.02  # the arm holds still under torque
    assert np.max(np.abs(goals[:5] - held[1][:5])) < 0.05  # where the last goal (the hold) told it to be
    _assert_within_limits(journal, calibration_file)


def _nan_weights(run_dir: str, dest) -> str:
    """A copy of a trained run whose network weights are all NaN (an actor that raises inside ``predict``)."""
    import shutil

    import torch

    from sim2real.policy_files import load_policy
    from sim2real.train import run_model_path

    shutil.copytree(run_dir, dest)
    policy, _ = load_policy(str(dest), None)
    with torch.no_grad():
        for parameter in policy.batch.model.policy.parameters():
            parameter.fill_(float("nan"))
    policy.batch.model.save(run_model_path(str(dest))[1])
    return str(dest)


def test_a_policy_with_nan_weights_is_stopped_before_the_arm_moves(emulator, reach_policy, calibration_file,
                                                                   tmp_path, capsys):
    journal = str(tmp_path / "journal.jsonl")
    em = emulator("feetech", journal=journal)
    log = tmp_path / "log.jsonl"
    run = _nan_weights(reach_policy, tmp_path / "nan_run")
    capsys.readouterr()
    assert _deploy(run, "feetech", em.port, calibration_file, log, "--episodes", "2") == 5
    out = capsys.readouterr().out
    assert "stopped by error: ValueError" in out and "safe stop in" in out
    records = read_log(str(log))
    event = _tripped(log)
    assert event["kind"] == "error" and "ValueError" in event["reason"] and "predict" in event["traceback"]
    assert not [r for r in records if r["type"] == "step"]  # stopped at the warm-up call, before any motion
    connect, hold = [json.loads(line) for line in open(journal)][-12:-6], [json.loads(line) for line in open(journal)][-6:]
    assert sorted(r["id"] for r in hold) == sorted(r["id"] for r in connect)  # the hold reached every servo
    assert all(abs(a["ticks"] - b["ticks"]) <= 3 for a, b in zip(connect, hold))
