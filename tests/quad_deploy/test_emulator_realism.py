"""Emulator realism that would otherwise hide faults (issue 18 item 6): the Crazyflie battery drains under load only
(on the emulator's clock), its motors follow the Crazyflie 2.x's quadratic PWM curve so a wrong driver calibration
shows in a rehearsal, and a vehicle that never lifted is reported as such. Stock cflib against in-process emulators
on a manual clock (minutes of emulated time in seconds) or ``sim2real emulate`` processes."""
from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest
import yaml
from cflib.crazyflie import Crazyflie
from cflib.crazyflie.log import LogConfig
from cflib.crazyflie.syncCrazyflie import SyncCrazyflie

from robots.quadrotor import GRAVITY, crazyflie_spec
from sim2real.cli import main
from sim2real.deploy.log import read_log
from sim2real.emulators.crazyflie import CrazyflieEmulator
from sim2real.emulators.quad_reality import QuadReality
from sim2real.hal.thrust_map import CRAZYFLIE_2X, PWM_MAX, ThrustMap, load_thrust_map
from sim2real.errors import UserError
from sim2real.hal.crazyflie import init_cflib_drivers
from sim2real.sim.quadrotor_physics import QuadPhysicsConfig, QuadrotorPhysics
from quad_support import HOVER_POLICY, REALITIES, free_udp_port

init_cflib_drivers()
SPEC = crazyflie_spec()
LAB_CF = yaml.safe_load(open(os.path.join(REALITIES, "crazyflie_lab.yaml")))


class ManualClock:
    """The emulator's time source, moved on by the test (s)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class InProcess:
    """A :class:`CrazyflieEmulator` serving in a thread on a :class:`ManualClock`."""

    def __init__(self, reality: QuadReality) -> None:
        self.clock = ManualClock()
        self.em = CrazyflieEmulator(reality, port=free_udp_port(), clock=self.clock)
        self.quad = self.em.quads[0]
        self.thread = self.em.start_thread()

    def advance(self, seconds: float, each=None, step: float = 0.05) -> None:
        """Move emulated time on by ``seconds`` in ``step`` s strides, waiting until the physics has caught up each
        time; ``each()`` runs before every stride (a setpoint stream)."""
        for _ in range(int(round(seconds / step))):
            if each is not None:
                each()
            self.clock.t += step
            deadline = time.monotonic() + 10.0
            while self.quad.time + self.quad.behind_s < self.clock.t - 1.5 * self.quad.sim.config.dt:
                assert time.monotonic() < deadline, "the emulator's physics did not follow its clock"
                time.sleep(0.0005)
        assert self.quad.behind_s == 0.0  # every emulated second was simulated

    def close(self) -> None:
        self.em.stop()
        self.thread.join(timeout=5)


@pytest.fixture
def in_process():
    started: list[InProcess] = []

    def start(**reality) -> InProcess:
        started.append(InProcess(QuadReality(**reality)))
        return started[-1]

    yield start
    for em in started:
        em.close()


class Battery:
    """``pm.vbat`` as cflib receives it, with the emulator's millisecond timestamp."""

    def __init__(self, cf) -> None:
        self.samples: list[tuple[int, float]] = []
        config = LogConfig("battery", 100)
        config.add_variable("pm.vbat", "float")
        cf.log.add_config(config)
        config.data_received_cb.add_callback(lambda ts, data, conf: self.samples.append((ts, data["pm.vbat"])))
        config.start()

    def at(self, emulated_s: float) -> float:
        """The first voltage logged in the last log period (0.1 s) up to ``emulated_s`` or after (waits for it)."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            late = [v for ts, v in list(self.samples) if ts >= emulated_s * 1000 - 100]
            if late:
                return late[0]
            time.sleep(0.01)
        raise AssertionError(f"no pm.vbat logged at {emulated_s} s (last: {self.samples[-1:]})")


def test_physics_battery_drains_with_rotor_power_only():
    physics = QuadrotorPhysics(SPEC, QuadPhysicsConfig(240.0, 240.0))
    physics.battery_sag = 0.002
    physics.reset((0.0, 0.0, 0.012), rpm=0.0)
    for _ in range(240 * 60):  # a minute with the motors stopped
        physics.step((0.0, 0.0, 0.0, 0.0))
    assert physics.battery_factor == 1.0
    physics.reset((0.0, 0.0, 1.0), rpm=SPEC.hover_rpm)
    for _ in range(240 * 10):  # ten seconds at hover power: 10 x sag
        physics.step([SPEC.hover_rpm] * 4)
    assert physics.battery_factor == pytest.approx(1.0 - 0.002 * 10, rel=1e-6)
    physics.close()


def test_battery_idle_keeps_voltage_flight_drains_it(in_process):
    emu = in_process(battery_sag=LAB_CF["battery_sag"])
    with SyncCrazyflie(emu.em.uris[0], cf=Crazyflie(rw_cache=None)) as scf:
        cf = scf.cf
        battery = Battery(cf)
        full = battery.at(0.0)
        emu.advance(60.0)  # a minute on the ground, motors off
        idle = battery.at(60.0)
        assert full == pytest.approx(4.2, abs=1e-3) and idle == pytest.approx(full, abs=1e-4), (full, idle)

        cf.supervisor.send_arming_request(True)
        time.sleep(0.2)
        assert cf.supervisor.is_armed
        cf.high_level_commander.takeoff(0.5, 2.0)
        time.sleep(0.2)
        emu.advance(60.0)  # a minute of flight (take-off, then hover on the high-level commander)
        assert emu.quad.state().position[2] == pytest.approx(0.5, abs=0.1)
        flown = battery.at(120.0)
    print(f"pm.vbat: {full:.3f} V full, {idle:.3f} V after 60 s idle, {flown:.3f} V after 60 s of flight")
    # hover drains sag per second of hover power: ~0.12 of the thrust factor = 0.29 V at 2.4 V per unit
    assert 0.2 < idle - flown < 0.4, (idle, flown)


def test_emulated_motors_follow_the_quadratic_pwm_curve(in_process):
    """Above ground effect, the commander's PWM for k × the weight on the Crazyflie 2.x curve accelerates the nominal
    vehicle by (k - 1)·g: the emulator's motors are quadratic, whatever the driver believes."""
    emu = in_process()
    with SyncCrazyflie(emu.em.uris[0], cf=Crazyflie(rw_cache=None)) as scf:
        cf = scf.cf
        for name in ("flightmode.stabModeRoll", "flightmode.stabModePitch"):
            cf.param.set_value(name, "0")  # rate mode: zero rates hold the vehicle level
        cf.supervisor.send_arming_request(True)
        time.sleep(0.2)
        cf.high_level_commander.takeoff(1.0, 1.5)
        time.sleep(0.2)
        emu.advance(3.0)  # at 1 m (ground effect ends below 0.5 m), still
        cf.commander.send_setpoint(0, 0, 0, 0)  # releases the thrust lock
        for k in (1.0, 1.2):
            pwm = int(round(CRAZYFLIE_2X.pwm(k * SPEC.weight)))
            stream = lambda: cf.commander.send_setpoint(0.0, 0.0, 0.0, pwm)  # noqa: E731
            emu.advance(0.3, stream)  # the motors settle (time constant 0.05 s)
            v0, t0 = emu.quad.sim.true_kinematics().velocity[2], emu.quad.time
            emu.advance(0.4, stream)
            accel = (emu.quad.sim.true_kinematics().velocity[2] - v0) / (emu.quad.time - t0)
            print(f"pwm {pwm} ({k:g} x weight on the curve): vertical acceleration {accel:+.3f} m/s²")
            assert accel == pytest.approx((k - 1.0) * GRAVITY, abs=0.06 * GRAVITY), (k, pwm, accel)


