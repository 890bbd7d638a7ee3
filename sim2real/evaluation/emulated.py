"""The ``emulated`` condition: the policy through the HAL, the safety layer and a protocol emulator process, on the
deployment stack ``sim2real deploy`` builds (:func:`sim2real.deployment.build_stack`).

Arms: ``sim2real emulate dynamixel --reality PROFILE`` runs in its own process on a pseudo-terminal, as real
hardware would sit behind a USB adapter; the deployment loop runs at the robot's control rate (real time).
It simulates only the arm: the table, the goal and Push's cube live in an
:class:`~sim2real.hal.emulated_workspace.EmulatedWorkspace`, the deployment's scene, whose twin of the arm follows
every measurement the loop reads and pushes the cube. A state policy of Push therefore reads the cube's pose from
the workspace: a perfect object tracker (no tracking noise or latency), which real hardware would have to supply.
Camera policies (``obs_mode: rgb``: vision pipelines, pixel policies) see through a HAL camera,
:class:`~sim2real.hal.rendered_camera.RenderedCamera`, which renders that workspace around the arm the HAL
measures, with the goal where the deployment placed it.
Quadcopters (Crazyflie tasks): ``sim2real emulate crazyflie --reality PROFILE`` (default ``crazyflie_lab``) on a
UDP port, flown through cflib by the Crazyflie driver: each trial arms, flies to the task's start, runs its
episodes and lands.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
from typing import Any, Callable, Iterator

from sim2real.agents import BatchPolicy, OneEnv
from sim2real.emulators.process import stop_process
from sim2real.errors import UserError
from sim2real.evaluation.simulated import Episode

WATCHDOG_PERIODS = 5.0  # evaluation watchdog: state age and step lateness allowed, in control periods
DEFAULT_REALITY = {"arm": "lab", "multirotor": "crazyflie_lab"}  # shipped reality profiles (sim2real.launch.files)
EMULATORS = {"arm": "dynamixel", "multirotor": "crazyflie"}  # the emulator (and driver) of each kind of robot


class EmulatorProcess:
    """``sim2real emulate PROTOCOL`` in a child process; ``address`` is where it serves (a Dynamixel bus's
    pseudo-terminal, a Crazyflie's ``udp://`` URI on a free port)."""

    def __init__(self, protocol: str, reality: str) -> None:
        args = [sys.executable, "-m", "sim2real.cli", "emulate", protocol, "--reality", reality]
        args += ["--port", "0"] if protocol == "crazyflie" else []  # any free UDP port
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if " on " not in line:
            err = self.process.stderr.read() if self.process.stderr else ""
            self.stop()
            raise UserError(f"--reality {reality}: the {protocol} emulator did not start: "
                            f"{(err.strip().splitlines() or [line.strip()])[-1]}")
        self.address = line.split(" on ", 1)[1].split()[0]

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread while the real-time loop runs (as ``sim2real deploy`` does): with one observation per
    control period a second thread only adds latency spikes; the previous setting is restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


EMULATED_TASKS = ("reach", "push")  # SO-101 tasks the emulated condition runs


def emulated_kind(config: dict[str, Any]) -> str:
    """``arm`` or ``multirotor``: what the emulated condition runs for ``config``; refuses, in one line, what the
    emulators cannot stand in for (the Dynamixel emulator runs the SO-101 arm, the Crazyflie emulator a Crazyflie
    flown on state observations), and a missing driver library."""
    from sim2real.envs import ARM_ENVS
    from sim2real.extras import require
    from sim2real.tasks.quadrotor import QUAD_ENVS

    env_id = config["env"]["id"]
    if env_id in QUAD_ENVS and QUAD_ENVS[env_id][0] == "crazyflie" and config["env"]["obs_mode"] == "state":
        require("cflib", "the emulated condition for quadcopters (Crazyflie driver)")
        return "multirotor"
    if env_id not in ARM_ENVS or ARM_ENVS[env_id][0] != "so101" or ARM_ENVS[env_id][1] not in EMULATED_TASKS:
        raise UserError(f"--conditions emulated: the Dynamixel emulator drives the SO-101 arm for the "
                        f"{' and '.join(EMULATED_TASKS)} tasks only, the Crazyflie emulator Crazyflie tasks with state "
                        f"observations; this policy is for {env_id}")
    return "arm"


def check_emulatable(config: dict[str, Any]) -> None:
    """Refuse, in one line, what the emulators cannot stand in for (see :func:`emulated_kind`)."""
    emulated_kind(config)


def run_emulated(policy: BatchPolicy, config: dict[str, Any], episodes: int, seed: int, workdir: str,
                 reality: str | None = None, watchdog_periods: float = WATCHDOG_PERIODS,
                 on_episode: Callable[[Episode], None] | None = None) -> tuple[list[Episode], dict[str, Any]]:
    """``episodes`` trials through the emulator (goals, cubes and starts from the task's sampler, seed ``seed + i``);
    a trial is ``policy.episodes_per_trial`` episodes in one deployment (an RL² policy keeps its memory across them
    and observes the task's reward and the episode ends), one episode for a policy without memory.

    The watchdog allows ``watchdog_periods`` control periods of state age and step lateness (a deployment allows
    2.5 and 1: evaluation shares the CPU with the emulator). An episode ended by a safety trip (watchdog, link,
    a non-finite action, the flight envelope) or by an error inside the loop (the policy, task or driver raised) is
    safe-stopped, logged with its cause, and counts as a failure with no return or distance; the returned facts list
    the trips, the safety interventions and where the deployment logs are; a trip fails the rest of its trial. A
    camera policy's episodes carry the mean localization error of its perceived goals. ``on_episode`` sees each
    finished episode."""
    from robots.calibration import calibration_from_spec
    from sim2real.deploy.log import DeploymentLog
    from sim2real.deployment import Link, RunSettings, build_stack, connected
    from sim2real.envs import env_task
    from sim2real.io import atomic_write_text
    from sim2real.launch.files import find_reality

    kind = emulated_kind(config)
    reality = os.path.abspath(find_reality(reality or DEFAULT_REALITY[kind]))
    os.makedirs(workdir, exist_ok=True)
    adapter = OneEnv(policy)
    per_trial = max(1, int(policy.episodes_per_trial))
    settings = RunSettings(per_trial, overrun_periods=watchdog_periods, stale_periods=watchdog_periods)
    rgb = config["env"]["obs_mode"] == "rgb"
    with EmulatorProcess(EMULATORS[kind], reality) as emulator, _one_torch_thread():
        if kind == "arm":
            calibration = os.path.join(workdir, "calibration.json")
            atomic_write_text(calibration, calibration_from_spec(env_task(config["env"]["id"]).spec).to_json())
            link = Link("dynamixel", port=emulator.address, calibration=calibration,
                        camera="render" if rgb else None, emulated_workspace=True)
        else:
            link = Link("crazyflie", uri=emulator.address)
        out, trips, interventions = [], [], 0
        with build_stack(config, link, settings) as stack, connected(stack):
            for i in range(episodes):  # one loop per trial (each warms the policy up untimed first); a trip or
                # an error in the loop (policy, task, driver) safe-stops the robot and fails that trial only
                log = DeploymentLog(os.path.join(workdir, f"deploy_log_{i:03d}.jsonl"))
                loop = stack.loop(adapter, log, config=dataclasses.replace(stack.loop_config, seed=seed + i))
                try:
                    result = loop.run()
                finally:
                    log.close()
                interventions += len(loop.safety.interventions)
                if result.stopped is not None or len(result.episodes) < per_trial:
                    trips.append({"episode": i, **(result.stopped or {})})
                for k in range(per_trial):
                    if k < len(result.episodes) and k < len(adapter.returns):
                        record = result.episodes[k]
                        out.append(Episode(seed + i, bool(record["success"]), float(adapter.returns[k]),
                                           float(record["final_distance"]), record.get("localization_error"),
                                           index_in_trial=k))
                    else:  # tripped: the rest of the trial failed
                        out.append(Episode(seed + i, False, float("nan"), float("nan"), index_in_trial=k))
                    if on_episode is not None:
                        on_episode(out[-1])
    rate = stack.loop_config.rate_hz
    camera = stack.camera
    facts = {"emulator": f"{EMULATORS[kind].capitalize()} emulator", "reality": reality,
             "logs": os.path.abspath(workdir), "trips": trips, "interventions": interventions, "rate_hz": rate,
             "watchdog_s": watchdog_periods / rate,
             "camera": None if camera is None else f"rendered {camera.width}x{camera.height}"}
    return out, facts
