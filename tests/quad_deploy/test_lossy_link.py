"""Lossy UDP links: stock cflib through :class:`CrazyflieDriver` against fresh in-process Crazyflie emulators whose
link faults come from the reality profile's ``faults`` section. Connect succeeds at 1 % datagram loss in every fresh
start and in bounded time, a silent vehicle fails in one line after bounded attempts, and fault sequences are fresh
per start unless seeded."""
from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

from robots.quadrotor import get_quadrotor_spec
from sim2real.emulators.crazyflie import CrazyflieEmulator
from sim2real.emulators.quad_reality import LinkFaultState, load_quad_reality
from sim2real.hal.crazyflie import CrazyflieDriver
from sim2real.hal.flight import LinkError

STARTS = 5


@pytest.fixture
def crazyflie(threaded_emulator):
    """Factory ``crazyflie(**faults)``: a fresh emulator (ephemeral UDP port) serving in a thread, these ``faults``
    read from its reality profile."""
    return lambda **faults: threaded_emulator(lambda path: CrazyflieEmulator(load_quad_reality(path), port=0),
                                              **faults)


def test_connect_succeeds_in_every_fresh_start_at_one_percent_loss(crazyflie):
    spec = get_quadrotor_spec("crazyflie")
    dropped = 0
    for _ in range(STARTS):
        em = crazyflie(drop_probability=0.01)
        driver = CrazyflieDriver(spec, em.uris[0])
        started = time.monotonic()
        try:
            driver.connect()
            assert time.monotonic() - started < 15.0  # typically < 1 s; never a hang
            assert np.all(np.isfinite(driver.read_state().position))
        finally:
            driver.disconnect()
            em.stop()
        dropped += em.faults[0].stats["dropped"]
    assert dropped > 0  # datagrams really were lost


def test_a_silent_vehicle_fails_connect_in_one_line_after_bounded_attempts(crazyflie):
    em = crazyflie(silent_after_s=0.0)
    driver = CrazyflieDriver(get_quadrotor_spec("crazyflie"), em.uris[0])
    started = time.monotonic()
    with pytest.raises(LinkError) as raised:
        driver.connect()
    elapsed = time.monotonic() - started
    assert str(raised.value) == (f"{em.uris[0]}: connect failed 3 times (last: no answer for 1 s during the TOC "
                                 f"and parameter download)")
    assert elapsed < 15.0  # 3 attempts x (1 s without an answer + up to 2 s for cflib to close the link) + slack


def _decisions(path: str, count: int = 200) -> list[bool]:
    """Which of ``count`` incoming datagrams a fresh fault generator of this profile lets through."""
    faults = LinkFaultState(load_quad_reality(path).faults)
    return [faults.accept(now=1.0) for _ in range(count)]


def test_link_fault_sequence_is_fresh_per_start_and_repeats_with_a_seed(tmp_path):
    fresh, seeded = tmp_path / "fresh.yaml", tmp_path / "seeded.yaml"
    fresh.write_text(yaml.safe_dump({"faults": {"drop_probability": 0.3, "seed": None}}))
    seeded.write_text(yaml.safe_dump({"faults": {"drop_probability": 0.3, "seed": 99}}))
    assert _decisions(str(fresh)) != _decisions(str(fresh))  # P(equal) = 0.58^200 < 1e-40
    first = _decisions(str(seeded))
    assert first == _decisions(str(seeded)) and not all(first)  # the same datagrams dropped, and some were