def test_thrust_map_inverse_and_low_end():
    assert 35_000 < CRAZYFLIE_2X.pwm(SPEC.weight) < 38_000  # hover PWM on the curve (27 g), vs a linear map's:
    assert ThrustMap.linear_to(SPEC.max_thrust).pwm(SPEC.weight) < 30_000
    for pwm in (1.0, 1000.0, 20_000.0, 36_000.0, 60_000.0, PWM_MAX):
        assert CRAZYFLIE_2X.pwm(CRAZYFLIE_2X.thrust(pwm)) == pytest.approx(pwm, rel=1e-9)
    assert CRAZYFLIE_2X.thrust(0) == 0.0 and CRAZYFLIE_2X.thrust(-5) == 0.0  # pwm 0: motors stopped
    assert CRAZYFLIE_2X.pwm(0.0) == 0.0 and CRAZYFLIE_2X.pwm(4 * 5.0e-4) == 0.0  # below a spinning motor's least
    assert CRAZYFLIE_2X.thrust(PWM_MAX) == pytest.approx(4 * (2.130295e-11 * PWM_MAX ** 2 + 1.032633e-6 * PWM_MAX
                                                              + 5.484560e-4))
    with pytest.raises(ValueError):
        ThrustMap(-1e-11, 1e-6, 0.0)
    with pytest.raises(ValueError):
        ThrustMap(0.0, 0.0, 1e-3)


