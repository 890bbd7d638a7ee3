"""Quadcopter system identification: excitation logs flown by the real multirotor deployment loop (in-process
emulated vehicle on a fake clock, :mod:`quad_flight`), the replay model, recovery of known parameters, the gate's
report of the mass–kf degeneracy and of a hover-only excitation, and bad logs as one-line errors."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import yaml

from randomizers.quadrotor import QuadrotorRandomizer
from sim2real.deploy.log import read_log
from sim2real.emulators.quad_reality import QuadReality, load_quad_reality
from sim2real.errors import UserError
from sim2real.sysid.excitation_quad import (DOUBLETS, ROTATION, QuadExcitation, QuadExcitationConfig,
                                            collect_quadrotor)
from sim2real.sysid.fit import FitResult, FitSettings, fit, sensitivity, set_error
from sim2real.sysid.gate import DEFAULT_FACTOR, identifiability, judge, split
from sim2real.sysid.identify import Pinned
from sim2real.sysid.identify import model_for
from sim2real.sysid.model import log_meta
from sim2real.sysid.quadrotor import QUAD_PARAMETERS, quadrotor_model

sys.path.insert(0, os.path.dirname(__file__))
from quad_flight import FakeClock, InProcessFlight  # noqa: E402

TRUTH = {"mass_scale": 1.12, "kf_scale": 0.92, "motor_time_constant_scale": 1.6, "drag_scale": 1.0,
         "battery_sag": 0.0, "latency_s": 0.0125}
SEGMENT_S = 1.5


def fly(path: str, excitation: QuadExcitationConfig, **reality) -> list[dict]:
    """An excitation log of the emulated vehicle with ``TRUTH`` (plus ``reality`` overrides)."""
    clock = FakeClock()
    robot = InProcessFlight(QuadReality(name="truth", **{**TRUTH, **reality}), clock)
    result, problems = collect_quadrotor(robot, robot.spec, path, excitation=excitation, clock=clock,
                                         sleep=clock.sleep)
    assert result.stopped is None and not problems and len(result.episodes) == excitation.episodes
    return read_log(path)


@pytest.fixture(scope="module")
def doublet_log(tmp_path_factory) -> tuple[str, list[dict]]:
    path = str(tmp_path_factory.mktemp("quad_sysid") / "doublets.jsonl")
    return path, fly(path, QuadExcitationConfig(episodes=1), position_noise_std=0.001, velocity_noise_std=0.005,
                     gyro_noise_std=0.005)


def unit(model, values: dict) -> np.ndarray:
    return np.array([p.to_unit(values[p.name]) for p in model.parameters])


def test_the_excitation_log_is_an_ordinary_multirotor_deployment_log(doublet_log):
    path, records = doublet_log
    meta = log_meta(records, path)
    assert meta["kind"] == "multirotor" and meta["action_mode"] == "ctbr" and meta["vehicle"] == "crazyflie"
    policy = [r for r in records if r.get("phase") == "policy"]
    assert len(policy) == round(QuadExcitationConfig().episode_s * 50)
    thrusts = np.array([r["applied"]["thrust"] for r in policy])
    hover, weight = np.median(thrusts), 0.027 * 9.81
    assert thrusts.max() > hover + 0.2 * weight and thrusts.min() < hover - 0.2 * weight  # thrust doublets flown
    rates = np.abs([r["body_rates"] for r in policy]).max(axis=0)
    assert np.all(rates > 0.5)  # roll, pitch and yaw doublets moved every axis


def test_replay_with_the_true_parameters_beats_the_nominal_ones(doublet_log):
    path, records = doublet_log
    model = model_for(records, path)
    segments = model.segments(records, SEGMENT_S)
    assert all(s.measured.shape == (len(s.times), 12) for s in segments)
    truth, nominal = set_error(model, segments, TRUTH), set_error(model, segments, {})
    assert truth * 4 < nominal
    # a wrong latency or motor lag shows in the replay error
    assert set_error(model, segments, {**TRUTH, "latency_s": 0.0}) > 1.2 * truth
    assert set_error(model, segments, {**TRUTH, "motor_time_constant_scale": 1.0}) > 1.2 * truth
    model.close()


def test_fit_with_the_vehicle_weighed_recovers_kf_motor_lag_and_latency(doublet_log):
    path, records = doublet_log
    model = Pinned(quadrotor_model(log_meta(records, path), path),
                   {k: TRUTH[k] for k in ("mass_scale", "drag_scale", "battery_sag")})
    train, held = split([model.segments(records, SEGMENT_S)])
    result = fit(model, train, FitSettings(evaluations=140, population=8, seed=1))
    values = result.values
    assert abs(values["kf_scale"] / TRUTH["kf_scale"] - 1) < 0.05
    assert abs(values["motor_time_constant_scale"] / TRUTH["motor_time_constant_scale"] - 1) < 0.2
    assert abs(values["latency_s"] - TRUTH["latency_s"]) < 0.005
    verdict = judge(set_error(model, held, {}), set_error(model, held, values), DEFAULT_FACTOR,
                    identifiability(result), model.parameters)
    assert verdict.accepted, verdict.reasons
    model.close()


def identifiability_at_truth(records: list[dict], fixed: dict | None):
    """The gate's identifiability report with the true values as the fit (sensitivities on three segments)."""
    model = quadrotor_model(log_meta(records))
    model = Pinned(model, fixed) if fixed else model
    segments = model.segments(records, SEGMENT_S)[:3]
    result = FitResult(model.parameters, {p.name: TRUTH[p.name] for p in model.parameters}, {},
                       sensitivity(model, segments, unit(model, TRUTH)))
    model.close()
    return identifiability(result)


