"""Quadcopter deployment timing through the real client libraries and the emulators (each in its own process).

Per driver (``crazyflie``: cflib over CRTP/UDP; ``mavlink``: pymavlink over UDP to the PX4-like emulator):

* link round trip: CRTP link-control echo (cflib's latency ping) / COMMAND_LONG → COMMAND_ACK (REQUEST_MESSAGE);
* command-to-state latency: hovering under a position setpoint, a 1 rad/s yaw-rate step is commanded (CTBR at the
  hover thrust) and timed until the measured body rate (state from the driver) passes 0.2 rad/s — link, firmware
  commander, rate controller, motor lag and the state stream together;
* achievable loop rate: the deployment loop's schedule (deadline = start + k·period, sleep then spin) with one
  ``read_state`` + one ``send_command`` per period at 48…400 Hz for ``--seconds``: achieved period p50/p99, start
  lateness p99, state age p50/p99, and the share of steps whose state is older than the loop's default stale limit
  (2.5 periods).

    nice -n 10 .venv/bin/python benchmarks/quad_deploy_timing.py --json benchmarks/figures/quad_deploy_timing.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from robots.quadrotor import crazyflie_spec  # noqa: E402
from sim2real.hal.multirotor import Ctbr, Position  # noqa: E402

SPEC = crazyflie_spec()


def start_emulator(kind: str, port: int, extra: tuple[str, ...] | list[str] = ()) -> subprocess.Popen:
    """``sim2real emulate KIND --port PORT [extra]`` in a subprocess, once it has printed its address."""
    process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "emulate", kind, "--port", str(port), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = process.stdout.readline()
    if " on " not in line:
        raise RuntimeError(f"{kind} emulator did not start: {line!r}")
    return process


def percentiles(values, qs=(50, 99)) -> list[float]:
    return [round(float(np.percentile(values, q)) * 1e3, 3) for q in qs]


def crazyflie_round_trip(driver, n: int) -> list[float]:
    """CRTP echo (port 15, channel 0) round trips (s)."""
    from cflib.crtp.crtpstack import CRTPPacket

    got = threading.Event()
    driver.cf.add_header_callback(lambda pk: got.set(), 15, 0)
    times = []
    for i in range(n):
        got.clear()
        pk = CRTPPacket()
        pk.set_header(15, 0)
        pk.data = struct.pack("<Bd", 0x42, float(i))  # cflib's ping layout, another header: its statistics ignore it
        start = time.perf_counter()
        driver.cf.send_packet(pk)
        if got.wait(1.0):
            times.append(time.perf_counter() - start)
        time.sleep(0.005)
    return times


def mavlink_round_trip(driver, n: int) -> list[float]:
    """COMMAND_LONG REQUEST_MESSAGE(HEARTBEAT) → COMMAND_ACK round trips (s)."""
    m = driver._mavutil.mavlink
    times = []
    for _ in range(n):
        start = time.perf_counter()
        if driver.command(m.MAV_CMD_REQUEST_MESSAGE, m.MAVLINK_MSG_ID_HEARTBEAT) is not None:
            times.append(time.perf_counter() - start)
        time.sleep(0.005)
    return times


def hold(driver, target: np.ndarray, seconds: float, rate: float = 50.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        driver.send_command(Position(target))
        time.sleep(1.0 / rate)


def step_latency(driver, target: np.ndarray, trials: int) -> list[float]:
    """Time (s) from the first yaw-rate-step setpoint to a measured body rate above 0.2 rad/s."""
    out = []
    for _ in range(trials):
        hold(driver, target, 1.5)
        start = time.monotonic()
        while time.monotonic() - start < 1.0:
            driver.send_command(Ctbr(SPEC.weight, np.array([0.0, 0.0, 1.0])))
            if driver.read_state().body_rates[2] > 0.2:
                out.append(time.monotonic() - start)
                break
            time.sleep(0.002)
    hold(driver, target, 1.0)
    return out


def loop_rates(driver, target: np.ndarray, rates, seconds: float) -> list[dict]:
    rows = []
    for rate in rates:
        period = 1.0 / rate
        start = time.monotonic()
        lateness, ages, ticks = [], [], []
        for k in range(int(seconds * rate)):
            deadline = start + k * period
            remaining = deadline - time.monotonic()
            if remaining > 0.0015:
                time.sleep(remaining - 0.001)
            while time.monotonic() < deadline:
                pass
            now = time.monotonic()
            lateness.append(now - deadline)
            ticks.append(now)
            state = driver.read_state()
            ages.append(time.monotonic() - state.timestamp)
            driver.send_command(Position(target))
        actual = np.diff(ticks)
        rows.append({"rate_hz": rate, "period_p50_p99_ms": percentiles(actual), "late_p99_ms": percentiles(lateness)[1],
                     "state_age_p50_p99_ms": percentiles(ages),
                     "stale_share": round(float(np.mean(np.array(ages) > 2.5 * period)), 4)})
        hold(driver, target, 0.5)
    return rows


def run_driver(kind: str, port: int, args) -> dict:
    emulator = start_emulator(kind, port)
    try:
        if kind == "crazyflie":
            from sim2real.hal.crazyflie import CrazyflieDriver

            driver = CrazyflieDriver(SPEC, f"udp://127.0.0.1:{port}", "ctbr", setpoint_timeout_s=5.0)
        else:
            from sim2real.hal.mavlink import MavlinkDriver

            driver = MavlinkDriver(SPEC, f"udpout:127.0.0.1:{port}", state_rate_hz=args.mavlink_state_hz)
        connect_start = time.perf_counter()
        driver.connect()
        connect_s = time.perf_counter() - connect_start
        rtt = crazyflie_round_trip(driver, args.pings) if kind == "crazyflie" else mavlink_round_trip(driver, args.pings)
        driver.arm()
        target = np.array([0.0, 0.0, 1.0])
        hold(driver, target, 4.0)
        steps = step_latency(driver, target, args.trials)
        loops = loop_rates(driver, target, args.rates, args.seconds)
        driver.land()
        driver.disconnect()
        return {"connect_s": round(connect_s, 3), "round_trip_p50_p99_ms": percentiles(rtt), "round_trips": len(rtt),
                "command_to_state_ms": {"p50_p90": percentiles(steps, (50, 90)), "n": len(steps)}, "loops": loops}
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", nargs="+", default=["crazyflie", "mavlink"])
    parser.add_argument("--rates", nargs="+", type=float, default=[48.0, 100.0, 200.0, 400.0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per loop rate")
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--trials", type=int, default=10, help="yaw-rate steps")
    parser.add_argument("--mavlink-state-hz", type=float, default=100.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_average_start": os.getloadavg(),
              "python": platform.python_version(), "args": vars(args)}
    for i, kind in enumerate(args.drivers):
        result[kind] = run_driver(kind, 19860 + i if kind == "crazyflie" else 14560 + i, args)
        print(kind, json.dumps(result[kind], indent=1), flush=True)
    result["load_average_end"] = os.getloadavg()
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
