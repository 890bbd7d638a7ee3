"""Lossy servo buses: the stock SDKs (dynamixel-sdk, feetech-servo-sdk) through :class:`ServoArm` against fresh
in-process bus emulators whose faults come from the reality profile's ``faults`` section. Connect retries lost and
damaged replies, a silent bus fails in one bounded line, fault sequences are fresh per start unless seeded, nothing
outside the calibrated range is written at connect, and the rate limit holds across the deployment's phases."""
from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from robots.calibration import calibration_from_spec
from robots.kinematic_model import KinematicModel
from robots.so101 import so101_spec
from sim2real.deploy.goals import GoalSource
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.arm import DeploymentLoop
from sim2real.deploy.loop import LoopConfig
from sim2real.emulators.reality import load_reality
from sim2real.emulators.server import BusEmulator
from sim2real.hal.dynamixel import DynamixelBus
from sim2real.hal.feetech import FeetechBus
from sim2real.hal.lab_scene import LabScene
from sim2real.hal.safety import SafetyConfig, SafetyLayer
from sim2real.hal.servo_arm import ServoArm
from sim2real.hal.servo_bus import BusError
from sim2real.tasks import make_controller, make_task

BUSES = {"dynamixel": DynamixelBus, "feetech": FeetechBus}
LOSSY = {"drop_probability": 0.01, "corrupt_probability": 0.01}
STARTS = 10


@pytest.fixture
def bus_emulator(threaded_emulator):
    """Factory ``bus_emulator(protocol, journal=None, **faults)``: a fresh emulator serving in a thread, these
    ``faults`` read from its reality profile."""

    def start(protocol: str, journal: str | None = None, **faults) -> BusEmulator:
        return threaded_emulator(lambda path: BusEmulator(protocol, load_reality(path), journal=journal), **faults)

    return start


def _arm(protocol: str, port: str, calibration=None, base=(0.0, 0.0, 0.0), latency_ms: float = 16.0) -> ServoArm:
    spec = so101_spec()
    calibration = calibration or calibration_from_spec(spec)
    return ServoArm(spec, BUSES[protocol](port, calibration.ids, 1_000_000, latency_ms), calibration, base)


