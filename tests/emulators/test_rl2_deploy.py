"""``sim2real deploy`` of an RL² run through the Dynamixel emulator (its run directory holds checkpoint.pt, no zip)."""
from __future__ import annotations

import os

import yaml

from sim2real.cli import main
from sim2real.deploy.log import read_log

LAB = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "..", "..", "launch", "realities", "lab.yaml")))


def test_an_rl2_run_deploys_on_the_emulated_arm_for_a_whole_trial(emulator, tiny_rl2_run, calibration_file,
                                                                   tmp_path, capsys):
    em = emulator("dynamixel", **LAB)
    log = tmp_path / "log.jsonl"
    code = main(["deploy", tiny_rl2_run, "--driver", "dynamixel", "--port", em.port, "--calibration",
                 calibration_file, "--log", str(log), "--episodes", "3", "--steps", "15", "--stale-periods", "6"])
    records = read_log(str(log))
    assert code == 0, capsys.readouterr()
    assert [r["episode"] for r in records if r["type"] == "episode"] == [0, 1, 2]
    assert sum(1 for r in records if r["type"] == "step" and r["phase"] == "policy") == 45
    assert "success rate" in capsys.readouterr().out
