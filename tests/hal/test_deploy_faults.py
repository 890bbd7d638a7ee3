"""The deployment loop's guard on a fake clock: any exception inside the loop (policy, task, driver, camera, log),
a non-finite action, a failing safe stop and a stall all end in the safe stop, with the cause in the log and the
documented exit code. The arm is the PyBullet HAL backend; only the clock and the injected faults are made up."""
from __future__ import annotations

import errno

import numpy as np
import pytest

from robots.kinematic_model import KinematicModel
from robots.so101 import so101_spec
from sim2real.deploy import faults
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog, read_log
from sim2real.deploy.arm import DeploymentLoop
from sim2real.deploy.loop import LoopConfig, run_connected
from sim2real.hal.camera import Camera, Frame
from sim2real.hal.lab_scene import LabScene
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.sim import PyBulletRobot, PyBulletWorld
from sim2real.tasks import make_controller, make_task
from fake_clock import FakeClock

RATE_HZ = 25.0
PERIOD = 1.0 / RATE_HZ


class ClockedArm(PyBulletRobot):
    """The simulated SO-101 as a HAL robot on the fake clock: each read advances physics one control period and is
    stamped now; records every command sent and every safe stop."""

    def __init__(self, world: PyBulletWorld, clock: FakeClock, base) -> None:
        super().__init__(world, so101_spec(), base)
        self.clock, self.sent, self.safe_stops = clock, [], []
        self.fail_read_at = self.fail_send_at = self.fail_stop = None
        self.reads = 0

    def read_state(self):
        self.reads += 1
        if self.reads == self.fail_read_at:
            raise KeyError("servo id 7 missing from the sync-read reply")  # not a BusError: a driver bug
        self.world.step()
        state = super().read_state()
        state.timestamp = self.clock.now
        return state

    def send_command(self, command):
        if len(self.sent) + 1 == self.fail_send_at:
            self.fail_send_at = None  # once: the safe stop's hold command goes through
            raise ValueError("goal ticks out of the driver's table")
        applied = super().send_command(command)
        self.sent.append((self.clock.now, applied.positions.copy()))
        return applied

    def safe_stop(self) -> None:
        self.safe_stops.append(self.clock.now)
        if self.fail_stop is not None:
            raise self.fail_stop
        super().safe_stop()
        self.sent.pop()  # the hold command itself is not one of the loop's


class ConstantPolicy:
    """Acts ``action`` (or runs ``at[call]()`` first: raise, stall, return NaN); counts its calls."""

    def __init__(self, action=(0.2, 0.0, -0.1), at=None) -> None:
        self.action, self.at, self.calls = np.asarray(action, dtype=float), at or {}, 0

    def reset_trial(self) -> None:
        return None

    def act(self, obs):
        self.calls += 1
        hook = self.at.get(self.calls)
        result = hook() if hook is not None else None
        return self.action if result is None else result

    def observe(self, reward, terminated, truncated) -> None:
        return None

    def goal_estimate(self):
        return None


class FailingLog(DeploymentLog):
    """A real JSON-lines log whose disk fills up after ``records`` records."""

    def __init__(self, path: str, records: int) -> None:
        super().__init__(path)
        self.left = records

    def write(self, record_type, /, **fields) -> None:
        if self.left == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.left -= 1
        super().write(record_type, **fields)


class BrokenCamera(Camera):
    """A camera whose decoder crashes on its ``fail_at``-th frame (a plain exception, not a CameraError)."""

    height, width = 8, 8

    def __init__(self, clock: FakeClock, fail_at: int) -> None:
        self.clock, self.fail_at, self.frames = clock, fail_at, 0

    def connect(self) -> None:
        return None

    def disconnect(self) -> None:
        return None

    def read_frame(self) -> Frame:
        self.frames += 1
        if self.frames == self.fail_at:
            raise RuntimeError("decoder crashed")
        return Frame(np.zeros((self.height, self.width, 3), np.uint8), self.clock.now)


