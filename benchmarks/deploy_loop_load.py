"""Where the time of a deployment-loop step goes on a busy machine, and how late steps start.

The shipped Crazyflie hover policy (PPO, CTBR) flies through cflib against the Crazyflie emulator (its own process,
``launch/realities/crazyflie_lab.yaml``) at 48 Hz with the real :class:`MultirotorDeploymentLoop`, while ``N``
busy-loop processes load the machine. The watchdog limits are set out of reach so that every flight runs to the end;
what a given limit would have done is computed from the log afterwards. Per flight:

* step start lateness (the watchdog's overrun measure) p50 / p99 / max, in control periods, and how many flights
  would have tripped at 1, 1.5, 2, 3 and 5 periods;
* newest-state age p99 / max (the stale-state measure), in periods;
* wall time per step spent in ``read_state``, the policy's ``act``, ``send_command`` and the log write (p50 / p99
  / max, ms) and the CPU time of the same calls (``time.thread_time``: what is not CPU time is waiting for a core),
  and the garbage collector's pauses (count, max, total, ms, from ``gc.callbacks``).

Variants (``LoopConfig.priority``): ``none`` (the default), ``nice`` (the loop thread at nice −10), ``fifo``
(SCHED_FIFO 10).

    .venv/bin/python benchmarks/deploy_loop_load.py --loads 0,3,5 --flights 3 --seconds 10 \\
        --variants none,nice --json benchmarks/figures/deploy_loop_load.json
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "quad_deploy"))

from quad_support import HOVER_POLICY, REALITIES, QuadEmulator  # noqa: E402
from robots.quadrotor import crazyflie_spec  # noqa: E402
from sim2real.deploy.log import DeploymentLog, read_log  # noqa: E402
from sim2real.deploy.loop import LoopConfig  # noqa: E402
from sim2real.deploy.multirotor import MultirotorDeploymentLoop  # noqa: E402
from sim2real.hal.crazyflie import CrazyflieDriver  # noqa: E402
from sim2real.hal.safety import MultirotorSafetyConfig, MultirotorSafetyLayer  # noqa: E402
from sim2real.tasks.quadrotor import make_quadrotor_task  # noqa: E402

RATE_HZ = 48.0
VARIANTS = ("none", "nice", "fifo")
TRIP_PERIODS = (1.0, 1.5, 2.0, 3.0, 5.0)


def _burn() -> None:
    while True:
        pass


class Stopwatch:
    """Wall and CPU durations (s) of named calls."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def wrap(self, name: str, function):
        times, cpu = self.times.setdefault(name, []), self.cpu.setdefault(name, [])

        def timed(*args, **kwargs):
            start, start_cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                times.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
        return timed


