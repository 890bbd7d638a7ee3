"""``sim2real eval QUAD_POLICY --conditions emulated``: the policy flown through the Crazyflie emulator process (cflib,
the reality profile crazyflie_lab) on the deployment stack ``sim2real deploy`` builds. Real time: what is checked is
that the flight happened through the stack and landed, not hold accuracy (tests/quad_deploy/test_fake_clock_flight.py
checks that deterministically)."""
from __future__ import annotations

import json
import os

from sim2real.cli import main
from sim2real.deploy.log import read_log

POLICY = os.path.join(os.path.dirname(__file__), "..", "quad_deploy", "data", "crazyflie_hover_ppo")


def test_eval_flies_a_quadcopter_policy_through_the_crazyflie_emulator(tmp_path):
    out = tmp_path / "out"
    code = main(["eval", os.path.join(POLICY, "model.zip"), "--launch", os.path.join(POLICY, "launch.yaml"),
                 "--conditions", "emulated", "--emulated-episodes", "1", "--watchdog-periods", "10",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    facts = report["conditions"]["emulated"]["facts"]["model.zip"]
    assert facts["emulator"] == "Crazyflie emulator" and facts["rate_hz"] == 48.0
    assert os.path.basename(facts["reality"]) == "crazyflie_lab.yaml"
    records = read_log(os.path.join(facts["logs"], "deploy_log_000.jsonl"))
    meta = records[0]
    assert meta["type"] == "meta" and meta["kind"] == "multirotor" and meta["task"] == "hover"
    approach = [r for r in records if r["type"] == "step" and r["phase"] == "approach"]
    flown = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    assert approach and flown and len(flown) == (240 if not facts["trips"] else len(flown))
    stop = [r for r in records if r["type"] == "event"][-1]  # the landing after the episode, or a trip's
    assert stop["took_off"] and stop["landed"] and stop["safe_stop_error"] is None
    assert "Crazyflie emulator" in (out / "report.md").read_text()