@pytest.fixture
def rig(tmp_path):
    """``make(policy=..., log=..., camera=..., **config)`` → (loop, robot, clock, log path) on a fresh world."""
    worlds = []

    def make(policy=None, log=None, camera=None, task=None, **config):
        world = PyBulletWorld()
        worlds.append(world)
        clock = FakeClock()
        task = task or make_task("reach", so101_spec())
        base = task.layout.robot_base
        robot = ClockedArm(world, clock, base)
        robot.reset_joints(np.asarray(task.spec.home, dtype=float))
        robot.sent.clear()
        scene = LabScene()
        task.setup(scene)
        spec = task.spec
        controller = make_controller("ee", spec, task.uses_gripper, base)
        safety = SafetyLayer(SafetyConfig.from_spec(spec, base), KinematicModel(spec, base), PERIOD)
        path = str(tmp_path / f"log-{len(worlds)}.jsonl")
        log = log(path) if log is not None else DeploymentLog(path)
        settings = {"episodes": 2, "steps_per_episode": 10, **config}
        loop = DeploymentLoop(robot, task, controller, policy or ConstantPolicy(), scene, GoalSource(), safety, log,
                              LoopConfig(RATE_HZ, **settings), clock=clock, camera=camera, sleep=clock.sleep)
        return loop, robot, clock, log, path

    yield make
    for world in worlds:
        world.close()


def _stopped(loop, robot, log, path) -> tuple[dict, list[dict]]:
    """Run; the robot was safe-stopped once and nothing was sent after it; returns (stop record, log records)."""
    result = loop.run()
    log.close()
    assert result.stopped is not None
    assert len(robot.safe_stops) == 1
    assert all(t <= robot.safe_stops[0] for t, _ in robot.sent), "a command reached the robot after the safe stop"
    return result.stopped, read_log(path)


def _event(records: list[dict]) -> dict:
    assert records[-1]["type"] == "summary"
    events = [r for r in records if r["type"] == "event"]
    assert len(events) == 1 and records[-1]["stopped"]["reason"] == events[0]["reason"]
    return events[0]


def test_a_clean_run_ends_without_a_stop(rig):
    loop, robot, _, log, path = rig()
    result = loop.run()
    log.close()
    assert result.stopped is None and len(result.episodes) == 2 and robot.safe_stops == []
    assert faults.exit_code(result.stopped) == faults.EXIT_DONE


def test_a_raising_policy_is_safe_stopped_and_named(rig):
    def fail():
        raise ValueError("Expected parameter loc of Normal to satisfy the constraint Real()")

    loop, robot, _, log, path = rig(policy=ConstantPolicy(at={6: fail}))
    stopped, records = _stopped(loop, robot, log, path)
    event = _event(records)
    assert event["kind"] == "error" and event["safe_stop_error"] is None
    assert "ValueError: Expected parameter loc" in event["reason"] and "test_deploy_faults.py" in event["reason"]
    assert "Traceback" in event["traceback"] and "fail" in event["traceback"]
    assert faults.exit_code(stopped) == faults.EXIT_FAULT


def test_a_policy_that_raises_at_its_first_call_stops_before_anything_moves(rig):
    def fail():
        raise RuntimeError("weights are NaN")

    loop, robot, _, log, path = rig(policy=ConstantPolicy(at={1: fail}))
    stopped, records = _stopped(loop, robot, log, path)
    assert robot.sent == [] and stopped["kind"] == "error" and "weights are NaN" in stopped["reason"]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_action_never_reaches_the_robot(rig, bad):
    loop, robot, _, log, path = rig(policy=ConstantPolicy(at={4: lambda: np.array([0.1, bad, 0.0])}))
    sent_before = []
    stopped, records = _stopped(loop, robot, log, path)
    sent_before = len(robot.sent)
    event = _event(records)
    assert event["kind"] == "policy" and "non-finite action" in event["reason"] and "step 2" in event["reason"]
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    assert len(steps) == 2 and sent_before == len([r for r in records if r["type"] == "step"])
    assert all(np.all(np.isfinite(p)) for _, p in robot.sent)
    assert faults.exit_code(stopped) == faults.EXIT_FAULT