@pytest.mark.parametrize("data, message", [
    (b"thrust_map: {quadratic: 1.0e-11, linear: 1.0e-6}", "holds thrust_map: with the numbers"),
    (b"thrust_map: {quadratic: -1.0e-11, linear: 1.0e-6, offset: 0}", "coefficients must be finite and >= 0"),
    (b"thrust_map: [1, 2, 3]", "holds thrust_map: with the numbers"),
    (b"thrust_map: {quadratic: x", "invalid YAML"),
    (b"\x00\xff\xfe binary", "cannot read Crazyflie calibration"),
])
def test_bad_thrust_calibration_is_one_line(data, message, tmp_path, capsys):
    path = tmp_path / "cf.yaml"
    path.write_bytes(data)
    with pytest.raises(UserError, match=message):
        load_thrust_map(str(path))
    code = main(["deploy", os.path.join(HOVER_POLICY, "model.zip"), "--launch", os.path.join(HOVER_POLICY,
                 "launch.yaml"), "--driver", "crazyflie", "--uri", "udp://127.0.0.1:9", "--calibration", str(path),
                 "--log", str(tmp_path / "log.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def _deploy(uri, log, *extra, steps=240):
    return main(["deploy", os.path.join(HOVER_POLICY, "model.zip"), "--launch", os.path.join(HOVER_POLICY,
                 "launch.yaml"), "--driver", "crazyflie", "--uri", uri, "--steps", str(steps), "--log", str(log),
                 "--overrun-periods", "4", "--stale-periods", "6", *extra])


def test_wrong_linear_calibration_shows_in_a_rehearsal(quad_emulator, tmp_path):
    """The old linear map as the driver's calibration sends ~20 % too little PWM for the thrust it means: flown
    through the emulated (quadratic) motors, the hover policy sags below its target and the log shows the driver
    believing in far more thrust than the vehicle needs. (With the default calibration the same flight holds
    within 0.2 cm on average and believes in ~1.03 x the need: measured, see /tmp/reliability/H5.md.)"""
    linear = ThrustMap.linear_to(SPEC.max_thrust)
    calibration = tmp_path / "linear.yaml"
    calibration.write_text(yaml.safe_dump({"thrust_map": {"quadratic": linear.quadratic, "linear": linear.linear,
                                                          "offset": linear.offset}}))
    for attempt in range(3):  # a loaded machine may trip the watchdog early: fly again on a fresh emulator
        em = quad_emulator("crazyflie", **LAB_CF)
        log = tmp_path / f"log-{attempt}.jsonl"
        code = _deploy(em.uri, log, "--calibration", str(calibration))
        steps = [r for r in read_log(str(log)) if r["type"] == "step" and r["phase"] == "policy" and r["step"] >= 48]
        if len(steps) >= 96:  # 2 s held after the first second
            break
    sag = float(np.mean([r["position"][2] - r["reference"][2] for r in steps]))
    believed = float(np.mean([r["applied"]["thrust"] for r in steps]))
    need = SPEC.weight * LAB_CF["mass_scale"] / LAB_CF["kf_scale"]  # N the lab vehicle needs to hover
    print(f"linear calibration: exit {code}, mean height error {sag * 100:.1f} cm, believed thrust "
          f"{believed / need:.2f} x the need")
    assert len(steps) >= 96, code
    assert sag < -0.025 and believed > 1.12 * need, (sag, believed / need)


def test_vehicle_that_never_lifted_did_not_take_off(quad_emulator, tmp_path, capsys):
    em = quad_emulator("crazyflie", **LAB_CF)
    stop = tmp_path / "stop"
    stop.write_text("")  # the e-stop is pressed before the first step
    log = tmp_path / "log.jsonl"
    code = _deploy(em.uri, log, "--stop-file", str(stop))
    out = capsys.readouterr().out
    event = [r for r in read_log(str(log)) if r["type"] == "event"][-1]
    assert code == 4 and event["kind"] == "estop"
    assert event["landed"] is False and event.get("took_off") is False, event
    assert "did not take off" in out, out
    heights = [r["position"][2] for r in read_log(str(log)) if r["type"] == "step"]
    assert max(heights, default=0.0) < 0.05


def test_vehicle_that_refused_arming_did_not_take_off_mavlink(quad_emulator, tmp_path, capsys):
    os.environ.setdefault("MAVLINK20", "1")
    from pymavlink import mavutil

    em = quad_emulator("mavlink", **yaml.safe_load(open(os.path.join(REALITIES, "quad_px4_crazyflie.yaml"))))
    gcs = mavutil.mavlink_connection(em.url, source_system=255, source_component=190, dialect="common")
    m = mavutil.mavlink
    gcs.mav.heartbeat_send(m.MAV_TYPE_GCS, m.MAV_AUTOPILOT_INVALID, 0, 0, m.MAV_STATE_ACTIVE)
    assert gcs.recv_match(type="HEARTBEAT", blocking=True, timeout=3) is not None
    gcs.mav.param_set_send(1, 1, b"COM_ARM_WO_GPS", struct.unpack("<f", struct.pack("<i", 0))[0],
                           m.MAV_PARAM_TYPE_INT32)  # arming now needs a GPS fix, which the emulation has not
    assert gcs.recv_match(type="PARAM_VALUE", blocking=True, timeout=2).param_id == "COM_ARM_WO_GPS"
    gcs.close()
    log = tmp_path / "log.jsonl"
    code = main(["deploy", os.path.join(HOVER_POLICY, "model.zip"), "--launch", os.path.join(HOVER_POLICY,
                 "launch.yaml"), "--driver", "mavlink", "--url", em.url, "--steps", "48", "--log", str(log)])
    out = capsys.readouterr().out
    event = [r for r in read_log(str(log)) if r["type"] == "event"][-1]
    assert code == 3 and event["kind"] == "link" and "arming refused" in event["reason"], (code, event)
    assert event["landed"] is False and event.get("took_off") is False, event
    assert "did not take off" in out, out