def _goals(journal: str) -> list[dict]:
    with open(journal, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("protocol", sorted(BUSES))
def test_connect_succeeds_in_every_fresh_start_at_one_percent_loss(protocol, bus_emulator):
    faults = 0
    for _ in range(STARTS):
        em = bus_emulator(protocol, **LOSSY)
        arm = _arm(protocol, em.port)
        try:
            arm.connect()
            assert np.all(np.isfinite(arm.read_state().positions))
        finally:
            arm.disconnect()
            em.stop()
        faults += em.stats["dropped"] + em.stats["corrupted"]
    assert faults > 0  # replies really were lost or damaged (P(none in 10 connects) < 1e-4)


@pytest.mark.parametrize("protocol", sorted(BUSES))
def test_a_silent_bus_fails_connect_in_one_line_after_bounded_retries(protocol, bus_emulator):
    em = bus_emulator(protocol, silent_after_s=0.0)
    arm = _arm(protocol, em.port, latency_ms=2.0)
    started = time.monotonic()
    with pytest.raises(BusError) as raised:
        arm.connect()
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "\n" not in message
    assert f"{em.port}: no answer from servo id(s) [1, 2, 3, 4, 5, 6] at 1000000 baud (4 tries each)" == message
    assert elapsed < 3.0  # 6 ids x 4 tries x (6 ms timeout + 6 ms settle), with room for a loaded machine


def _ping_outcomes(em: BusEmulator, protocol: str, count: int = 60) -> list[int]:
    """SDK results of ``count`` single pings (no retries) of servo 1: which replies the faults took."""
    bus = BUSES[protocol](em.port, [1])
    bus.open()
    try:
        return [bus.packets.ping(bus.port, 1)[1] for _ in range(count)]
    finally:
        bus.close()
        em.stop()


def test_fault_sequence_is_fresh_per_start_and_repeats_with_a_seed(bus_emulator):
    faults = {"drop_probability": 0.3}
    first, second = (_ping_outcomes(bus_emulator("dynamixel", **faults), "dynamixel") for _ in range(2))
    assert first != second  # P(equal) = (0.3² + 0.7²)^60 < 1e-14
    seeded = [_ping_outcomes(bus_emulator("dynamixel", seed=1234, **faults), "dynamixel") for _ in range(2)]
    assert seeded[0] == seeded[1] and len(set(seeded[0])) == 2  # the same replies lost, and some were


@pytest.mark.parametrize("protocol", sorted(BUSES))
def test_connect_writes_nothing_outside_the_calibrated_range(protocol, bus_emulator, tmp_path):
    journal = str(tmp_path / "journal.jsonl")
    em = bus_emulator(protocol, journal)
    spec = so101_spec()
    nominal = calibration_from_spec(spec)
    present = nominal.radians_to_ticks(np.asarray(spec.home, dtype=float))  # the emulated arm powers up at home
    joints = list(nominal.joints)
    joints[1] = dataclasses.replace(joints[1], min_ticks=int(present[1]) + 1)  # recorded range starts above it
    calibration = dataclasses.replace(nominal, joints=tuple(joints))
    arm = _arm(protocol, em.port, calibration)
    try:
        arm.connect()
    finally:
        arm.disconnect()
        em.stop()
    written = {g["id"]: g["ticks"] for g in _goals(journal)}
    low = {j.servo_id: j.min_ticks for j in calibration.joints}
    high = {j.servo_id: j.max_ticks for j in calibration.joints}
    assert written and all(low[i] <= ticks <= high[i] for i, ticks in written.items()), written


class SwingingPolicy:
    """Pushes the end effector hard one way in even episodes and the other way in odd ones."""

    def __init__(self) -> None:
        self.sign = 1.0

    def reset_trial(self) -> None:
        return None

    def act(self, obs):
        return np.array([self.sign, -self.sign, self.sign])

    def observe(self, reward, terminated, truncated) -> None:
        if terminated or truncated:
            self.sign = -self.sign

    def goal_estimate(self):
        return None


def test_rate_limit_holds_across_home_and_policy_phases(bus_emulator, tmp_path):
    rate_hz = 25.0
    journal = str(tmp_path / "journal.jsonl")
    em = bus_emulator("dynamixel", journal)
    spec = so101_spec()
    task = make_task("reach", spec)
    base = task.layout.robot_base
    arm = _arm("dynamixel", em.port, base=base)
    calibration = arm.calibration
    config = SafetyConfig.from_spec(spec, base)
    scene = LabScene()
    task.setup(scene)
    log = DeploymentLog(str(tmp_path / "log.jsonl"))
    model = KinematicModel(spec, base)
    arm.connect()  # last: the servos' bus watchdog (0.1 s) expires if the loop does not start talking soon
    try:
        loop = DeploymentLoop(arm, task, make_controller("ee", spec, task.uses_gripper, base), SwingingPolicy(),
                              scene, GoalSource(), SafetyLayer(config, model, 1.0 / rate_hz), log,
                              LoopConfig(rate_hz, episodes=3, steps_per_episode=12, home_tolerance=0.01,
                                         stale_after_s=60.0, overrun_after_s=60.0))  # timing is not the point
        result = loop.run()
    finally:
        log.close()
        model.close()
        arm.disconnect()
        em.stop()
    assert result.stopped is None, result.stopped
    phases = [r["phase"] for r in map(json.loads, open(tmp_path / "log.jsonl")) if r["type"] == "step"]
    assert "home" in phases[phases.index("policy"):]  # home -> policy -> home really happened
    index = {j.servo_id: i for i, j in enumerate(calibration.joints)}
    step_ticks = config.max_velocity / rate_hz * calibration.ticks_per_turn / (2.0 * np.pi)
    previous: dict[int, int] = {}
    for goal in _goals(journal):  # every goal the servos received: connect, home and policy steps
        servo = goal["id"]
        if servo in previous:
            jump = abs(goal["ticks"] - previous[servo])
            assert jump <= step_ticks[index[servo]] + 1, f"servo {servo} goal jumped {jump} ticks"
        previous[servo] = goal["ticks"]