def test_a_task_exception_is_safe_stopped(rig):
    task = make_task("reach", so101_spec())
    real = task.achieved_goal
    calls = {"n": 0}

    def achieved_goal(state, scene):
        calls["n"] += 1
        if calls["n"] == 5:
            raise ZeroDivisionError("float division by zero")
        return real(state, scene)

    task.achieved_goal = achieved_goal
    loop, robot, _, log, path = rig(task=task)
    stopped, records = _stopped(loop, robot, log, path)
    assert _event(records)["kind"] == "error" and "ZeroDivisionError" in stopped["reason"]


@pytest.mark.parametrize("where", ["read", "send"])
def test_a_driver_exception_is_safe_stopped(rig, where):
    loop, robot, _, log, path = rig()
    setattr(robot, f"fail_{where}_at", 12)
    stopped, records = _stopped(loop, robot, log, path)
    event = _event(records)
    expected = "KeyError" if where == "read" else "ValueError"
    assert event["kind"] == "error" and expected in event["reason"] and "ClockedArm" not in event["reason"]
    assert "test_deploy_faults.py" in event["reason"]  # names the driver method that raised
    assert faults.exit_code(stopped) == faults.EXIT_FAULT


def test_a_camera_exception_is_safe_stopped(rig):
    task = make_task("reach", so101_spec())
    policy = ConstantPolicy()
    loop, robot, clock, log, path = rig(policy=policy, task=task, camera=None)
    loop.runner.camera = BrokenCamera(clock, fail_at=4)
    stopped, records = _stopped(loop, robot, log, path)
    assert _event(records)["kind"] == "error" and "RuntimeError: decoder crashed" in stopped["reason"]
    assert policy.calls == 3  # warm-up and two steps; the fourth frame never reached the policy


def test_a_log_that_fails_stops_the_robot_and_still_reports(rig):
    loop, robot, _, log, path = rig(log=lambda p: FailingLog(p, records=15))
    result = loop.run()
    log.close()
    assert len(robot.safe_stops) == 1 and result.stopped["kind"] == "error"
    assert "No space left on device" in result.stopped["reason"] and "log.py" not in result.stopped["reason"]
    assert result.log_error is not None and "No space left" in result.log_error  # event and summary not written
    assert len(read_log(path)) == 15
    assert faults.exit_code(result.stopped) == faults.EXIT_FAULT


def test_a_safe_stop_that_raises_is_recorded_and_gets_its_own_exit_code(rig):
    def fail():
        raise RuntimeError("policy crashed")

    loop, robot, _, log, path = rig(policy=ConstantPolicy(at={5: fail}))
    robot.fail_stop = OSError(errno.EIO, "Input/output error")
    stopped, records = _stopped(loop, robot, log, path)
    event = _event(records)
    assert "policy crashed" in event["reason"] and "Input/output error" in event["safe_stop_error"]
    assert faults.exit_code(stopped) == faults.EXIT_STOP_FAILED


def test_keyboard_interrupt_stops_the_robot_then_propagates(rig):
    def interrupt():
        raise KeyboardInterrupt

    loop, robot, _, log, path = rig(policy=ConstantPolicy(at={3: interrupt}))
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    log.close()
    assert len(robot.safe_stops) == 1 and read_log(path)[-1]["type"] == "summary"


def test_release_closes_everything_even_when_one_fails():
    closed = []

    def broken():
        raise OSError(errno.EIO, "port vanished")

    problems = faults.release(lambda: closed.append("log"), broken, None, lambda: closed.append("robot"))
    assert closed == ["log", "robot"] and len(problems) == 1 and "port vanished" in problems[0]


# --- the overrun watchdog's default (issue 18 item 7) ------------------------------------------------------------
def _late_steps(path: str) -> list[float]:
    return [r["late"] / PERIOD for r in read_log(path) if r["type"] == "step" and r["phase"] == "policy"]


def test_the_default_watchdog_rides_out_a_scheduling_hiccup(rig):
    """A step that takes 3.5 periods (the policy descheduled on a busy machine: the next step starts ~2.5 periods
    late) does not stop the robot at the default limit; the loop catches up on its fixed schedule."""
    clock_box = {}
    loop, robot, clock, log, path = rig(policy=ConstantPolicy(at={8: lambda: clock_box["clock"].spend(3.5 * PERIOD)}))
    clock_box["clock"] = clock
    result = loop.run()
    log.close()
    assert result.stopped is None and robot.safe_stops == [] and len(result.episodes) == 2
    assert 2.4 < max(_late_steps(path)) < 3.0


