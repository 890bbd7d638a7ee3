"""``sysid loop`` for a quadcopter, in-process: the policy deployed before (it holds poorly on a slow, late
vehicle), the excitation, the fit, the retraining from ``crazyflie_hover_fast`` with the fitted ranges (a real child
``sim2real train`` on the batched model, one PPO update) and the deployment after. The flights are the real
deployment stack (``build_stack``'s task, safety layer and episode runner, the multirotor deployment loop, real logs)
on the emulators' vehicle model in-process on a fake clock (:mod:`quad_flight`), so the round takes seconds, not
minutes."""
from __future__ import annotations

import argparse
import json
import os
import sys

import pytest
import yaml

from sim2real.commands.sysid import fit_logs
from sim2real.deploy.faults import exit_code
from sim2real.deploy.log import read_log
from sim2real.deploy.loop import run_connected
from sim2real.deployment import Link, RunSettings, build_stack
from sim2real.emulators.quad_reality import QuadReality
from sim2real.launch import resolve
from sim2real.policy_files import load_policy
from sim2real.sysid.excitation_quad import QuadExcitationConfig, collect_quadrotor
from sim2real.launch.files import find_launch_file
from sim2real.sysid.loop import (OUTSIDE_BUDGET_SCALE, Deployment, close_the_loop, deployment_outcome,
                                 retraining_budget, trained)
from sim2real.sysid.ranges import apply_block

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "quad_deploy"))
from quad_flight import FakeClock, InProcessFlight  # noqa: E402
from quad_support import HOVER_POLICY  # noqa: E402

# motors 2x slower and 30 ms of latency, inside issue 20's envelope: the shipped hover policy holds it > 5 cm RMS
SLOW = dict(name="slow", mass_scale=1.1, kf_scale=0.95, motor_time_constant_scale=2.0, latency_s=0.03)


def fly(policy: str, launch: str | None, args: argparse.Namespace, log: str) -> Deployment:
    """What ``sim2real deploy`` does, with the vehicle in-process on a fake clock."""
    policy_, config = load_policy(policy, resolve(launch) if launch else None)
    clock = FakeClock()
    with build_stack(config, Link("crazyflie", uri="udp://127.0.0.1:1"), RunSettings(args.episodes, args.steps)) \
            as stack:
        stack.robot = InProcessFlight(QuadReality(**SLOW), clock)
        result, _ = run_connected(stack.robot, log, None, lambda deployment_log, estop: stack.loop(
            policy_, deployment_log, estop, clock=clock, sleep=clock.sleep))
    return deployment_outcome(read_log(log), args.episodes, exit_code(result.stopped), log)


def collect(args: argparse.Namespace, log: str) -> int:
    clock = FakeClock()
    robot = InProcessFlight(QuadReality(**SLOW), clock)
    result, _ = collect_quadrotor(robot, robot.spec, log, excitation=QuadExcitationConfig(episodes=2), clock=clock,
                                  sleep=clock.sleep)
    return exit_code(result.stopped)


def loop_args(out: str, factor: float, evaluations: int = 30) -> argparse.Namespace:
    return argparse.Namespace(launch="crazyflie_hover_fast", policy=os.path.join(HOVER_POLICY, "model.zip"), out=out,
                              episodes=1, steps=144, timesteps=16384, segment_s=1.5, evaluations=evaluations,
                              factor=factor, fit_seed=0, fixed=f"mass_scale={SLOW['mass_scale']}",
                              min_sim_success=0.0)  # one update trains no pilot: deployed all the same


