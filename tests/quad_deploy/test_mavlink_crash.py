"""A crash through the MAVLink link (issue 20: the sysid loop after a crashing flight), stock pymavlink against the
PX4-like emulator: the vehicle tipped past the failure detector's limits stops its motors, disarms and says why,
falls and is reported on the ground, arming is denied while it lies tipped, the operator sets it upright (the
0.3 s trigger time read from the emulator's own clock in its journal); the driver and the deployment loop name the
crash in one line and end with the motors off, and the next flight arms and takes off from the floor. Real time
(an in-process emulator, then ``sim2real emulate mavlink`` in its own process as the loop uses it)."""
from __future__ import annotations

import dataclasses
import math
import os
import struct
import time

import numpy as np
import pytest

os.environ.setdefault("MAVLINK20", "1")
from pymavlink import mavutil  # noqa: E402

from robots.quadrotor import crazyflie_spec  # noqa: E402
from sim2real.deploy.log import read_log  # noqa: E402
from sim2real.emulators.mavlink import MavlinkEmulator, Px4Vehicle  # noqa: E402
from sim2real.emulators.quad_reality import EmulatedQuad, QuadReality, load_quad_reality  # noqa: E402
from sim2real.hal.multirotor import Ctbr, Position  # noqa: E402
from sim2real.hal.mavlink import MavlinkDriver  # noqa: E402
from sim2real.hal.safety import MultirotorSafetyConfig  # noqa: E402
from quad_support import free_udp_port  # noqa: E402
from test_quad_deploy_e2e import _fly  # noqa: E402

M = mavutil.mavlink
SPEC = crazyflie_spec()
OFFBOARD = (M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 6, 0)


@pytest.fixture
def emulator(threaded_emulator, tmp_path):
    """``emulator()``: an in-process :class:`MavlinkEmulator` (nominal Crazyflie, journal in ``tmp_path``) serving in
    a thread (tests/conftest.py's ``threaded_emulator``)."""
    journal = str(tmp_path / "journal.jsonl")
    return lambda: threaded_emulator(lambda profile: MavlinkEmulator(load_quad_reality(profile), port=free_udp_port(),
                                                                     journal=journal))


def _journal(tmp_path, kind: str | None = None) -> list[dict]:
    """The emulator's journal; with ``kind``, once a record of that kind is in it (the serving thread flushes it
    after the datagram that told us went out)."""
    import json

    deadline = time.monotonic() + 2.0
    while True:
        with open(tmp_path / "journal.jsonl", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        if kind is None or any(r["kind"] == kind for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.01)


def _command(master, command, *params) -> int:
    p = list(params) + [0.0] * (7 - len(params))
    master.mav.command_long_send(1, 1, command, 0, *p)
    ack = master.recv_match(type="COMMAND_ACK", condition=f"COMMAND_ACK.command=={command}", blocking=True,
                            timeout=2)
    assert ack is not None
    return ack.result


def _stream(master, seconds: float, z_ned: float | None = None, roll_rate: float = 0.0, thrust: float = 0.5,
            until=None) -> list:
    """Position setpoints (``z_ned``) or body-rate setpoints at 50 Hz for ``seconds``; the messages received."""
    received, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        if z_ned is not None:
            master.mav.set_position_target_local_ned_send(0, 1, 1, M.MAV_FRAME_LOCAL_NED, 0b0000_1111_1111_1000,
                                                          0, 0, z_ned, 0, 0, 0, 0, 0, 0, 0, 0)
        else:
            master.mav.set_attitude_target_send(0, 1, 1, 128, [1.0, 0, 0, 0], roll_rate, 0.0, 0.0, thrust)
        deadline = time.monotonic() + 0.02
        while time.monotonic() < deadline:
            msg = master.recv_match(blocking=True, timeout=0.005)
            if msg is not None:
                received.append(msg)
        if until is not None and until(received):
            break
    return received


def _link(port: int):
    """A pymavlink companion link to the emulator on ``port`` (after the vehicle's first heartbeat)."""
    master = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255, source_component=191,
                                        dialect="common")
    master.mav.heartbeat_send(M.MAV_TYPE_ONBOARD_CONTROLLER, M.MAV_AUTOPILOT_INVALID, 0, 0, M.MAV_STATE_ACTIVE)
    assert master.recv_match(type="HEARTBEAT", blocking=True, timeout=3) is not None
    return master


