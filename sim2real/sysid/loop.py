"""``sysid loop``: the whole real-to-sim-to-real round on one robot (or emulator), as the three-command recipe does it
(``sysid collect``, ``sysid fit --launch``, ``train``) plus the deployments before and after.

1. deploy the current policy (``--policy``) for ``--episodes`` episodes: the gap before;
2. collect an excitation log; 3. fit it (the replay gate must accept, else the loop stops and says why);
4. train from the launch file with the fitted ranges (``sim2real train``, a child process, at ``--timesteps`` or
   :func:`retraining_budget`: the launch file's budget, ``OUTSIDE_BUDGET_SCALE`` times it when a fitted range leaves
   the launch file's); the new run's last evaluation in simulation must reach ``--min-sim-success`` (default
   ``MIN_SIM_SUCCESS``), else it is not deployed (exit code 4); 5. deploy the new policy for the same episodes: the
   gap after.
Deployments and training run as child ``sim2real`` processes (each its own safe stop, log and exit code); their
success rates are read from the deployment logs' summary records; for quadcopters also each episode's hold RMS
(after its first second) and the episodes a trip ended early (a crash, a tilt or geofence trip). Training uses
whatever simulator the launch file names: ``env.simulator: batched`` (``crazyflie_hover_fast``) trains on the batched
numpy quadrotor in about a minute. Everything lands in ``--out``, with ``loop.json`` (stage wall times, the load
average and both deployments' figures).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from sim2real.errors import UserError
from sim2real.io import atomic_write_json

# Retraining budget when the fit lies outside the launch file's ranges: a vehicle outside them (slower motors, more
# latency) is harder to fly than the ones the launch file's budget was sized for. crazyflie_hover_fast on
# crazyflie_sysid_slow's fit (BENCHMARKS.md, quad "Loop closure"): 1x crashes, 2x holds 3.7 cm, 4x is the
# measured default.
OUTSIDE_BUDGET_SCALE = 4
MIN_SIM_SUCCESS = 0.5  # the retrained policy's own evaluation in simulation must reach this before it is deployed


def _cli(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "sim2real.cli", *arguments]


def _connection_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--driver", args.driver]
    if args.driver in ("crazyflie", "mavlink"):
        flags += ["--uri" if args.driver == "crazyflie" else "--url", args.address or ""]
    else:
        flags += ["--port", args.port or "", "--baud", str(args.baud), "--bus-watchdog", str(args.bus_watchdog),
                  "--latency-ms", str(args.latency_ms)]
        if args.calibration:
            flags += ["--calibration", args.calibration]
    return flags


@dataclass(frozen=True)
class Deployment:
    """What one deployment did: ``success_rate`` of the episodes flown, the deploy ``exit_code``, ``episodes``
    flown of ``requested``, ``hold_rms_m`` (multirotors: each episode's RMS position error after its first second, m)
    and ``stopped`` (the trip's kind and reason when the run stopped early, else None)."""

    success_rate: float
    exit_code: int
    requested: int
    episodes: int = 0
    hold_rms_m: list[float] = field(default_factory=list)
    stopped: str | None = None

    def describe(self) -> str:
        text = f"success {self.success_rate:.0%}, {self.episodes}/{self.requested} episodes"
        if self.hold_rms_m:
            text += (f", hold RMS {np.mean(self.hold_rms_m) * 100:.1f} cm mean ("
                     + ", ".join(f"{r * 100:.1f}" for r in self.hold_rms_m) + " cm)")
        return text + (f", stopped: {self.stopped}" if self.stopped else "")


def deployment_outcome(records: list[dict], requested: int, exit_code: int, log: str = "log") -> Deployment:
    """The :class:`Deployment` a deployment log's records describe (its summary and episode records)."""
    summary = next((r for r in records if r.get("type") == "summary"), None)
    if summary is None:
        raise UserError(f"deployment wrote no summary (exit code {exit_code}); see {log}")
    ends = [r for r in records if r.get("type") == "episode"]
    stopped = summary.get("stopped")
    return Deployment(float(summary["success_rate"]), exit_code, requested, len(ends),
                      [float(r["rms_distance"]) for r in ends if "rms_distance" in r],
                      f"{stopped.get('kind')}: {stopped.get('reason')}" if stopped else None)


def deployed(policy: str, launch: str | None, args: argparse.Namespace, log: str) -> Deployment:
    """Deploy ``policy`` for ``args.episodes`` episodes (``args.steps`` steps each where given) through
    ``sim2real deploy``."""
    from sim2real.deploy.log import read_log

    command = _cli("deploy", policy, *_connection_flags(args), "--episodes", str(args.episodes), "--log", log)
    for flag in ("steps", "overrun_periods", "stale_periods", "priority"):
        if getattr(args, flag, None) is not None:
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if launch:
        command += ["--launch", launch]
    code = subprocess.call(command)
    if not os.path.exists(log):
        raise UserError(f"deployment of {policy} wrote no log (exit code {code}); see {log}")
    return deployment_outcome(read_log(log), args.episodes, code, log)


def training_command(launch: str, runs: str, timesteps: int | None) -> list[str]:
    """``sim2real train`` from ``launch`` into ``runs`` (the launch file's simulator and budget unless
    ``timesteps``)."""
    return _cli("train", launch, f"output_dir={runs}", *([f"budget.total_timesteps={timesteps}"] if timesteps else []))


def _ranges(config: dict) -> dict[tuple[str, str], tuple[float, float]]:
    """(group, Param) → sampling range of a resolved launch mapping's ``randomizers:`` (each group's declared
    defaults for the Params it leaves out). Parsed as for an env with an object and cameras, so that every Param a
    launch file may name is known; both sides of a comparison get the same defaults."""
    from randomizers.launch import parse_randomizers
    from randomizers.wrappers.base import EnvTraits

    entries = parse_randomizers(config.get("randomizers") or [], EnvTraits(has_object=True, rgb=True))
    return {(e.group, p.name): tuple(p.range) for e in entries if e.enabled for p in e.space if p.range is not None}


def outside_ranges(launch: dict, fitted: dict) -> list[str]:
    """The Params of resolved launch mapping ``fitted`` whose range is not inside the one ``launch`` trains on (a
    Param ``launch`` does not randomize counts when its fitted range is not a point)."""
    mine, theirs = _ranges(launch), _ranges(fitted)
    out = []
    for key, (low, high) in theirs.items():
        known = mine.get(key)
        if (known is None and high > low) or (known is not None and (low < known[0] or high > known[1])):
            out.append(key[1])
    return out


def retraining_budget(launch: str, fitted_launch: str) -> tuple[int, list[str]]:
    """Training steps for ``fitted_launch`` (the fit's launch file made from ``launch``): ``launch``'s budget, times
    ``OUTSIDE_BUDGET_SCALE`` when a fitted range leaves ``launch``'s; and the Params that left."""
    from sim2real.launch import resolve

    original, fitted = resolve(launch), resolve(fitted_launch)
    outside = outside_ranges(original, fitted)
    budget = int(fitted["budget"]["total_timesteps"])
    return (budget * OUTSIDE_BUDGET_SCALE if outside else budget), outside


def simulated_success(run: str) -> float | None:
    """The success rate of ``run``'s last evaluation in simulation (its ``evaluations.jsonl``); None without one."""
    from sim2real.deploy.log import read_log

    path = os.path.join(run, "evaluations.jsonl")
    if not os.path.exists(path):
        return None
    rates = [r["success_rate"] for r in read_log(path) if isinstance(r.get("success_rate"), (int, float))]
    return float(rates[-1]) if rates else None


def trained(launch: str, runs: str, timesteps: int | None) -> str:
    """Train from ``launch`` in a child ``sim2real train``; the new run's directory."""
    if subprocess.call(training_command(launch, runs, timesteps)) != 0:
        raise UserError(f"training from {launch} failed")
    return newest_run(runs)


def newest_run(parent: str) -> str:
    runs = [os.path.join(parent, d) for d in os.listdir(parent)] if os.path.isdir(parent) else []
    if not runs:
        raise UserError(f"training wrote no run under {parent}")
    return max(runs, key=os.path.getmtime)


def close_the_loop(args: argparse.Namespace, collect: Callable[[argparse.Namespace, str], int],
                   fit: Callable[[argparse.Namespace, list[str], str, str | None], dict],
                   deploy: Callable[[str, str | None, argparse.Namespace, str], Deployment] = deployed,
                   train: Callable[[str, str, int | None], str] = trained) -> int:
    """Run the round; print each stage's wall time and the deployments' figures before and after. ``deploy(policy,
    launch, args, log)`` and ``train(launch, runs, timesteps) -> run`` default to child ``sim2real`` processes."""
    from sim2real.launch import resolve

    from sim2real.launch.files import find_launch_file

    resolve(args.launch)  # refused in one line before the robot moves
    args.launch = find_launch_file(args.launch)
    os.makedirs(args.out, exist_ok=True)
    times: dict[str, float] = {}

    def stage(name: str, work: Callable[[], object]) -> object:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        value = work()
        times[name] = time.monotonic() - started
        return value

    record: dict = {"launch": args.launch, "policy": args.policy, "stages_s": times}

    def finish(code: int) -> int:
        atomic_write_json(os.path.join(args.out, "loop.json"), {**record, "load_average": os.getloadavg()})
        return code

    before = stage("deploy before", lambda: deploy(args.policy, None, args, os.path.join(args.out, "before.jsonl")))
    record["before"] = asdict(before)
    print(f"before: {before.describe()}", flush=True)
    log = os.path.join(args.out, "excitation.jsonl")
    code = stage("collect", lambda: collect(args, log))
    if code != 0:
        finish(code)
        raise UserError(f"the excitation run stopped early (exit code {code}); see {log}", exit_code=code)
    data = stage("fit", lambda: fit(args, [log], os.path.join(args.out, "fitted.yaml"), args.launch))
    record["fit"] = {"accepted": data["gate"]["accepted"], "held_out_error": data["held_out_error"],
                     "estimates": {row["name"]: row["estimate"] for row in data["parameters"]}}
    if not data["gate"]["accepted"]:
        print("the replay gate refused the fit: not retraining (see the report)")
        return finish(3)
    launch = data["outputs"]["launch"]
    timesteps = args.timesteps
    if timesteps is None:
        timesteps, outside = retraining_budget(args.launch, launch)
        record["outside_ranges"] = outside
        if outside:
            print(f"fitted ranges outside the launch file's ({', '.join(outside)}): training "
                  f"{OUTSIDE_BUDGET_SCALE}x its budget, {timesteps} steps (--timesteps to choose)", flush=True)
    record["timesteps"] = timesteps
    try:
        run = stage("train", lambda: train(launch, os.path.join(args.out, "runs"), timesteps))
    except UserError:
        finish(1)
        raise
    learned = simulated_success(run)
    record["simulated_success"] = learned
    floor = getattr(args, "min_sim_success", MIN_SIM_SUCCESS)
    if learned is not None and learned < floor:
        print(f"the retrained policy succeeds {learned:.0%} in its own evaluation under the fitted ranges (needs "
              f"{floor:.0%}): not deploying it; train longer (--timesteps) or see {run}", flush=True)
        return finish(4)
    after = stage("deploy after", lambda: deploy(run, launch, args, os.path.join(args.out, "after.jsonl")))
    record.update(after=asdict(after), run=run)
    print(f"before: {before.describe()}\nafter:  {after.describe()}")
    print("wall time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items()))
    return finish(0)