def test_the_loop_retrains_on_the_batched_model_with_the_fitted_ranges(tmp_path, capsys):
    out = str(tmp_path / "loop")
    assert close_the_loop(loop_args(out, 1.5), collect, fit_logs, fly, trained) == 0
    with open(os.path.join(out, "loop.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    assert set(record["stages_s"]) == {"deploy before", "collect", "fit", "train", "deploy after"}
    # the policy trained for a nominal Crazyflie holds poorly on the slow, late one; the figures are its log's
    before = [r for r in read_log(os.path.join(out, "before.jsonl")) if r["type"] == "episode"]
    assert record["before"]["hold_rms_m"] == pytest.approx([r["rms_distance"] for r in before])
    assert record["before"]["episodes"] == len(before) == 1 and record["before"]["hold_rms_m"][0] > 0.05
    assert record["fit"]["accepted"]
    # the training run is the fast recipe (batched simulator) with the fitted ranges in place
    run_config = resolve(os.path.join(record["run"], "launch.yaml"))
    assert run_config["env"]["simulator"] == "batched" and run_config["budget"]["total_timesteps"] == 16384
    with open(os.path.join(out, "fitted_ranges.yaml"), encoding="utf-8") as handle:
        fitted = {p["name"]: p["range"] for p in yaml.safe_load(handle)["randomizers"][0]["params"]}
    trained_on = {p["name"]: p.get("range") for g in run_config["randomizers"] for p in g.get("params", [])}
    for name in ("quadrotor.motor.time_constant", "quadrotor.latency", "quadrotor.mass", "quadrotor.kf"):
        assert trained_on[name] == pytest.approx(fitted[name]), name
    # the deployment after flew the new run; its figures are its log's
    after = [r for r in read_log(os.path.join(out, "after.jsonl")) if r["type"] == "episode"]
    assert record["after"]["hold_rms_m"] == pytest.approx([r["rms_distance"] for r in after])
    assert record["after"]["requested"] == 1 and record["after"]["episodes"] == len(after)
    assert (record["after"]["stopped"] is None) == (len(after) == 1)  # one update trains no pilot: it may crash
    printed = capsys.readouterr().out
    assert "before: success 0%, 1/1 episodes, hold RMS" in printed and "wall time: deploy before" in printed


def test_a_refused_fit_stops_the_loop_before_training(tmp_path, capsys):
    out = str(tmp_path / "loop")
    assert close_the_loop(loop_args(out, 1e6, evaluations=8), collect, fit_logs, fly, trained) == 3
    with open(os.path.join(out, "loop.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    assert set(record["stages_s"]) == {"deploy before", "collect", "fit"} and not record["fit"]["accepted"]
    assert not os.path.exists(os.path.join(out, "runs")) and "refused the fit" in capsys.readouterr().out


def test_a_fit_outside_the_launch_files_ranges_trains_a_larger_budget(tmp_path):
    launch = find_launch_file("crazyflie_hover_fast")
    with open(launch, encoding="utf-8") as handle:
        base = yaml.safe_load(handle)
    budget = base["budget"]["total_timesteps"]

    def fitted(ranges: dict) -> str:
        params = [{"name": name, "range": bounds} for name, bounds in ranges.items()]
        block = {"randomizers": [{"group": "quadrotor", "params": params}]}
        path = str(tmp_path / f"fitted{len(os.listdir(tmp_path))}.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(apply_block(base, block), handle)
        return path

    # inside the default ranges (kf x0.9-1.1, motor time constant x0.8-1.5, latency 0-20 ms): the launch file's budget
    inside = fitted({"quadrotor.kf": [0.93, 1.02], "quadrotor.motor.time_constant": [0.9, 1.2],
                     "quadrotor.latency": [0.005, 0.015]})
    assert retraining_budget(launch, inside) == (budget, [])
    # crazyflie_sysid_slow's fit: motors 2x slower, 30 ms of latency
    slow = fitted({"quadrotor.kf": [0.95, 1.05], "quadrotor.motor.time_constant": [1.84, 2.31],
                   "quadrotor.latency": [0.026, 0.034]})
    assert retraining_budget(launch, slow) == (budget * OUTSIDE_BUDGET_SCALE,
                                               ["quadrotor.motor.time_constant", "quadrotor.latency"])
    # an arm launch file whose randomizers name object Params: compared, not refused
    push = find_launch_file("panda_push_dr")
    assert retraining_budget(push, push) == (resolve(push)["budget"]["total_timesteps"], [])


def test_a_retrained_policy_that_fails_in_simulation_is_not_deployed(tmp_path, capsys):
    out = str(tmp_path / "loop")
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluations.jsonl").write_text('{"timesteps": 8000, "success_rate": 0.3}\n')
    deployed = []

    def deploy(policy, launch, args, log):
        deployed.append(policy)
        return fly(policy, launch, args, log)

    args = loop_args(out, 1.5)
    args.min_sim_success = 0.5
    assert close_the_loop(args, collect, fit_logs, deploy, lambda launch, runs, steps: str(run)) == 4
    with open(os.path.join(out, "loop.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["simulated_success"] == 0.3 and "after" not in record
    assert deployed == [args.policy]  # only the deployment before
    assert "succeeds 30% in its own evaluation" in capsys.readouterr().out
