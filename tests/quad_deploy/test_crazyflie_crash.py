"""A tumble through cflib, as the MAVLink crash test does it (tests/quad_deploy/test_mavlink_crash.py): the emulated
Crazyflie rolled over stops its motors and locks (supervisor: crashed), falls, the operator sets it upright, and the
driver's next arming asks the supervisor's crash recovery first and takes off from the floor. Real time, stock cflib
against an in-process emulator."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from robots.quadrotor import crazyflie_spec
from sim2real.emulators.crazyflie import CrazyflieEmulator
from sim2real.emulators.quad_reality import load_quad_reality
from sim2real.hal.crazyflie import CrazyflieDriver, init_cflib_drivers
from sim2real.hal.multirotor import Ctbr, Position
from quad_support import free_udp_port

init_cflib_drivers()
SPEC = crazyflie_spec()


def _send(driver: CrazyflieDriver, setpoint, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        driver.send_command(setpoint)
        time.sleep(0.02)


def _journal(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _wait_for(path, kind: str, seconds: float) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [r for r in _journal(path) if r["kind"] == kind]
        if found:
            return found
        time.sleep(0.05)
    return []


@pytest.fixture
def emulator(threaded_emulator, tmp_path):
    journal = str(tmp_path / "journal.jsonl")
    return threaded_emulator(lambda profile: CrazyflieEmulator(load_quad_reality(profile), port=free_udp_port(),
                                                               journal=journal)), journal


def test_a_tumbled_crazyflie_is_righted_recovered_and_flies_again(emulator):
    em, journal = emulator
    driver = CrazyflieDriver(SPEC, em.uris[0])
    driver.connect()
    try:
        driver.arm()
        _send(driver, Position(np.array([0.0, 0.0, 0.8])), 3.0)
        _send(driver, Ctbr(SPEC.weight, np.array([6.0, 0.0, 0.0])), 1.0)  # rad/s: rolls over
        tumbled = _wait_for(journal, "emergency", 2.0)
        assert tumbled and tumbled[0]["reason"] == "tumbled"
        assert em.vehicles[0].locked and em.quads[0].setpoint is None  # motors off
        # it lies still; the operator rights it within 1 s if it came down tipped past 45 deg
        deadline = time.monotonic() + 4.0
        while em.quads[0].tilt > math.radians(5) or not em.quads[0].on_ground():
            assert time.monotonic() < deadline, "the vehicle was not set upright"
            time.sleep(0.05)
        print("righted:", [r for r in _journal(journal) if r["kind"] == "righted"])
        assert em.vehicles[0].locked  # the tumble lock holds until crash recovery
        driver.arm()  # crash recovery, then arming
        assert not em.vehicles[0].locked and em.vehicles[0].armed
        _send(driver, Position(np.array([0.0, 0.0, 0.5])), 2.5)
        assert driver.read_state().position[2] > 0.3
        assert driver.land()
    finally:
        driver.disconnect()
