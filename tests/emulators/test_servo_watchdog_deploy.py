"""A host stall during a deployment, through the bus emulators and the stock SDKs, all on one fake clock (the
loop, the driver's instruction timing and the emulator's physics and bus watchdog).

Dynamixel: a stall longer than the Bus_Watchdog time makes the servos stop and refuse goal writes; the driver must
notice (the goal sync write has no reply) and the deployment must end in the safe stop naming the servos' watchdog,
the arm holding with torque on. Feetech STS servos have no bus watchdog: they hold the last goal through a stall and
follow the next ones. The loop's own watchdog is set looser than the servos' here (as ``--overrun-after`` allows),
so only the driver's detection can stop the run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fake_clock import FakeClock
from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.deploy.arm import DeploymentLoop
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog, read_log
from sim2real.deploy.loop import LoopConfig
from sim2real.emulators.reality import load_reality
from sim2real.emulators.server import BusEmulator
from sim2real.hal.dynamixel import BUS_WATCHDOG, TORQUE_ENABLE, DynamixelBus
from sim2real.hal.feetech import FeetechBus
from sim2real.hal.lab_scene import LabScene
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.servo_arm import ServoArm
from sim2real.tasks import make_controller, make_task

RATE_HZ = 25.0
BUS_WATCHDOG_S = 0.1
STALL_S = 0.3  # the host stops talking to the bus this long: three bus watchdog times
BUSES = {"dynamixel": DynamixelBus, "feetech": FeetechBus}


class StallingPolicy:
    """Pushes the end effector one way; at its ``stall_at``-th call (1: the warm-up) the host freezes for
    ``STALL_S`` on the fake clock before answering, and from then on pushes the other way."""

    def __init__(self, clock: FakeClock, stall_at: int | None) -> None:
        self.clock, self.stall_at, self.calls = clock, stall_at, 0
        self.stalled_at: float | None = None

    def reset_trial(self) -> None:
        return None

    def act(self, obs):
        self.calls += 1
        if self.calls == self.stall_at:
            self.stalled_at = self.clock.now
            self.clock.spend(STALL_S)
        return np.array([0.6, -0.4, 0.3]) * (1.0 if self.stalled_at is None else -1.0)

    def observe(self, reward, terminated, truncated) -> None:
        return None

    def goal_estimate(self):
        return None


@pytest.fixture
def rig(threaded_emulator, tmp_path):
    """``make(protocol, stall_at, steps)`` → (loop, arm, emulator, policy, log path, journal path, clock), the arm
    connected on a fresh emulator, one episode of ``steps``; ``loop.again()`` builds another deployment on the same
    connection. The arm is disconnected after the test."""
    arms = []

    def make(protocol: str, stall_at: int | None, steps: int = 12):
        clock = FakeClock()
        journal = str(tmp_path / f"journal-{len(arms)}.jsonl")
        em = threaded_emulator(lambda path: BusEmulator(protocol, load_reality(path), journal=journal,
                                                        clock=lambda: clock.now))
        spec = so101_spec()
        task = make_task("reach", spec)
        base = task.layout.robot_base
        calibration = calibration_from_spec(spec)
        bus = BUSES[protocol](em.port, calibration.ids, 1_000_000, clock=clock)
        arm = ServoArm(spec, bus, calibration, base, bus_watchdog_s=BUS_WATCHDOG_S)
        arm.connect()
        arms.append(arm)
        scene = LabScene()
        task.setup(scene)
        policy = StallingPolicy(clock, stall_at)
        config = LoopConfig(RATE_HZ, episodes=1, steps_per_episode=steps, home_tolerance=0.3,
                            stale_after_s=60.0, overrun_after_s=60.0)  # the loop's own watchdog cannot see the stall

        def deployment(index: int) -> tuple[DeploymentLoop, str]:
            path = str(tmp_path / f"log-{len(arms)}-{index}.jsonl")
            safety = SafetyLayer(SafetyConfig.from_spec(spec, base), arm.model, 1.0 / RATE_HZ)
            loop = DeploymentLoop(arm, task, make_controller("ee", spec, task.uses_gripper, base), policy, scene,
                                  GoalSource(), safety, DeploymentLog(path), config, clock=clock, sleep=clock.sleep)
            loop.again = lambda: deployment(index + 1)  # type: ignore[attr-defined]
            return loop, path

        loop, path = deployment(0)
        return loop, arm, em, policy, path, journal, clock

    yield make
    for arm in arms:
        arm.disconnect()


def _run(loop, path: str):
    result = loop.run()
    loop.log.close()
    return result, read_log(path)


def _goal_times(journal: str) -> list[float]:
    with open(journal, encoding="utf-8") as handle:
        return [json.loads(line)["t"] for line in handle]


def _count_checks(arm: ServoArm) -> list[list[int]]:
    """Record every Bus_Watchdog check the driver makes (what it found)."""
    found: list[list[int]] = []
    check = arm.bus.watchdog_tripped

    def counted() -> list[int]:
        found.append(check())
        return found[-1]

    arm.bus.watchdog_tripped = counted  # type: ignore[method-assign]
    return found


def test_no_stall_no_watchdog_check_and_no_stop(rig):
    loop, arm, em, _, path, _, _ = rig("dynamixel", stall_at=None)
    checks = _count_checks(arm)
    result, records = _run(loop, path)
    assert result.stopped is None, result.stopped
    assert checks == [[]]  # one check as the loop takes control; none per period while the host keeps talking
    assert sum(r["type"] == "step" and r["phase"] == "policy" for r in records) == 12
    assert all(s.table.get("Bus_Watchdog") == 5 for s in em.bus.servos)  # armed (5 x 20 ms), never expired


def test_a_stall_mid_episode_trips_the_dynamixel_bus_watchdog_and_ends_in_the_safe_stop(rig):
    loop, arm, em, policy, path, journal, clock = rig("dynamixel", stall_at=6)  # the 5th policy step stalls
    checks = _count_checks(arm)
    result, records = _run(loop, path)
    assert all(s.table.get("Bus_Watchdog") == -1 for s in em.bus.servos)  # the servos' watchdog really expired
    stopped = result.stopped
    assert stopped is not None and stopped["kind"] == "watchdog", stopped
    assert stopped["reason"].startswith("servos stopped: bus watchdog expired on servo(s) [1, 2, 3, 4, 5, 6]")
    assert stopped["safe_stop_error"] is None
    events = [r for r in records if r["type"] == "event"]
    assert len(events) == 1 and events[0]["reason"] == stopped["reason"] and "\n" not in stopped["reason"]
    assert checks == [[], [1, 2, 3, 4, 5, 6]]  # at take-control, then right after the stalled step's goal write
    assert sum(r["type"] == "step" and r["phase"] == "policy" for r in records) == 4  # stopped within that step
    # what the robot does after the safe stop: it holds where the watchdog stopped it, torque on, goals refused
    stall_t = policy.stalled_at - (clock.now - em.now())  # on the emulator's time axis (the journal's)
    assert all(t < stall_t for t in _goal_times(journal)), "a goal was accepted after the stall"
    before = arm.read_state().positions  # reading still works after the stop
    for _ in range(10):  # half a second, looked at every 50 ms
        clock.spend(0.05)
        drift = np.max(np.abs(arm.read_state().positions - before))
        assert drift < 0.005, f"the arm moved {drift:.4f} rad after the safe stop"
    assert [arm.bus.read_register(i, TORQUE_ENABLE, 1) for i in arm.bus.ids] == [1] * 6
    assert [arm.bus.read_register(i, BUS_WATCHDOG, 1) for i in arm.bus.ids] == [0xFF] * 6


def test_idle_before_control_is_rearmed_not_stopped(rig):
    """The watchdog expiring while the host is idle on purpose (a slow untimed warm-up call; the time between two
    deployments on one connection) is harmless: the servos held their pose. Taking control re-arms them."""
    loop, arm, em, policy, path, journal, clock = rig("dynamixel", stall_at=1)  # the warm-up call stalls
    result, records = _run(loop, path)
    assert result.stopped is None and arm.rearms == 1, result.stopped
    stall_t = policy.stalled_at - (clock.now - em.now())
    assert sum(t > stall_t for t in _goal_times(journal)) >= 12 * 6  # the servos took every goal after it
    assert all(s.table.get("Bus_Watchdog") == 5 for s in em.bus.servos)
    clock.spend(STALL_S)  # idle between deployments: the watchdog expires again
    second, path = loop.again()
    result, records = _run(second, path)
    assert result.stopped is None and arm.rearms == 2, result.stopped
    assert sum(r["type"] == "step" and r["phase"] == "policy" for r in records) == 12


def test_feetech_servos_have_no_bus_watchdog_and_follow_again_after_a_stall(rig):
    loop, arm, em, policy, path, journal, clock = rig("feetech", stall_at=6, steps=24)
    result, records = _run(loop, path)
    assert arm.bus.watchdog_s == 0.0 and not arm.bus.has_watchdog
    assert result.stopped is None, result.stopped
    policy_steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    assert len(policy_steps) == 24
    stall_t = policy.stalled_at - (clock.now - em.now())  # on the emulator's time axis (the journal's)
    assert sum(t > stall_t for t in _goal_times(journal)) == 20 * 6  # the stalled step's goal and every later one
    # the loop runs the missed deadlines back to back (no time passes), then the arm follows the reversed push
    moved = np.asarray(policy_steps[-1]["positions"]) - np.asarray(policy_steps[12]["positions"])
    assert np.max(np.abs(moved)) > 0.05, moved


def test_a_write_without_the_check_leaves_the_silence_for_the_next_instruction(rig):
    _, arm, em, _, _, _, clock = rig("dynamixel", stall_at=None)
    clock.spend(STALL_S)
    arm.safe_stop()  # the hold write does not wait for the check
    assert arm.bus.expired == []
    arm.read_state()  # the silence before the hold write is still on the books: this read asks
    assert arm.bus.expired == [1, 2, 3, 4, 5, 6] and "0.100 s" in arm.bus.expiry