class GcPauses:
    """Collector pauses (s) while installed, by generation."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))


def _ms(values) -> list[float]:
    values = np.asarray(values, dtype=float) * 1e3
    if not len(values):
        return [0.0, 0.0, 0.0]
    return [round(float(np.percentile(values, 50)), 3), round(float(np.percentile(values, 99)), 3),
            round(float(values.max()), 3)]


def fly(policy, variant: str, seconds: float, tmp: str) -> dict:
    """One flight through a fresh emulator; the figures of its policy steps."""
    spec = crazyflie_spec()
    reality = os.path.join(tmp, "reality.yaml")
    with open(os.path.join(REALITIES, "crazyflie_lab.yaml")) as source, open(reality, "w") as target:
        yaml.safe_dump(yaml.safe_load(source), target)
    em = QuadEmulator("crazyflie", reality, os.path.join(tmp, "journal.jsonl"))
    watch, pauses = Stopwatch(), GcPauses()
    try:
        driver = CrazyflieDriver(spec, em.uri)
        driver.connect()
        driver.read_state = watch.wrap("read", driver.read_state)
        driver.send_command = watch.wrap("send", driver.send_command)
        policy.act = watch.wrap("policy", type(policy).act.__get__(policy))
        path = os.path.join(tmp, "log.jsonl")
        log = DeploymentLog(path)
        log.write = watch.wrap("log", log.write)
        safety = MultirotorSafetyLayer(MultirotorSafetyConfig.from_spec(spec, np.array([-1.5, -1.5, -0.1]),
                                                                        np.array([1.5, 1.5, 2.0])), spec.max_rpm)
        config = LoopConfig(RATE_HZ, 1, int(seconds * RATE_HZ), overrun_after_s=60.0, stale_after_s=60.0,
                            priority=variant)
        gc.callbacks.append(pauses)
        try:
            result = MultirotorDeploymentLoop(driver, make_quadrotor_task("hover", spec), policy, safety, log,
                                              config).run()
        finally:
            gc.callbacks.remove(pauses)
            log.close()
            driver.disconnect()
        records = read_log(path)
    finally:
        em.stop()
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    late = np.array([r["late"] for r in steps]) * RATE_HZ
    age = np.array([r["state_age"] for r in steps]) * RATE_HZ
    gens = [p for p in pauses.pauses]
    return {"variant": variant, "priority": records[0].get("priority"), "steps": len(steps),
            "stopped": None if result.stopped is None else result.stopped["reason"],
            "late_periods": [round(float(np.percentile(late, 50)), 3), round(float(np.percentile(late, 99)), 3),
                             round(float(late.max()), 3)],
            "would_trip": {str(k): bool(late.max() > k) for k in TRIP_PERIODS},
            "state_age_periods": [round(float(np.percentile(age, 99)), 3), round(float(age.max()), 3)],
            "ms": {name: _ms(times) for name, times in watch.times.items()},
            "cpu_ms": {name: _ms(times) for name, times in watch.cpu.items()},
            "gc": {"count": len(gens), "by_generation": [sum(1 for g, _ in gens if g == i) for i in range(3)],
                   "max_ms": round(max((d for _, d in gens), default=0.0) * 1e3, 3),
                   "total_ms": round(sum(d for _, d in gens) * 1e3, 3)},
            "loadavg": open("/proc/loadavg").read().split()[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", default="0,3,5", help="busy-loop processes beside the flight, comma-separated")
    parser.add_argument("--variants", default="none,nice", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--flights", type=int, default=3, help="flights per load and variant")
    parser.add_argument("--seconds", type=float, default=10.0, help="policy time per flight, s")
    parser.add_argument("--json", help="write every flight's figures here")
    args = parser.parse_args()
    import torch

    from sim2real.policy_files import load_policy
    from sim2real.launch import resolve

    torch.set_num_threads(1)  # as sim2real deploy does
    policy, _ = load_policy(os.path.join(HOVER_POLICY, "model.zip"), resolve(os.path.join(HOVER_POLICY, "launch.yaml")))
    rows = []
    print(f"{os.cpu_count()} CPUs, Python {platform.python_version()}; 48 Hz (period 20.8 ms)", flush=True)
    print("| load | variant | flights | late p99 / max (periods) | trips at 1 / 1.5 / 2 / 3 / 5 periods | state age "
          "max (periods) | read / policy / send / log p99 wall (ms) | same, p99 CPU (ms) | GC pauses, max (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for load in [int(n) for n in args.loads.split(",")]:
        burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(load)]
        for burner in burners:
            burner.start()
        try:
            for variant in args.variants.split(","):
                flights = []
                for _ in range(args.flights):
                    with tempfile.TemporaryDirectory() as tmp:
                        flights.append({"load": load, **fly(policy, variant, args.seconds, tmp)})
                rows += flights
                late = [f["late_periods"] for f in flights]
                trips = [sum(f["would_trip"][str(k)] for f in flights) for k in TRIP_PERIODS]
                names = ("read", "policy", "send", "log")
                p99 = {name: max(f["ms"][name][1] for f in flights) for name in names}
                cpu = {name: max(f["cpu_ms"][name][1] for f in flights) for name in names}
                print(f"| {load} | {variant} | {len(flights)} | {max(x[1] for x in late):.2f} / "
                      f"{max(x[2] for x in late):.2f} | {' / '.join(map(str, trips))} | "
                      f"{max(f['state_age_periods'][1] for f in flights):.2f} | "
                      f"{' / '.join(f'{p99[n]:.2f}' for n in names)} | {' / '.join(f'{cpu[n]:.2f}' for n in names)} | "
                      f"{sum(f['gc']['count'] for f in flights)}, {max(f['gc']['max_ms'] for f in flights):.1f} |",
                      flush=True)
        finally:
            for burner in burners:
                burner.kill()
                burner.join()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpus": os.cpu_count(), "rate_hz": RATE_HZ, "flights": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
