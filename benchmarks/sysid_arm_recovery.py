"""Arm system identification, recovery: excite the emulated SO-101 through the Dynamixel bus emulator on three
realities (``lab`` and ``--draws`` profiles drawn from issue 20's envelope, with encoder noise and lost/corrupted
replies), fit each log with ``sysid fit``'s pipeline, and compare every estimate with the profile's truth; the held-out
replay error before/after the fit and the wall time of each stage.

    nice -n 5 .venv/bin/python benchmarks/sysid_arm_recovery.py [--draws 2] [--seed 20] [--evaluations 300] \
        [--workers 1] [--rt-nice -10] [--rate-limit 1] [--in-process] [--only lab,draw2] \
        [--out benchmarks/results/sysid_arm_recovery.json]

The real-time stages (emulator + ``sysid collect``) run at ``--rt-nice`` (root only; on a shared, loaded machine a
starved emulator trips the loop's watchdog) with the watchdog limits at 25 periods (a stopped run is tried again,
3 times at most) and the bus reply timeout at 62 ms (``--latency-ms 30``: the envelope's 40 ms reply latency
outlasts the default 34 ms) and the servos' bus watchdog off (a loaded machine's 100 ms pause trips it, and a
tripped servo silently refuses every later goal: the log then holds targets the arm never followed); the fits
run at this script's niceness, ``--workers`` at a time. ``--rate-limit``: the collect's safety-layer rate limit
(fraction of the joint speed limit; default deploy's 0.75). Latency: the profile's reply latency against the
log's quickest read; the read -> write delay a policy feels is printed beside it (not a target).
``--in-process``: the same profiles and excitation on the in-process emulated arm (``tests/sysid/arm_flight.py``:
exact timing, no bus faults), the reference for what the excitation can identify without timing noise. Targets
(issue 20): latency within ±5 ms; mass, gains, strength within ±10 %; held-out replay error cut >= 3x. Prints a
Markdown table (``--table JSON``: of a past run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import yaml

from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.emulators.process import stop_process
from sim2real.emulators.reality import load_reality
from sim2real.sysid.arm import ARM_PARAMETERS
from sim2real.sysid.fit import FitSettings
from sim2real.sysid.identify import identify

TARGETS = {"latency_s": ("abs", 0.005), "mass_scale": ("rel", 0.10), "position_gain": ("rel", 0.10),
           "velocity_gain": ("rel", 0.10), "strength": ("rel", 0.10)}
FAULTS = {"drop_probability": 0.005, "corrupt_probability": 0.005}


def draw(rng: np.random.Generator, index: int) -> dict:
    """A reality profile from the issue's envelope (link mass x0.7-1.6, servo gains x0.5-1.5, strength x0.6-1.2,
    damping and friction up to 3x, latency 0-40 ms) plus small backlash, deadband and 1 tick of encoder noise."""
    return {"name": f"draw{index}", "mass_scale": round(float(rng.uniform(0.7, 1.6)), 3),
            "position_gain": round(float(0.1 * rng.uniform(0.5, 1.5)), 4),
            "velocity_gain": round(float(rng.uniform(0.5, 1.5)), 3), "strength": round(float(rng.uniform(0.6, 1.2)), 3),
            "joint_damping": round(float(0.05 * rng.uniform(1.0, 3.0)), 4),
            "lateral_friction": round(float(rng.uniform(1.0, 3.0)), 3),
            "latency_s": round(float(rng.uniform(0.0, 0.04)), 4),
            "backlash_rad": round(float(rng.uniform(0, 0.006)), 4),
            "deadband_ticks": int(rng.integers(0, 4)), "sensor_noise_ticks": 1.0, "faults": dict(FAULTS)}


def lab() -> dict:
    profile = load_reality("lab")
    data = {p.name: getattr(profile, p.name) for p in ARM_PARAMETERS}
    data.update(name="lab", sensor_noise_ticks=profile.sensor_noise_ticks, faults=dict(FAULTS),
                lateral_friction=profile.lateral_friction, gear_friction=profile.gear_friction,
                max_velocity=profile.max_velocity)
    return data


def collect(profile: dict, folder: str, rt_nice: int | None, rate_limit: float | None) -> tuple[str, float]:
    """Serve ``profile`` on an emulated Dynamixel bus and run ``sim2real sysid collect`` on it; (log, wall s)."""
    reality = os.path.join(folder, f"{profile['name']}.yaml")
    with open(reality, "w") as handle:
        yaml.safe_dump(profile, handle)
    calibration = os.path.join(folder, "calibration.json")
    with open(calibration, "w") as handle:
        handle.write(calibration_from_spec(so101_spec()).to_json())
    prefix = ["nice", "-n", str(rt_nice)] if rt_nice is not None else []
    emulator = subprocess.Popen(prefix + [sys.executable, "-m", "sim2real.cli", "emulate", "dynamixel", "--reality",
                                          reality], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = emulator.stdout.readline().split()[-1]
        log = os.path.join(folder, f"{profile['name']}.jsonl")
        for attempt in range(3):  # a loaded machine can stall the loop past its watchdog: the run stops safely
            started = time.monotonic()
            code = subprocess.call(prefix + [sys.executable, "-m", "sim2real.cli", "sysid", "collect", "--driver",
                                             "dynamixel", "--port", port, "--calibration", calibration, "--log", log,
                                             "--overrun-periods", "25", "--stale-periods", "25", "--latency-ms", "30",
                                             "--bus-watchdog", "0"]
                                   + ([] if rate_limit is None else ["--rate-limit", str(rate_limit)]))
            if code == 0:
                return log, time.monotonic() - started
            print(f"collect on {profile['name']} stopped (exit code {code}), attempt {attempt + 1}", flush=True)
        raise RuntimeError(f"collect on {profile['name']} failed 3 times; see {log}")
    finally:
        stop_process(emulator)


def collect_in_process(profile: dict, folder: str, rate_limit: float | None) -> tuple[str, float]:
    """The same excitation through the deployment loop on the in-process emulated arm (``tests/sysid/arm_flight``:
    the emulator's physics, sensor noise and reply latency on a fake clock; no bus, no faults, exact timing)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "sysid"))
    from arm_flight import InProcessArm
    from quad_flight import FakeClock

    from sim2real.emulators.reality import RealityProfile
    from sim2real.sysid.collect import collect_arm
    from sim2real.sysid.excitation_arm import Excitation

    clock = FakeClock()
    settings = {k: v for k, v in profile.items() if k != "faults"}
    robot = InProcessArm(RealityProfile(**settings), clock)
    robot.connect()
    rate = robot.spec.control_rate_hz
    targets = Excitation().targets(robot.spec, rate)
    log = os.path.join(folder, f"{profile['name']}.jsonl")
    started = time.monotonic()
    result, problems = collect_arm(robot, robot.spec, (0.0, 0.0, 0.0), targets, log, rate, clock=clock,
                                   sleep=clock.sleep, velocity_fraction=rate_limit)
    if result.stopped is not None or problems:
        raise RuntimeError(f"in-process collect on {profile['name']} stopped: {result.stopped} {problems}")
    return log, time.monotonic() - started


def fit_one(job: tuple[dict, str, str, int]) -> dict:
    profile, log, out, evaluations = job
    truth = {p.name: float(profile.get(p.name, p.nominal)) for p in ARM_PARAMETERS}  # unset: the emulator's
    started = time.monotonic()
    data = identify([log], out, 4.0, FitSettings(evaluations=evaluations), truth=truth)
    data["truth"] = truth
    data["fit_wall_s"] = time.monotonic() - started
    return data


def rows(data: dict) -> list[dict]:
    """The fitted parameters' rows plus those the log measured (latency from the logged write times)."""
    measured = [{"name": k, "truth": data["truth"][k], "estimate": v, "low": v, "high": v, "measured": True}
                for k, v in data.get("measured", {}).items()]
    return data["parameters"] + measured


def verdicts(data: dict) -> dict[str, bool]:
    out = {}
    for row in rows(data):
        if row["name"] in TARGETS:
            kind, tolerance = TARGETS[row["name"]]
            error = row["estimate"] - row["truth"]
            out[row["name"]] = abs(error) <= tolerance if kind == "abs" else abs(error / row["truth"]) <= tolerance
    out["held-out cut >= 3x"] = data["held_out_error"]["ratio"] >= 3.0
    return out


def table(results: list[dict]) -> str:
    names = [p.name for p in ARM_PARAMETERS]
    lines = ["| parameter | " + " | ".join(r["profile"]["name"] + " truth / estimate" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for name in names:
        cells = []
        for r in results:
            row = next(x for x in rows(r["fit"]) if x["name"] == name)
            ok = r["verdicts"].get(name)
            mark = "" if ok is None else (" ✓" if ok else " ✗")
            scale = 1e3 if name == "latency_s" else 1.0
            spread = "(measured)" if row.get("measured") else f"[{row['low'] * scale:.3g}, {row['high'] * scale:.3g}]"
            cells.append(f"{row['truth'] * scale:.4g} / {row['estimate'] * scale:.4g} {spread}{mark}")
        lines.append(f"| {name}{' (ms)' if name == 'latency_s' else ''} | " + " | ".join(cells) + " |")
    errors = [r["fit"]["held_out_error"] for r in results]
    cells = [f"{e['before'] * 1e3:.2f} → {e['after'] * 1e3:.2f} mrad ({e['ratio']:.1f}×)"
             f"{' ✓' if r['verdicts']['held-out cut >= 3x'] else ' ✗'}" for e, r in zip(errors, results)]
    delays = [r["fit"].get("command_delay_s") for r in results]
    if any(delays):
        lines.append("| read → write delay (ms, measured; not a target) | " + " | ".join(
            "—" if d is None else f"{d[1] * 1e3:.1f} [{d[0] * 1e3:.1f}, {d[2] * 1e3:.1f}]" for d in delays) + " |")
    lines.append("| held-out replay error | " + " | ".join(cells) + " |")
    lines.append("| gate | " + " | ".join("accepted" if r["fit"]["gate"]["accepted"] else "rejected"
                                          for r in results) + " |")
    lines.append("| wall: collect / fit (s) | " + " | ".join(f"{r['collect_s']:.0f} / {r['fit']['fit_wall_s']:.0f}"
                                                            for r in results) + " |")
    return "\n".join(lines)


def print_floors(folder: str, profiles: list[dict]) -> None:
    """The gate's replay error (all 4 s segments) of each log in ``folder`` under the true and the nominal
    parameters, split into the joint-angle and the servo-load part (mrad): the floor a fit cannot beat; then the
    same on the held-out segments alone, whose ratio is the most a fit's held-out cut can be expected to reach."""
    from sim2real.sysid.fit import set_error
    from sim2real.sysid.gate import split
    from sim2real.sysid.identify import model_for, read_deployment_log

    nominal = {p.name: p.nominal for p in ARM_PARAMETERS}
    for profile in profiles:
        truth = {p.name: float(profile.get(p.name, p.nominal)) for p in ARM_PARAMETERS}
        path = os.path.join(folder, f"{profile['name']}.jsonl")
        records = read_deployment_log(path)
        model = model_for(records, path)
        model.measured(records)
        segments = model.segments(records, 4.0)
        joints = len(model.spec.joint_names)
        cells = []
        for values in (truth, nominal):
            squares = [((model.simulate(s, values) - s.measured) * s.weights) ** 2 for s in segments]
            parts = [np.sqrt(np.mean([q.mean() for q in squares]))]
            parts += [np.sqrt(np.mean([q[:, cols].sum(axis=1).mean() / q.shape[1] for q in squares]))
                      for cols in (slice(0, joints), slice(joints, None))]
            cells.append(" / ".join(f"{v * 1e3:.2f}" for v in parts))
        print(f"{profile['name']}: replay error total / angles / load (mrad): truth {cells[0]}; nominal {cells[1]}")
        held = split([segments])[1]  # the gate's held-out segments: the cut no fit can beat is the truth's
        truth_error, nominal_error = set_error(model, held, truth), set_error(model, held, nominal)
        print(f"{profile['name']}: held-out error truth {truth_error * 1e3:.2f}, nominal {nominal_error * 1e3:.2f} "
              f"mrad: the truth's cut {nominal_error / truth_error:.2f}x")


def print_table(path: str) -> None:
    """The Markdown table of a results JSON written by an earlier run."""
    with open(path) as handle:
        results = json.load(handle)["results"]
    for r in results:
        r["fit"].setdefault("truth", {p.name: float(r["profile"].get(p.name, p.nominal)) for p in ARM_PARAMETERS})
        r["verdicts"] = verdicts(r["fit"])
    print(table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--evaluations", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rt-nice", type=int, default=None)
    parser.add_argument("--rate-limit", type=float, default=None, help="collect's rate limit, fraction (0, 1]")
    parser.add_argument("--in-process", action="store_true",
                        help="collect on the in-process emulated arm (exact timing, no bus) instead of the bus")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "sysid_arm_recovery.json"))
    parser.add_argument("--reuse", help="folder of an earlier run: fit its logs again instead of collecting")
    parser.add_argument("--only", help="comma-separated profile names to run (default: all)")
    parser.add_argument("--table", help="only print the table of this results JSON")
    parser.add_argument("--floors", help="only print the true and nominal parameters' replay errors of the logs in "
                                         "this folder (an earlier run's)")
    args = parser.parse_args()
    if args.table:
        print_table(args.table)
        return
    rng = np.random.default_rng(args.seed)
    profiles = [lab()] + [draw(rng, i + 1) for i in range(args.draws)]
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {p["name"] for p in profiles})
        if unknown:
            parser.error(f"--only {unknown[0]}: no such profile (lab, draw1..draw{args.draws})")
        profiles = [p for p in profiles if p["name"] in names]
    if args.floors:
        print_floors(args.floors, profiles)
        return
    folder = args.reuse or tempfile.mkdtemp(prefix="sysid-arm-")
    collected = []
    for profile in profiles:
        log = os.path.join(folder, f"{profile['name']}.jsonl")
        if args.reuse and os.path.exists(log):
            collected.append((profile, log, float("nan")))
            continue
        if args.in_process:
            log, seconds = collect_in_process(profile, folder, args.rate_limit)
        else:
            log, seconds = collect(profile, folder, args.rt_nice, args.rate_limit)
        print(f"collected {profile['name']} in {seconds:.0f} s: {log}", flush=True)
        collected.append((profile, log, seconds))
    jobs = [(p, log, os.path.join(folder, f"fitted_{p['name']}.yaml"), args.evaluations) for p, log, _ in collected]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        fits = list(pool.map(fit_one, jobs))
    results = [{"profile": p, "collect_s": s, "fit": f, "verdicts": verdicts(f)}
               for (p, _, s), f in zip(collected, fits)]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"evaluations": args.evaluations, "seed": args.seed, "folder": folder,
                   "rate_limit": args.rate_limit, "in_process": args.in_process, "load_average": os.getloadavg(),
                   "results": results}, handle,
                  indent=1, default=float)
    print(table(results))
    print(f"outputs (profiles, reports) in {folder}; JSON {args.out}")


if __name__ == "__main__":
    main()
