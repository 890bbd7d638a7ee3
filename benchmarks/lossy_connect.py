"""How often ``connect()`` succeeds on a lossy link, over many fresh emulator starts.

Each start builds a fresh emulator serving in a thread of this process (fault generator seeded from OS entropy, as
in real use) with ``--drop`` (and, on servo buses, ``--corrupt``) probability per reply / datagram, connects the
real driver through the stock client library (dynamixel-sdk, feetech-servo-sdk through :class:`ServoArm`; cflib
through :class:`CrazyflieDriver`; pymavlink through :class:`MavlinkDriver`), reads one state and disconnects.
Reported per driver: starts, failures (with their messages), connect time p50 / max (s), faults injected.

    .venv/bin/python benchmarks/lossy_connect.py --drivers dynamixel,feetech,crazyflie,mavlink --starts 100 \\
        --drop 0.01 --corrupt 0.01 --json benchmarks/figures/lossy_connect.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from robots.calibration import calibration_from_spec  # noqa: E402
from robots.quadrotor import get_quadrotor_spec  # noqa: E402
from robots.so101 import so101_spec  # noqa: E402
from sim2real.emulators.quad_reality import LinkFaults, QuadReality  # noqa: E402
from sim2real.emulators.reality import Faults, RealityProfile  # noqa: E402

DRIVERS = ("dynamixel", "feetech", "crazyflie", "mavlink")


def _timed_connect(emulator, robot, link_error: type[Exception]) -> tuple[float, str | None]:
    """Serve ``emulator`` in a thread, connect ``robot`` and read one state: (seconds taken, the ``link_error``
    message or None); the robot and the emulator are always shut down."""
    thread = emulator.start_thread()
    started, error = time.monotonic(), None
    try:
        robot.connect()
        robot.read_state()
    except link_error as err:
        error = str(err)
    finally:
        elapsed = time.monotonic() - started
        robot.disconnect()
        emulator.stop()
        thread.join(timeout=5)
    return elapsed, error


def _servo_start(protocol: str, drop: float, corrupt: float) -> tuple[float, str | None, int]:
    from sim2real.emulators.server import BusEmulator
    from sim2real.hal.dynamixel import DynamixelBus
    from sim2real.hal.feetech import FeetechBus
    from sim2real.hal.servo_arm import ServoArm
    from sim2real.hal.servo_bus import BusError

    spec = so101_spec()
    calibration = calibration_from_spec(spec)
    em = BusEmulator(protocol, RealityProfile(faults=Faults(drop_probability=drop, corrupt_probability=corrupt)))
    bus_class = DynamixelBus if protocol == "dynamixel" else FeetechBus
    arm = ServoArm(spec, bus_class(em.port, calibration.ids), calibration)
    elapsed, error = _timed_connect(em, arm, BusError)
    return elapsed, error, em.stats["dropped"] + em.stats["corrupted"]


def _flight_start(kind: str, drop: float) -> tuple[float, str | None, int]:
    from sim2real.hal.flight import LinkError

    reality = QuadReality(faults=LinkFaults(drop_probability=drop))
    spec = get_quadrotor_spec("crazyflie")
    if kind == "crazyflie":
        from sim2real.emulators.crazyflie import CrazyflieEmulator
        from sim2real.hal.crazyflie import CrazyflieDriver

        em = CrazyflieEmulator(reality, port=0)
        driver = CrazyflieDriver(spec, em.uris[0])
    else:
        from sim2real.emulators.mavlink import MavlinkEmulator
        from sim2real.hal.mavlink import MavlinkDriver

        em = MavlinkEmulator(reality, port=0)
        driver = MavlinkDriver(spec, f"udpout:127.0.0.1:{em.port}")
    elapsed, error = _timed_connect(em, driver, LinkError)
    links = em.faults if isinstance(em.faults, list) else [em.faults]
    return elapsed, error, sum(link.stats["dropped"] for link in links)


def measure(driver: str, starts: int, drop: float, corrupt: float) -> dict:
    times, failures, faults = [], [], 0
    for _ in range(starts):
        if driver in ("dynamixel", "feetech"):
            elapsed, error, injected = _servo_start(driver, drop, corrupt)
        else:
            elapsed, error, injected = _flight_start(driver, drop)
        times.append(elapsed)
        faults += injected
        if error is not None:
            failures.append(error)
    return {"driver": driver, "starts": starts, "failed": len(failures), "failures": failures,
            "connect_s_p50": float(np.median(times)), "connect_s_max": float(np.max(times)), "faults": faults,
            "drop": drop, "corrupt": corrupt if driver in ("dynamixel", "feetech") else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", default=",".join(DRIVERS), help=f"comma-separated, of {', '.join(DRIVERS)}")
    parser.add_argument("--starts", type=int, default=20, help="fresh emulator starts per driver")
    parser.add_argument("--drop", type=float, default=0.01, help="drop probability per reply / datagram")
    parser.add_argument("--corrupt", type=float, default=0.01, help="corrupt probability per reply (servo buses)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    for driver in args.drivers.split(","):
        if driver not in DRIVERS:
            parser.error(f"--drivers: {driver!r} is not one of {', '.join(DRIVERS)}")
        result = measure(driver, args.starts, args.drop, args.corrupt)
        results.append(result)
        print(f"{driver:10s} {result['failed']:3d}/{result['starts']} failed, connect p50 "
              f"{result['connect_s_p50']:.2f} s max {result['connect_s_max']:.2f} s, {result['faults']} faults "
              f"injected" + (f"; e.g. {result['failures'][0]}" if result["failures"] else ""), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