@pytest.mark.parametrize("freeze_periods", [4.5, 5.0, 20.0])
def test_the_default_watchdog_trips_on_a_real_stall(rig, freeze_periods):
    clock_box = {}
    loop, robot, clock, log, path = rig(
        policy=ConstantPolicy(at={8: lambda: clock_box["clock"].spend(freeze_periods * PERIOD)}))
    clock_box["clock"] = clock
    stopped, records = _stopped(loop, robot, log, path)
    assert stopped["kind"] == "watchdog" and "loop overrun" in stopped["reason"]
    late_ms = float(stopped["reason"].split("started ")[1].split(" ms")[0])
    assert late_ms / 1e3 > loop.config.overrun_limit  # tripped on the step after the freeze, nothing sent late
    assert max(r["step"] for r in records if r["type"] == "step" and r["phase"] == "policy") == 6


def test_priority_hint_is_applied_where_permitted_and_undone(rig):
    import os
    import threading

    from sim2real.deploy.timing import raised_priority

    thread = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, thread)
    with raised_priority("nice") as obtained:
        inside = os.getpriority(os.PRIO_PROCESS, thread)
    assert os.getpriority(os.PRIO_PROCESS, thread) == before
    assert (obtained, inside) == ("nice -10", -10) or (obtained, inside) == ("unchanged", before)
    with pytest.raises(ValueError):
        with raised_priority("realtime"):
            pass
    loop, robot, _, log, path = rig(priority="nice")
    loop.run()
    log.close()
    assert read_log(path)[0]["priority"] in ("nice -10", "unchanged")


class _Disconnects(ClockedArm):
    """The clocked arm, also counting disconnects."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.disconnects = 0

    def disconnect(self) -> None:
        self.disconnects += 1
        super().disconnect()


@pytest.fixture
def connected_arm():
    world = PyBulletWorld()
    task = make_task("reach", so101_spec())
    yield _Disconnects(world, FakeClock(), task.layout.robot_base)
    world.close()


def test_a_failure_before_the_loop_starts_still_safe_stops(connected_arm, tmp_path, capsys):
    """Building the safety layer or the loop raises after the robot connected: the robot is safe-stopped and
    disconnected, the stop names the cause, the exit code is the fault's."""
    def build(log, estop):
        raise ValueError("safety config: workspace_low above workspace_high")

    released = []
    result, problems = run_connected(connected_arm, str(tmp_path / "log.jsonl"), None, build,
                                     [lambda: released.append("camera")])
    assert len(connected_arm.safe_stops) == 1 and connected_arm.disconnects == 1 and released == ["camera"]
    assert result.stopped["kind"] == "error" and "workspace_low above" in result.stopped["reason"]
    assert problems == [] and faults.exit_code(result.stopped) == faults.EXIT_FAULT
    assert "deployment could not start: ValueError" in capsys.readouterr().err


def test_a_log_that_cannot_be_opened_after_connect_still_safe_stops(connected_arm, tmp_path):
    (tmp_path / "file").write_text("")  # a log path under a regular file: the open fails
    result, _ = run_connected(connected_arm, str(tmp_path / "file" / "log.jsonl"), None,
                              lambda log, estop: pytest.fail("the loop must not be built without a log"))
    assert len(connected_arm.safe_stops) == 1 and connected_arm.disconnects == 1
    assert result.stopped["kind"] == "error" and result.stopped["safe_stop_error"] is None


def test_a_dead_driver_at_a_setup_failure_is_exit_six(connected_arm, tmp_path):
    connected_arm.fail_stop = OSError(errno.EIO, "Input/output error")

    def build(log, estop):
        raise RuntimeError("estop: terminal vanished")

    result, _ = run_connected(connected_arm, str(tmp_path / "log.jsonl"), None, build)
    assert "Input/output error" in result.stopped["safe_stop_error"] and connected_arm.disconnects == 1
    assert faults.exit_code(result.stopped) == faults.EXIT_STOP_FAILED