def _enable_termination(master) -> None:
    """CBRK_FLIGHTTERM 0 over the parameter protocol (INT32 bytewise): the failure detector may stop the motors."""
    master.mav.param_set_send(1, 1, b"CBRK_FLIGHTTERM", struct.unpack("<f", struct.pack("<i", 0))[0],
                              M.MAV_PARAM_TYPE_INT32)
    reply = master.recv_match(type="PARAM_VALUE", blocking=True, timeout=2)
    assert reply is not None and reply.param_id == "CBRK_FLIGHTTERM" and reply.param_value == 0.0


def _fly_up(master, height: float, seconds: float) -> None:
    """OFFBOARD (after 1.2 s of setpoints), arm, hold ``height`` m for ``seconds``: it must be within 0.2 m."""
    _stream(master, 1.2, -height)
    assert _command(master, M.MAV_CMD_DO_SET_MODE, *OFFBOARD) == M.MAV_RESULT_ACCEPTED
    assert _command(master, M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    received = _stream(master, seconds, -height)
    z = [m.z for m in received if m.get_type() == "LOCAL_POSITION_NED"][-1]
    assert abs(z + height) < 0.2, z


def test_tipped_past_the_failure_detector_limit_disarms_falls_and_is_righted(emulator, tmp_path):
    """Termination enabled (CBRK_FLIGHTTERM 0)."""
    em = emulator()
    master = _link(em.port)
    _enable_termination(master)
    _fly_up(master, 0.8, 3.0)
    # a rate setpoint that rolls it over: 8 rad/s (FRD) at hover thrust
    received = _stream(master, 3.0, roll_rate=8.0, thrust=0.45,
                       until=lambda r: any(m.get_type() == "STATUSTEXT" and "Critical" in m.text for m in r))
    texts = [m.text for m in received if m.get_type() == "STATUSTEXT"]
    assert any(t.startswith("Critical failure: roll") and "motors off" in t for t in texts), texts
    journal = _journal(tmp_path, "disarmed")
    disarm = [r for r in journal if r["kind"] == "disarmed"]
    assert disarm and disarm[-1]["reason"] == "failure detector"
    first_over = next(r["t"] for r in journal if r["kind"] == "setpoint" and r.get("rates", [0])[0] > 1.0)
    assert 0.3 < disarm[-1]["t"] - first_over < 1.5  # past 60 deg, then 0.3 s
    # motors off: it falls; the heartbeat says disarmed, the land detector on the ground once it lies still
    states, end = {}, time.monotonic() + 6.0
    while time.monotonic() < end and (states.get("landed") != M.MAV_LANDED_STATE_ON_GROUND or "armed" not in states):
        msg = master.recv_match(type=["HEARTBEAT", "EXTENDED_SYS_STATE"], blocking=True, timeout=0.5)
        if msg is not None and msg.get_type() == "HEARTBEAT":
            states["armed"] = bool(msg.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED)
        elif msg is not None:
            states["landed"] = msg.landed_state
    assert states == {"armed": False, "landed": M.MAV_LANDED_STATE_ON_GROUND}, states
    assert em.quad.clearance() < 0.03 and not em.quad.setpoint
    lying = em.quad.tilt > math.radians(45)
    if lying:  # (it comes down on its back here) PX4's arming check: not while the attitude is past the limits
        assert _command(master, M.MAV_CMD_DO_SET_MODE, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4, 3) == 0  # LOITER
        assert _command(master, M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_DENIED
        text = master.messages.get("STATUSTEXT")  # came just before the ACK (the last one pymavlink kept)
        assert text is not None and text.text.startswith("Arming denied: attitude failure"), text
    # the operator rights it once it has lain still for 1 s; then it arms and takes off from the floor again
    time.sleep(1.5)
    righted = [r for r in _journal(tmp_path) if r["kind"] == "righted"]
    assert len(righted) == int(lying) and all(r["tilt_deg"] > 45 for r in righted), righted
    assert em.quad.tilt < math.radians(5) and em.quad.clearance() < 0.01
    if lying:  # picked up and put back on its start mark
        assert np.allclose(em.quad.sim.true_kinematics().position[:2], em.quad.home[:2], atol=0.01)
    _fly_up(master, 0.5, 2.5)
    master.close()


class Flip:
    """A policy (CTBR actions) that rolls the vehicle over: hover thrust, full roll rate."""

    def reset_trial(self) -> None:
        return None

    def act(self, obs) -> np.ndarray:
        return np.array([0.0, 1.0, 0.0, 0.0])

    def observe(self, reward: float, terminated: bool, truncated: bool) -> None:
        return None

    def goal_estimate(self):
        return None


def _deploy(url: str, policy, log, steps: int, trip_tilt: float | None = None):
    """One deployment (1 episode of ``steps`` at 48 Hz) through a :class:`MavlinkDriver`; (result, driver)."""
    config = MultirotorSafetyConfig.from_spec(SPEC, np.array([-3.0, -3.0, -0.1]), np.array([3.0, 3.0, 2.0]))
    if trip_tilt is not None:
        config = dataclasses.replace(config, trip_tilt=trip_tilt)
    driver = MavlinkDriver(SPEC, url)
    return _fly(driver, policy, log, steps, config)[0], driver


def test_a_crash_is_a_safe_stop_with_its_reason_and_the_next_flight_takes_off(quad_emulator, hover_policy, tmp_path):
    """Through ``sim2real emulate mavlink`` in its own process, as the sysid loop flies it."""
    em = quad_emulator("mavlink")
    master = _link(em.port)
    _enable_termination(master)
    master.close()
    # the flight envelope's tilt trip is off (past 180 deg) so the vehicle's own failure detector acts first
    result, driver = _deploy(em.url, Flip(), tmp_path / "crash.jsonl", 96, trip_tilt=math.pi + 0.1)
    stopped = result.stopped
    assert stopped["kind"] == "envelope" and stopped["reason"].startswith(
        "crash: vehicle alarm in flight: Critical failure: roll") and "motors off" in stopped["reason"], stopped
    assert stopped["safe_stop_error"] is None and stopped["crash"] and not stopped["landed"], stopped
    records = read_log(str(tmp_path / "crash.jsonl"))
    assert records[-1]["type"] == "summary" and records[-1]["stopped"]["reason"] == stopped["reason"]
    arming = [r for r in em.records() if r["kind"] in ("armed", "disarmed")]
    assert arming[-1] == {**arming[-1], "kind": "disarmed", "reason": "failure detector"}  # motors off
    # the operator rights it within 1 s of it lying still (if it came down tipped); then the next deployment arms
    # and flies from the floor
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and not any(r["kind"] == "righted" for r in em.records()):
        time.sleep(0.05)
    result, driver = _deploy(em.url, hover_policy[0], tmp_path / "after.jsonl", 48)
    assert result.stopped is None and len(result.episodes) == 1 and driver.crash is None, result.stopped
    journal = em.records()
    assert [r["kind"] for r in journal if r["kind"] in ("armed", "disarmed")] == ["armed", "disarmed"] * 2
    assert [r["reason"] for r in journal if r["kind"] == "disarmed"] == ["failure detector", "landed"]
    print("righted:", [r for r in journal if r["kind"] == "righted"])


class Firmware:
    """The emulator's PX4 state machine on its vehicle, stepped in simulated time (no link: fast, repeatable)."""

    def __init__(self) -> None:
        self.quad = EmulatedQuad(QuadReality())
        self.texts: list[str] = []
        self.journal: list[dict] = []
        self.vehicle = Px4Vehicle(self.quad, lambda msg: self.texts.append(getattr(msg, "text", "")),
                                  self.journal.append)
        self.t = 0.0

    def run(self, seconds: float, setpoint=None) -> None:
        """``seconds`` of simulated time with ``setpoint`` streamed as offboard setpoints (None: nothing sent)."""
        end = self.t + seconds
        while self.t < end:
            self.t += 0.02
            if setpoint is not None:
                self.vehicle.offboard, self.vehicle.last_setpoint = setpoint, self.t
                self.vehicle.stream_since = self.vehicle.stream_since or self.t
            self.quad.advance_to(self.t, self.vehicle.physics_step)

    def take_off(self) -> None:
        hold = Position(np.array([0.0, 0.0, 0.8]))
        self.run(1.2, hold)
        self.vehicle.now = self.t
        assert self.vehicle._set_mode(M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 6, 0) == M.MAV_RESULT_ACCEPTED
        assert self.vehicle._arm(True, False) == M.MAV_RESULT_ACCEPTED

    def close(self) -> None:
        self.quad.close()


ROLL_OVER = Ctbr(SPEC.weight, np.array([6.0, 0.0, 0.0]))  # rad/s, body FLU


@pytest.mark.parametrize("flip_after_s, disarmed", [(1.5, True), (5.0, False)])
def test_failure_detector_acts_in_the_take_off_lockdown_window_only_with_termination_off(flip_after_s, disarmed):
    """PX4's defaults (CBRK_FLIGHTTERM 121212): a roll-over 1.5 s into the flight stops the motors (lockdown
    window COM_LKDOWN_TKO 3 s); 5 s in it is announced and the flight goes on (the companion must land it)."""
    fw = Firmware()
    try:
        fw.take_off()
        fw.run(flip_after_s, Position(np.array([0.0, 0.0, 0.8])))
        fw.run(0.6, ROLL_OVER)
        assert any(t.startswith("Critical failure: roll") for t in fw.texts), fw.texts
        assert fw.vehicle.armed is not disarmed
        assert any(t.endswith("motors off") for t in fw.texts) is disarmed
        assert [r.get("reason") for r in fw.journal if r["kind"] == "disarmed"] == (["failure detector"]
                                                                                   if disarmed else [])
    finally:
        fw.close()


def test_a_vehicle_lying_on_its_side_in_auto_land_is_on_the_ground_and_disarms():
    """The land detector does not care how the vehicle lies: armed on its side in AUTO.LAND, it touches down and
    disarms COM_DISARM_LAND (2 s) later; the operator then rights it and it may arm again."""
    fw = Firmware()
    try:
        fw.take_off()
        fw.run(0.5, Position(np.array([0.0, 0.0, 0.8])))
        import pybullet as p

        physics = fw.quad.sim.physics
        side = [math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)]  # rolled 90 deg
        p.resetBasePositionAndOrientation(physics.body, [0.0, 0.0, 0.06], side, physicsClientId=physics.client)
        p.resetBaseVelocity(physics.body, [0, 0, 0], [0, 0, 0], physicsClientId=physics.client)
        fw.vehicle.params["FD_FAIL_R"] = 0.0  # not the failure detector: the land detector is under test
        fw.vehicle._enter(4, 6)  # AUTO.LAND, as the companion's safe stop asks
        fw.run(1.0)
        assert fw.vehicle.armed and fw.quad.tilt > math.radians(45) and fw.quad.on_ground()
        fw.run(2.5)
        assert not fw.vehicle.armed and not fw.vehicle.airborne
        assert [r["reason"] for r in fw.journal if r["kind"] == "disarmed"] == ["landed"]
        fw.vehicle.params["FD_FAIL_R"] = 60.0
        if fw.quad.tilt > math.radians(60):  # still on its side: PX4's arming check refuses
            assert fw.vehicle._arm(True, False) == M.MAV_RESULT_DENIED
        fw.run(1.5)
        assert [r for r in fw.journal if r["kind"] == "righted"] and fw.quad.tilt < math.radians(5)
        fw.vehicle._enter(4, 3)
        assert fw.vehicle._arm(True, False) == M.MAV_RESULT_ACCEPTED
    finally:
        fw.close()