def test_mass_and_kf_are_reported_degenerate(doublet_log):
    """Scaling mass, kf and drag together changes no replay; the gate names mass and kf as a combination."""
    path, records = doublet_log
    model = model_for(records, path)
    segments = model.segments(records, SEGMENT_S)[:3]
    same = {**TRUTH, **{k: TRUTH[k] * 1.1 for k in ("mass_scale", "kf_scale", "drag_scale")}}
    assert set_error(model, segments, same) == pytest.approx(set_error(model, segments, TRUTH), rel=1e-6)
    model.close()
    free = identifiability_at_truth(records, None)
    assert any("mass_scale" in c and "kf_scale" in c for c in free.degenerate), free.degenerate
    assert identifiability_at_truth(records, {"mass_scale": TRUTH["mass_scale"]}).degenerate == []


def test_hover_only_excitation_is_reported_unidentifiable(doublet_log, tmp_path):
    """Without doublets the replay hardly depends on the motor lag and the latency: the gate calls them weak."""
    hover = fly(str(tmp_path / "hover.jsonl"), QuadExcitationConfig(episodes=1, thrust_step=0.0, rate_step=0.0),
                position_noise_std=0.001, velocity_noise_std=0.005, gyro_noise_std=0.005)
    fixed = {"mass_scale": TRUTH["mass_scale"]}
    poor = identifiability_at_truth(hover, fixed)
    rich = identifiability_at_truth(doublet_log[1], fixed)
    assert {"latency_s", "motor_time_constant_scale"} <= set(poor.weak)
    assert not {"latency_s", "motor_time_constant_scale", "kf_scale"} & set(rich.weak)


def test_fitted_values_become_a_loadable_reality_profile_and_training_ranges(tmp_path):
    model = quadrotor_model({"kind": "multirotor", "vehicle": "crazyflie", "rate_hz": 50.0})
    path = tmp_path / "fitted.yaml"
    path.write_text(yaml.safe_dump(model.reality_profile(TRUTH, "fitted")))
    reality = load_quad_reality(str(path))
    for key, value in TRUTH.items():
        assert getattr(reality, key) == pytest.approx(value)
    assert reality.vehicle == "crazyflie" and reality.name == "fitted"
    intervals = {p.name: (p.nominal, p.high) for p in QUAD_PARAMETERS}
    block = model.randomizer_block(intervals)["randomizers"]
    space = QuadrotorRandomizer.declare()
    assert [b["group"] for b in block] == ["quadrotor"]
    names = [p["name"] for p in block[0]["params"]]
    assert {"quadrotor.mass", "quadrotor.inertia", "quadrotor.kf", "quadrotor.km", "quadrotor.latency",
            "quadrotor.motor.time_constant", "quadrotor.drag", "quadrotor.battery.sag"} == set(names)
    for item in block[0]["params"]:
        param = space[item["name"]]
        low, high = param.hard_limits
        assert low <= item["range"][0] <= item["range"][1] <= high


def test_excitation_schedule_and_observation_layout():
    from robots.quadrotor import get_quadrotor_spec
    from sim2real.tasks.quadrotor import Reference, observation

    spec = get_quadrotor_spec("crazyflie")
    rotation = np.eye(3).ravel()
    obs = observation(np.zeros(3), np.zeros(3), rotation, np.zeros(3), np.zeros(4),
                      Reference(np.zeros(3), np.zeros(3), np.zeros(3)))
    assert np.array_equal(obs[ROTATION], rotation)  # where the model reads the attitude from
    config = QuadExcitationConfig(spread=0.0)
    policy = QuadExcitation(spec, 50.0, config)
    actions = np.array([policy.act(obs) for _ in range(round(config.episode_s * 50))])
    slot = 2 * config.doublet_s + config.settle_s
    for index, (channel, sign) in enumerate(DOUBLETS):
        first = int(round((config.settle_s + index * slot) * 50)) + 1
        second = first + int(round(config.doublet_s * 50))
        assert np.sign(actions[first, channel]) == sign and np.sign(actions[second, channel]) == -sign
    assert np.allclose(actions[:int(config.settle_s * 50)], 0.0, atol=1e-9)  # at the hover point: hover


@pytest.mark.parametrize("damage, message", [
    (lambda r: r[:1] + [s for s in r[1:] if s.get("phase") != "policy"], "policy steps logged"),
    (lambda r: r[:1] + [s for s in r[1:] if s.get("phase") == "policy"][:12], "policy steps logged"),
    (lambda r: [{**r[0], "vehicle": "blimp"}] + r[1:], "no known vehicle"),
    (lambda r: r[1:], "no meta record"),
    (lambda r: [{**s, "position": [0.0, float("nan"), 1.0]} if s.get("step") == 30 else s for s in r], "not finite"),
    (lambda r: [{**s, "applied": {"type": "Velocity", "velocity": [0, 0, 0], "yaw_rate": 0.0}}
                if s.get("step") == 40 else s for s in r], "Velocity setpoint"),
    (lambda r: [{k: v for k, v in s.items() if k != "observation"} if s.get("step") == 50 else s for s in r],
     "'observation'"),
])
def test_bad_quadcopter_logs_are_one_line_errors(doublet_log, tmp_path, damage, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in damage(doublet_log[1])))
    records = read_log(str(path))
    with pytest.raises(UserError) as caught:
        model_for(records, str(path)).segments(records, SEGMENT_S)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_meta_record_without_a_control_rate_is_one_line():
    with pytest.raises(UserError, match="no control rate"):
        quadrotor_model({"vehicle": "crazyflie"})
