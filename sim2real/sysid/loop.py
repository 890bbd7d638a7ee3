"""``sysid loop``: the whole real-to-sim-to-real round on one robot (or emulator), as the three-command recipe does it
(``sysid collect``, ``sysid fit --launch``, ``train``) plus the deployments before and after.

1. deploy the current policy (``--policy``) for ``--episodes`` episodes: the gap before;
2. collect an excitation log; 3. fit it (the replay gate must accept, else the loop stops and says why);
4. train from the launch file with the fitted ranges (``sim2real train``, a child process, at the launch file's or
   ``--timesteps`` budget); 5. deploy the new policy for the same episodes: the gap after.
Deployments and training run as child ``sim2real`` processes (each its own safe stop, log and exit code); their
success rates are read from the deployment logs' summary records. Everything lands in ``--out``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Callable

from sim2real.errors import UserError


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


def deployed_success(policy: str, launch: str | None, args: argparse.Namespace, log: str) -> tuple[float, int]:
    """Deploy ``policy`` for ``args.episodes`` episodes through ``sim2real deploy``; (success rate, exit code)."""
    from sim2real.deploy.log import read_log

    command = _cli("deploy", policy, *_connection_flags(args), "--episodes", str(args.episodes), "--log", log)
    for flag in ("overrun_periods", "stale_periods", "priority"):
        if getattr(args, flag, None) is not None:
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if launch:
        command += ["--launch", launch]
    code = subprocess.call(command)
    summary = next((r for r in read_log(log) if r.get("type") == "summary"), None) if os.path.exists(log) else None
    if summary is None:
        raise UserError(f"deployment of {policy} wrote no summary (exit code {code}); see {log}")
    return float(summary["success_rate"]), code


def newest_run(parent: str) -> str:
    runs = [os.path.join(parent, d) for d in os.listdir(parent)] if os.path.isdir(parent) else []
    if not runs:
        raise UserError(f"training wrote no run under {parent}")
    return max(runs, key=os.path.getmtime)


def close_the_loop(args: argparse.Namespace, collect: Callable[[argparse.Namespace, str], int],
                   fit: Callable[[argparse.Namespace, list[str], str, str | None], dict]) -> int:
    """Run the round; print each stage's wall time and the success rate before and after."""
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

    before, _ = stage("deploy before", lambda: deployed_success(args.policy, None, args,
                                                                  os.path.join(args.out, "before.jsonl")))
    log = os.path.join(args.out, "excitation.jsonl")
    code = stage("collect", lambda: collect(args, log))
    if code != 0:
        raise UserError(f"the excitation run stopped early (exit code {code}); see {log}", exit_code=code)
    data = stage("fit", lambda: fit(args, [log], os.path.join(args.out, "fitted.yaml"), args.launch))
    if not data["gate"]["accepted"]:
        print("the replay gate refused the fit: not retraining (see the report)")
        return 3
    launch = data["outputs"]["launch"]
    runs = os.path.join(args.out, "runs")
    command = _cli("train", launch, f"output_dir={runs}")
    if args.timesteps:
        command.append(f"budget.total_timesteps={args.timesteps}")
    if stage("train", lambda: subprocess.call(command)) != 0:
        raise UserError(f"training from {launch} failed")
    run = newest_run(runs)
    after, _ = stage("deploy after", lambda: deployed_success(run, launch, args, os.path.join(args.out, "after.jsonl")))
    print(f"success before {before:.0%}, after {after:.0%} ({args.episodes} episodes each)")
    print("wall time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items()))
    return 0
