"""The multirotor deployment loop on a fake clock: the shipped hover policy flown through the real rate loop and
multirotor runner on the simulated Crazyflie (PyBullet, its flight controller), where time moves only when the loop
sleeps or a test spends it. Deterministic: the same flight every run, so hold accuracy, timing records, trips and
landings are checked without the retries a real-time emulator flight on a busy machine needs."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fake_clock import FakeClock
from quad_support import HOVER_POLICY, Scripted
from robots.quadrotor import crazyflie_spec
from sim2real.deploy.log import DeploymentLog, read_log
from sim2real.deploy.loop import LoopConfig
from sim2real.deploy.multirotor import MultirotorDeploymentLoop
from sim2real.hal.flight import FlightVehicle, landed
from sim2real.hal.multirotor import Velocity
from sim2real.hal.safety import MultirotorSafetyConfig, MultirotorSafetyLayer
from sim2real.policy_files import load_policy
from sim2real.sim.multirotor import SimMultirotor
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig
from sim2real.tasks.quadrotor import make_quadrotor_task

SPEC = crazyflie_spec()
RATE_HZ = 48.0
PERIOD = 1.0 / RATE_HZ
FENCE = (np.array([-1.5, -1.5, -0.1]), np.array([1.5, 1.5, 2.0]))


class ClockedQuad(FlightVehicle):
    """The simulated Crazyflie as a flight vehicle on the fake clock: resting on the ground until armed; each state
    read after arming advances physics one control period and is stamped now; landing descends at 0.4 m/s (one
    control period of fake time per step) and disarms."""

    def __init__(self, clock: FakeClock) -> None:
        self.spec, self.clock = SPEC, clock
        self.sim = SimMultirotor(SPEC, QuadPhysicsConfig(control_hz=RATE_HZ))
        self.sim.reset((0.0, 0.0, SPEC.collision_half_extents[2]), rpm=0.0)
        self.armed, self.landings, self.sent = False, 0, []

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        self.sim.close()

    def arm(self) -> None:
        self.armed = True

    def read_state(self):
        if self.armed:
            self.sim.advance()
        state = self.sim.read_state()
        state.timestamp = self.clock.now
        return state

    def send_command(self, setpoint):
        self.sent.append(setpoint)
        return self.sim.send_command(setpoint)

    def land(self, timeout_s: float = 15.0) -> bool:
        self.landings += 1
        self.sim.send_command(Velocity(np.array([0.0, 0.0, -0.4]), 0.0))
        for _ in range(int(timeout_s * RATE_HZ)):
            if landed(self.sim.read_state()):
                break
            self.sim.advance()
            self.clock.spend(PERIOD)
        self.armed = False
        return landed(self.sim.read_state())

    def battery_voltage(self) -> float:
        return float("nan")

    def safe_stop(self) -> None:
        self.land()


@pytest.fixture(scope="module")
def hover_policy():
    policy, config = load_policy(os.path.join(HOVER_POLICY, "model.zip"), None)
    return policy


def _fly(tmp_path, policy, steps=240, episodes=1, name="log.jsonl", at=None, nan_steps=(), clock=None):
    clock = clock or FakeClock()
    vehicle = ClockedQuad(clock)
    safety = MultirotorSafetyLayer(MultirotorSafetyConfig.from_spec(SPEC, *FENCE), SPEC.max_rpm)
    path = tmp_path / name
    log = DeploymentLog(str(path))
    scripted = Scripted(policy, nan_steps, at)
    try:
        loop = MultirotorDeploymentLoop(vehicle, make_quadrotor_task("hover", SPEC), scripted, safety, log,
                                        LoopConfig(RATE_HZ, episodes, steps, seed=3), clock=clock, sleep=clock.sleep)
        result = loop.run()
    finally:
        log.close()
        vehicle.disconnect()
    return result, read_log(str(path)), vehicle, clock


def test_hover_holds_position_on_the_fake_clock_the_same_every_run(hover_policy, tmp_path):
    result, records, vehicle, _ = _fly(tmp_path, hover_policy, steps=480)
    assert result.stopped is None and len(result.episodes) == 1
    land = [r for r in records if r["type"] == "event"][-1]
    assert land["kind"] == "land" and land["landed"] and land["took_off"] and vehicle.landings == 1
    policy_steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    held = np.array([r["distance"] for r in policy_steps[48:]])
    assert len(policy_steps) == 480 and held.max() < 0.10 and np.sqrt(np.mean(held ** 2)) < 0.05
    # every step started on its deadline: t is an exact multiple of the period, lateness only the clock's µs reads
    approach = [r for r in records if r["type"] == "step" and r["phase"] == "approach"]
    ticks = np.array([r["t"] for r in approach + policy_steps]) / PERIOD
    np.testing.assert_allclose(ticks, np.arange(len(ticks)), atol=1e-6)
    assert max(r["late"] for r in approach + policy_steps) < 1e-4
    # the same flight again: the same log, number for number (timing, physics, policy)
    _, again, _, _ = _fly(tmp_path, hover_policy, steps=480, name="again.jsonl")
    assert [r for r in again if r["type"] != "meta"] == [r for r in records if r["type"] != "meta"]


def test_each_action_gets_its_reward_and_the_episode_end(hover_policy, tmp_path):
    result, records, _, _ = _fly(tmp_path, hover_policy, steps=48, episodes=2)
    assert result.stopped is None and len(result.episodes) == 2
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    rewards = [r for r in records if r["type"] == "reward"]
    assert [(r["episode"], r["step"]) for r in rewards] == [(s["episode"], s["step"]) for s in steps]
    assert [r["truncated"] for r in rewards] == [s["step"] == 47 for s in steps]
    task = make_quadrotor_task("hover", SPEC)
    for reward, after in zip(rewards, steps[1:]):
        if after["step"] > 0:  # the reward of an action is the task's at the state the next step measured
            distance = np.linalg.norm(np.asarray(after["reference"]) - np.asarray(after["position"]))
            assert reward["reward"] == pytest.approx(task.reward(distance, np.asarray(after["body_rates"])), abs=1e-5)


@pytest.mark.parametrize("stall_periods, trips", [(3.5, False), (5.0, True)])
def test_the_watchdog_rides_out_a_hiccup_and_lands_on_a_stall(hover_policy, tmp_path, stall_periods, trips):
    """A step that takes 3.5 periods (the next starts ~2.5 periods late, inside the default 3) is ridden out; 5
    periods trips the watchdog on the next step, and the vehicle lands."""
    clock = FakeClock()
    result, records, vehicle, _ = _fly(tmp_path, hover_policy, steps=96, clock=clock,
                                       at={60: lambda: clock.spend(stall_periods * PERIOD)})
    policy_steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    if not trips:
        assert result.stopped is None and len(policy_steps) == 96 and vehicle.landings == 1
        assert 2.4 < max(r["late"] for r in policy_steps) / PERIOD < 3.0
        return
    assert result.stopped["kind"] == "watchdog" and "overrun" in result.stopped["reason"]
    assert result.stopped["landed"] and result.stopped["took_off"] and vehicle.landings == 1
    assert policy_steps[-1]["step"] == 60  # the stalled step is the last one flown; nothing was sent late


def test_a_nan_action_lands_without_sending_it(hover_policy, tmp_path):
    result, records, vehicle, _ = _fly(tmp_path, hover_policy, steps=96, nan_steps=(30,))
    assert result.stopped["kind"] == "policy" and "at step 30" in result.stopped["reason"]
    assert result.stopped["landed"] and vehicle.landings == 1
    assert all(np.all(np.isfinite(getattr(s, "body_rates", np.zeros(3)))) for s in vehicle.sent)
    assert [r["step"] for r in records if r["type"] == "step" and r["phase"] == "policy"][-1] == 29


def test_leaving_the_geofence_lands(hover_policy, tmp_path):
    class Climber:  # full thrust, no rotation: straight up through the fence's 2 m ceiling
        def reset_trial(self):
            pass

        def act(self, obs):
            return np.array([1.0, 0.0, 0.0, 0.0])

        def observe(self, *args):
            pass

    result, records, vehicle, _ = _fly(tmp_path, Climber(), steps=480)
    assert result.stopped["kind"] == "envelope" and "geofence" in result.stopped["reason"]
    assert result.stopped["took_off"] and vehicle.landings == 1
    assert max(r["position"][2] for r in records if r["type"] == "step") <= FENCE[1][2] + 0.5
