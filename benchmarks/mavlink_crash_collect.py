"""A crashing flight, then ``sim2real sysid collect``, against one ``sim2real emulate mavlink`` process (issue 20: the
sysid loop's collect after a crashing "before" flight). The flight is the ordinary multirotor deployment loop
through :class:`sim2real.hal.mavlink.MavlinkDriver` with a policy that rolls the vehicle over (hover thrust, full
roll rate) and the default flight envelope (tilt trip 69 deg, geofence ±1.5 m); the emulated vehicle keeps PX4's
defaults (flight termination off), so it is the companion's safe stop (AUTO.LAND) and the land detector that end the
flight. Prints the flight's stop record, the collect's exit code and the emulator's journal events.

    nice -n -10 .venv/bin/python benchmarks/mavlink_crash_collect.py \\
        [--reality launch/realities/crazyflie_sysid_slow.yaml] [--out /tmp/mavlink-crash]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "quad_deploy"))

from quad_deploy_timing import start_emulator  # noqa: E402
from test_mavlink_crash import Flip  # noqa: E402  (the tests' roll-over policy: hover thrust, full roll rate)

from robots.quadrotor import crazyflie_spec  # noqa: E402
from sim2real.deploy.log import DeploymentLog  # noqa: E402
from sim2real.deploy.loop import LoopConfig  # noqa: E402
from sim2real.deploy.multirotor import MultirotorDeploymentLoop  # noqa: E402
from sim2real.emulators.process import stop_process  # noqa: E402
from sim2real.hal.mavlink import MavlinkDriver  # noqa: E402
from sim2real.hal.safety import MultirotorSafetyConfig, MultirotorSafetyLayer  # noqa: E402
from sim2real.tasks.quadrotor import make_quadrotor_task  # noqa: E402


def crash_flight(url: str, log: str) -> dict | None:
    """One episode of the roll-over policy; the stop record."""
    spec = crazyflie_spec()
    config = MultirotorSafetyConfig.from_spec(spec, np.array([-1.5, -1.5, -0.1]), np.array([1.5, 1.5, 2.0]))
    driver = MavlinkDriver(spec, url)
    driver.connect()
    deployment_log = DeploymentLog(log)
    try:
        loop = MultirotorDeploymentLoop(driver, make_quadrotor_task("hover", spec), Flip(),
                                        MultirotorSafetyLayer(config, spec.max_rpm), deployment_log,
                                        LoopConfig(48.0, 1, 96, stale_after_s=15 / 48, overrun_after_s=20 / 48))
        return loop.run().stopped
    finally:
        deployment_log.close()
        driver.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reality", default=os.path.join(ROOT, "launch", "realities", "crazyflie_sysid_slow.yaml"))
    parser.add_argument("--out", default="/tmp/mavlink-crash")
    parser.add_argument("--port", type=int, default=14577)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    journal = os.path.join(args.out, "journal.jsonl")
    if os.path.exists(journal):
        os.remove(journal)
    emulator = start_emulator("mavlink", args.port, ["--reality", args.reality, "--journal", journal])
    url = f"udpout:127.0.0.1:{args.port}"
    try:
        print("crash flight stopped:", json.dumps(crash_flight(url, os.path.join(args.out, "crash.jsonl"))), flush=True)
        code = subprocess.call([sys.executable, "-m", "sim2real.cli", "sysid", "collect", "--driver", "mavlink",
                                "--address", url, "--log", os.path.join(args.out, "excitation.jsonl"),
                                "--priority", "nice", "--stale-periods", "15", "--overrun-periods", "20"], cwd=ROOT)
        print("collect exit code", code)
    finally:
        stop_process(emulator)
    with open(journal, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    print("emulator events:", [e for e in events if e["kind"] not in ("setpoint", "command")])


if __name__ == "__main__":
    main()
