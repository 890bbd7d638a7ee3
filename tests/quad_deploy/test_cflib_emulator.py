"""Stock cflib (SyncCrazyflie, SyncLogger, commander, high-level commander, params, supervisor, scan) against
``sim2real emulate crazyflie`` in its own process."""
from __future__ import annotations

import time

import cflib.crtp
import numpy as np
import pytest
from cflib.crazyflie import Crazyflie
from cflib.crazyflie.log import LogConfig
from cflib.crazyflie.syncCrazyflie import SyncCrazyflie
from cflib.crazyflie.syncLogger import SyncLogger

from sim2real.hal.crazyflie import init_cflib_drivers

init_cflib_drivers()
POSE = ("stateEstimate.x", "stateEstimate.y", "stateEstimate.z", "stateEstimate.vz", "motor.m1")


def _pose_config(period_ms: int = 10) -> LogConfig:
    config = LogConfig("pose", period_ms)
    for name in POSE:
        config.add_variable(name)
    return config


def _log_for(scf, seconds: float) -> list[tuple[float, dict]]:
    entries = []
    with SyncLogger(scf, _pose_config()) as logger:
        end = time.monotonic() + seconds
        for _, data, _ in logger:
            entries.append((time.monotonic(), data))
            if time.monotonic() > end:
                break
    return entries


def test_cflib_link_drivers_are_registered_once_per_process():
    """cflib appends its drivers on every ``init_drivers`` call; the driver's connect must not grow the list."""
    init_cflib_drivers()
    registered = list(cflib.crtp.CLASSES)
    init_cflib_drivers()
    assert cflib.crtp.CLASSES == registered and len(set(registered)) == len(registered)


def test_connect_params_log_takeoff_hover_land(quad_emulator):
    em = quad_emulator("crazyflie", count=2, candidates=range(19850, 19859))  # cflib scans 19850..19859
    found = [uri for uri, _ in cflib.crtp.scan_interfaces() if uri in em.addresses]
    assert sorted(found) == sorted(em.addresses)  # two vehicles on consecutive ports, found by cflib's UDP scan
    with SyncCrazyflie(em.uri, cf=Crazyflie(rw_cache=None)) as scf:
        cf = scf.cf
        scf.wait_for_params()
        assert cf.platform.get_protocol_version() == 12
        assert cf.param.get_value("ring.effect") == "6"
        cf.param.set_value("ring.effect", 3)
        gain = float(cf.param.get_value("pid_rate.roll_kp"))
        cf.param.set_value("pid_rate.roll_kp", gain * 0.9)
        time.sleep(0.3)
        assert cf.param.get_value("ring.effect") == "3"
        assert float(cf.param.get_value("pid_rate.roll_kp")) == pytest.approx(gain * 0.9, rel=1e-5)
        with pytest.raises(AttributeError):
            cf.param.set_value("firmware.revision0", 1)  # read-only in the TOC

        entries = _log_for(scf, 1.0)
        rate = (len(entries) - 1) / (entries[-1][0] - entries[0][0])
        assert rate > 80, f"log at {rate:.0f} Hz, asked for 100"
        assert entries[-1][1]["stateEstimate.z"] < 0.05  # on the ground, motors off
        assert not cf.supervisor.is_armed
        cf.high_level_commander.takeoff(0.5, 1.5)  # not armed: the motors stay off
        time.sleep(0.5)
        assert _log_for(scf, 0.1)[-1][1]["motor.m1"] == 0

        cf.supervisor.send_arming_request(True)
        time.sleep(0.2)
        assert cf.supervisor.is_armed and cf.supervisor.can_fly
        cf.high_level_commander.takeoff(0.5, 1.5)
        time.sleep(0.3)
        assert cf.supervisor.hl_control_active
        hover = _log_for(scf, 4.5)[-50:]  # the last 0.5 s
        z = np.array([d["stateEstimate.z"] for _, d in hover])
        assert np.all(np.abs(z - 0.5) < 0.08), z
        cf.high_level_commander.go_to(0.3, 0.0, 0.5, 0.0, 1.5)
        x = _log_for(scf, 3.5)[-1][1]["stateEstimate.x"]
        assert x == pytest.approx(0.3, abs=0.08)
        cf.high_level_commander.land(0.0, 2.0)
        assert _log_for(scf, 3.5)[-1][1]["stateEstimate.z"] < 0.12  # ground effect holds it a few cm up
        cf.high_level_commander.stop()  # as after any landing: motors off
        down = _log_for(scf, 0.5)[-1][1]
        assert down["motor.m1"] == 0 and down["stateEstimate.z"] < 0.03


def test_commander_thrust_lock_and_firmware_watchdog(quad_emulator):
    em = quad_emulator("crazyflie")
    with SyncCrazyflie(em.uri, cf=Crazyflie(rw_cache=None)) as scf:
        cf = scf.cf
        cf.supervisor.send_arming_request(True)
        time.sleep(0.2)
        for _ in range(20):  # thrust-locked: ignored until a zero-thrust setpoint
            cf.commander.send_setpoint(0, 0, 0, 45000)
            time.sleep(0.01)
        assert _log_for(scf, 0.1)[-1][1]["motor.m1"] == 0
        cf.commander.send_setpoint(0, 0, 0, 0)
        for _ in range(40):  # climb: pwm 45000 is ~1.4 x the weight on the Crazyflie 2.x's thrust curve
            cf.commander.send_setpoint(0, 0, 0, 45000)
            time.sleep(0.02)
        climbing = _log_for(scf, 0.1)[-1][1]
        assert climbing["stateEstimate.vz"] > 0.2 and climbing["motor.m1"] > 0
        # no more setpoints: levelled (thrust kept) after 0.5 s, motors off after 2 s
        entries = _log_for(scf, 2.6)
        t0 = entries[0][0]
        spinning = [t - t0 for t, d in entries if d["motor.m1"] > 0]
        assert 1.6 < max(spinning) < 2.4, max(spinning)
    kinds = [(r["kind"], r.get("action")) for r in em.records() if r["kind"] == "watchdog"]
    assert kinds[:2] == [("watchdog", "level"), ("watchdog", "motors_off")]  # (close_link then sends thrust 0)
