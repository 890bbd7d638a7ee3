"""The Heavier experiment on the emulated SO-101 (issue 24): the Feetech emulator in a child process, the stock SDK,
blocks with masses in the emulated workspace, whose measured contact forces tell the scripted experimenter which
block is heaviest; the deployment's rate loop and safety layer drive it."""
import subprocess
import sys

import numpy as np
import pytest

from robots.calibration import calibration_from_spec
from robots.so101 import so101_spec
from sim2real.deploy.experiment import experiment_loop
from sim2real.deploy.log import DeploymentLog, read_log
from sim2real.deploy.loop import LoopConfig
from sim2real.emulators.process import stop_process
from sim2real.hal.emulated_workspace import EmulatedWorkspace
from sim2real.hal.feetech import FeetechBus
from sim2real.hal.servo_arm import ServoArm
from sim2real.tasks import make_task
from sim2real.tasks.experiment_scripted import EpisodePolicy, PokeAll


@pytest.fixture
def feetech_port():
    process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "emulate", "feetech"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert " on /dev/" in line, line
    yield line.split()[-1]
    stop_process(process)


def test_poke_all_finds_the_heaviest_block_on_the_emulated_arm(feetech_port, tmp_path):
    spec = so101_spec()
    task = make_task("heavier", spec)
    task.difficulty = 0.0
    calibration = calibration_from_spec(spec)
    arm = ServoArm(spec, FeetechBus(feetech_port, calibration.ids, 1_000_000, 100.0), calibration,
                   task.layout.robot_base)
    log_path = str(tmp_path / "log.jsonl")
    log = DeploymentLog(log_path)
    # the shared test machine cannot hold 25 Hz: generous reply timeouts (100 ms latency) and watchdogs (the
    # timing is not what is tested here)
    config = LoopConfig(25.0, episodes=2, steps_per_episode=50, seed=1, stale_after_s=60.0, overrun_after_s=60.0)
    with EmulatedWorkspace(task) as workspace, arm:
        result = experiment_loop(arm, task, workspace, EpisodePolicy(PokeAll(task)), log, config).run()
    log.close()
    assert result.stopped is None, result.stopped
    assert [e["success"] for e in result.episodes] == [True, True]
    assert all(e["poked"] == 3 and e["answer"] == e["correct_answer"] for e in result.episodes)
    steps = [r for r in read_log(log_path) if r["type"] == "step" and r.get("phase") == "policy"]
    felt = np.array([r["forces"] for r in steps])
    assert felt.shape[1] == 3 and np.all(felt.max(axis=0) > 0)  # every block pushed back on the twin
