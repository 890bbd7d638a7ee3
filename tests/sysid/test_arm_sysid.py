"""Arm system identification: excitation logs written by the real deployment loop (in-process emulated arm on a fake
clock, :mod:`arm_flight`, and once through the Dynamixel bus emulator), recovery of known parameters, the gate's
report of a degenerate excitation, the outputs (reality profile the emulator loads, ranges a launch file takes)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import yaml

from robots.so101 import so101_spec
from sim2real.emulators.reality import RealityProfile, load_reality
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.launch.files import find_launch_file
from sim2real.sysid.arm import ARM_PARAMETERS, EFFORT_WEIGHT, arm_model, gravity_torques, retried_read_delay
from sim2real.sysid.collect import collect_arm
from sim2real.sysid.excitation_arm import Excitation
from sim2real.sysid.fit import FitSettings, polish, set_error
from sim2real.sysid.identify import Pinned, identify, read_deployment_log
from sim2real.sysid.identify import model_for
from sim2real.sysid.model import replay_error
from sim2real.sysid.ranges import apply_block

sys.path.insert(0, os.path.dirname(__file__))
from arm_flight import InProcessArm  # noqa: E402
from quad_flight import FakeClock  # noqa: E402

TRUTH = {"mass_scale": 1.3, "position_gain": 0.065, "velocity_gain": 1.2, "strength": 0.8, "joint_damping": 0.12,
         "latency_s": 0.02, "backlash_rad": 0.003, "deadband_ticks": 2, "max_velocity": 4.0}
SHORT = Excitation(hold_s=0.5, chirp_s=1.5, joints=("shoulder_lift", "elbow_flex"), loaded_poses=())
LOADED = Excitation(joints=(), loaded_hold_s=0.8, loaded_swings=2)  # only the loaded swings (~7 s)


def excite(path: str, excitation: Excitation | np.ndarray = SHORT, rate_limit: float | None = None,
           **reality) -> list[dict]:
    """An excitation log of the emulated arm with ``TRUTH`` (plus ``reality`` overrides), 1 tick encoder noise;
    ``excitation``: the routine, or a table of joint targets (steps, 6) rad; ``rate_limit``: the collect's."""
    clock = FakeClock()
    robot = InProcessArm(RealityProfile(name="truth", sensor_noise_ticks=1.0, **{**TRUTH, **reality}), clock)
    robot.connect()
    targets = excitation if isinstance(excitation, np.ndarray) else excitation.targets(robot.spec, 25.0)
    result, problems = collect_arm(robot, robot.spec, (0.0, 0.0, 0.0), targets, path, 25.0, clock=clock,
                                   sleep=clock.sleep, velocity_fraction=rate_limit)
    assert result.stopped is None and not problems
    return read_deployment_log(path)


@pytest.fixture(scope="module")
def short_log(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("arm") / "excitation.jsonl")
    excite(path)
    return path


def test_excitation_log_has_what_the_fit_replays(short_log):
    records = read_deployment_log(short_log)
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "excitation"]
    assert len(steps) == len(SHORT.targets(arm_model(records[0]).spec, 25.0))
    assert all(len(s["applied"]) == 6 and len(s["positions"]) == 6 and "late" in s for s in steps)
    model = model_for(records, short_log)
    segments = model.segments(records, 2.0)
    # the moved, smoothly tracking joints carry the error; the jittering wrist/gripper and still pan do not
    assert segments[0].weights[:6].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert np.all(segments[0].weights[6:] == 0)  # the home phase logs no servo load
    assert segments[1].weights[6:].tolist() == pytest.approx([0.0, 0.05, 0.05, 0.0, 0.0, 0.0])  # the excitation does
    nominal = {p.name: p.nominal for p in ARM_PARAMETERS}
    truth_error = np.mean([replay_error(model, s, TRUTH) for s in segments])
    nominal_error = np.mean([replay_error(model, s, nominal) for s in segments])
    assert truth_error < 0.004 and nominal_error > 3 * truth_error  # the replay of the truth follows the log


@pytest.fixture(scope="module")
def loaded_log(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("arm") / "loaded.jsonl")
    excite(path, LOADED, rate_limit=1.0)
    return path


def test_latency_is_measured_from_logged_write_times(short_log):
    records = read_deployment_log(short_log)
    model = model_for(records, short_log)
    # the in-process arm answers a read after the profile's reply latency and writes at once: both delays = 20 ms
    assert abs(model.measured(records)["latency_s"] - TRUTH["latency_s"]) < 0.002
    assert abs(model.command_delay[1] - TRUTH["latency_s"]) < 0.002


def test_reply_latency_and_command_delay_are_kept_apart(short_log):
    """The profile's reply latency is the quickest read; the delay a policy feels (read -> write) also holds the
    computer's time, and it is that delay the training ranges' action latency gets."""
    records = read_deployment_log(short_log)
    slow = []
    for record in records:  # a computer that takes 30 ms more from the reply to the write
        if record.get("type") == "step" and "sent" in record:
            record = {**record, "sent": record["sent"] + 0.03}
        slow.append(record)
    model = model_for(slow, short_log)
    assert abs(model.measured(slow)["latency_s"] - TRUTH["latency_s"]) < 0.002
    assert abs(model.command_delay[1] - (TRUTH["latency_s"] + 0.03)) < 0.002
    block = model.randomizer_block({"latency_s": (0.019, 0.021)})
    latency = next(p for g in block["randomizers"] for p in g["params"] if p["name"] == "actuation.latency")
    assert latency["range"] == [1, 2]  # 50 ms at 25 Hz, not the 20 ms reply latency's [0, 1]
    older = [{k: v for k, v in r.items() if k != "read_s"} for r in slow]  # logs before read_s: read -> write
    assert abs(model_for(older, short_log).measured(older)["latency_s"] - (TRUTH["latency_s"] + 0.03)) < 0.002


def test_loaded_excitation_logs_servo_load_under_the_stated_rate_limit(loaded_log):
    records = read_deployment_log(loaded_log)
    spec = so101_spec()
    assert records[0]["rate_limit"] == pytest.approx(list(spec.max_velocity), abs=1e-3)  # --rate-limit 1
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "excitation"]
    efforts = np.array([s["efforts"] for s in steps])
    applied = np.array([s["applied"] for s in steps])
    rate = np.abs(np.diff(applied, axis=0)).max(axis=0)
    tick = 2 * np.pi / 4096  # applied targets are whole encoder ticks
    assert np.all(rate <= spec.max_velocity / 25.0 + tick)  # the safety layer still limits the command rate...
    assert rate[1] > 0.8 * spec.max_velocity[1] / 25.0  # ...at the full speed limit, beyond deploy's 0.75
    stall = TRUTH["strength"] * spec.joints[1].max_effort
    assert np.abs(efforts[:, 1]).max() > 0.97 * stall  # the shoulder runs into its torque limit
    model = model_for(records, loaded_log)
    segment = model.segments(records, 2.0)[1]
    assert segment.weights[6 + 1] > 0 and segment.weights[6 + 2] > 0  # shoulder and elbow loads are compared
    assert segment.measured.shape[1] == 12


def test_fit_recovers_mass_and_strength_from_servo_load(loaded_log, tmp_path):
    """Mass and strength free, the rest pinned at the truth: the holding and peak torques give both within 10 %."""
    fixed = {k: v for k, v in TRUTH.items() if k not in ("mass_scale", "strength", "latency_s")}
    data = identify([loaded_log], str(tmp_path / "fitted.yaml"), 2.0, FitSettings(evaluations=40), truth=TRUTH,
                    fixed=fixed)
    estimates = {r["name"]: r["estimate"] for r in data["parameters"]}
    assert abs(estimates["mass_scale"] / TRUTH["mass_scale"] - 1) < 0.1, estimates
    assert abs(estimates["strength"] / TRUTH["strength"] - 1) < 0.1, estimates
    assert "shoulder_lift load" in data["channels_compared"]


def test_fit_recovers_known_parameters(short_log, tmp_path):
    out = str(tmp_path / "fitted.yaml")
    with open(short_log) as handle:  # a policy's log: no write times, so the latency is fitted
        records = [json.loads(line) for line in handle]
    policy_log = tmp_path / "policy.jsonl"
    policy_log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "sent"}) + "\n" for r in records))
    fixed = {p.name: TRUTH[p.name] for p in ARM_PARAMETERS
             if p.name not in ("position_gain", "latency_s")}
    model_values = identify([str(policy_log)], out, 2.0, FitSettings(evaluations=60), truth=TRUTH, fixed=fixed)
    estimates = {r["name"]: r["estimate"] for r in model_values["parameters"]}
    assert abs(estimates["latency_s"] - TRUTH["latency_s"]) < 0.005
    assert abs(estimates["position_gain"] / TRUTH["position_gain"] - 1) < 0.1
    assert model_values["gate"]["accepted"], model_values["gate"]["reasons"]
    profile = load_reality(out)  # the emulator's own loader takes the fit
    assert profile.latency_s == pytest.approx(estimates["latency_s"], abs=1e-6)
    with open(out.replace(".yaml", "_ranges.yaml")) as handle:
        block = yaml.safe_load(handle)
    gain = next(p for g in block["randomizers"] for p in g["params"] if p["name"] == "dynamics.actuator.position_gain")
    assert gain["range"][0] <= estimates["position_gain"] / 0.1 <= gain["range"][1]  # relative to the nominal 0.1
    mass = next(p for g in block["randomizers"] for p in g["params"] if p["name"] == "dynamics.link.mass")
    assert mass["range"][0] <= TRUTH["mass_scale"] <= mass["range"][1]  # pinned values keep their ranges
    with open(find_launch_file("so101_reach")) as handle:
        launch = yaml.safe_load(handle)
    merged = tmp_path / "launch.yaml"
    merged.write_text(yaml.safe_dump(apply_block(launch, block)))
    config = resolve(str(merged))  # the launch loader validates every fitted Param
    assert config["randomizers"]
    assert os.path.getsize(out.replace(".yaml", "_report.png")) > 10_000


def test_retried_reads_are_replayed_at_their_retry(short_log):
    """A read answered to a retried request (a lost reply: request -> reply outlasts the quickest by the driver's
    timeout) sampled the servos a reply latency before its reply, not when the step asked."""
    steps = [{"read_s": 0.0021}, {"read_s": 0.0025}, {"read_s": 0.0661}, {}] + [{"read_s": 0.0023}] * 8
    delay = retried_read_delay(steps)
    assert delay[2] == pytest.approx(0.064) and np.all(np.delete(delay, 2) == 0)
    assert np.all(retried_read_delay([{"t": 0.0}] * 12) == 0)  # older logs: no read durations, no shift
    records = read_deployment_log(short_log)
    model = model_for(records, short_log)
    index = next(i for i, r in enumerate(records) if r.get("phase") == "excitation" and r.get("step") == 5)
    retried = records[:index] + [{**records[index], "read_s": records[index]["read_s"] + 0.03}] + records[index + 1:]
    before, after = model.segments(records, 2.0), model.segments(retried, 2.0)
    shifts = np.concatenate([b.times - a.times for a, b in zip(before, after)])
    assert np.count_nonzero(shifts) == 1 and shifts.max() == pytest.approx(0.03)


def test_load_channels_are_weighted_by_how_their_held_load_replays():
    """Held still, a replayable servo's averaged load is the gravity torque times one mass scale; a joint whose
    held load strays from it (a soft servo resting anywhere in its deadband) is weighted down, from the log alone."""
    spec = so101_spec()
    model = arm_model({"joints": list(spec.joint_names), "rate_hz": 25.0})
    poses = np.tile(np.array(spec.home), (200, 1))
    poses[100:, 1:3] += [0.4, -0.5]  # two held poses, 4 s each
    gravity = gravity_torques(spec, poses)
    rng = np.random.default_rng(0)
    efforts = 1.3 * gravity + rng.normal(0.0, 0.02, gravity.shape)  # mass x1.3, chatter averaged away
    trust = model.load_trust(poses, poses, efforts)
    assert np.all(trust > 0.9), trust
    efforts[:, 3] += np.where(np.arange(200) % 80 < 40, 0.5, -0.5)  # the wrist held at either end of its deadband
    trust = model.load_trust(poses, poses, efforts)
    assert trust[3] < 0.05 and np.all(np.delete(trust, 3) > 0.9), trust
    moving = poses + np.linspace(0.0, 1.0, 200)[:, None]  # nothing held: nothing to judge by
    assert np.all(model.load_trust(moving, moving, efforts) == 1.0)
    assert EFFORT_WEIGHT * trust[1] == pytest.approx(EFFORT_WEIGHT, rel=0.1)


def test_polish_settles_the_position_gain(short_log):
    """Levenberg-Marquardt steps after CMA-ES: from a position gain 30 % off to within 10 % in at most 3 steps."""
    records = read_deployment_log(short_log)
    model = model_for(records, short_log)
    pinned = Pinned(model, {p.name: TRUTH[p.name] for p in ARM_PARAMETERS if p.name != "position_gain"})
    segments = pinned.segments(records, 2.0)
    start = np.array([pinned.parameters[0].to_unit(1.3 * TRUTH["position_gain"])])
    unit, sens, evaluations, history = polish(pinned, segments, start, 3)
    gain = pinned.parameters[0].from_unit(unit[0])
    assert abs(gain / TRUTH["position_gain"] - 1) < 0.1, gain
    assert history and history[-1] < set_error(pinned, segments, {"position_gain": 1.3 * TRUTH["position_gain"]})
    assert evaluations >= 3 + len(history) * 3  # sensitivities (2 n + 1 replays) and the steps tried
    pinned.close()


def pan_table(amplitude: float, steps: int = 75) -> np.ndarray:
    """Targets that move only the shoulder pan (about the vertical: no gravity load), square wave of 0.6 s."""
    home = np.array(so101_spec().home)
    table = np.tile(home, (steps, 1))
    table[:, 0] += amplitude * np.sign(np.sin(np.arange(steps) * 2 * np.pi / 15 + 0.1))
    return table


def test_still_arm_is_reported_not_identifiable(tmp_path):
    path = str(tmp_path / "still.jsonl")
    excite(path, pan_table(0.0, 50))
    data = identify([path], str(tmp_path / "fitted.yaml"), 1.0, FitSettings(evaluations=20))
    assert not data["gate"]["accepted"]
    assert any("does not excite" in reason for reason in data["gate"]["reasons"])


def test_pan_only_excitation_names_the_parameters_it_cannot_see(tmp_path):
    path = str(tmp_path / "pan.jsonl")
    excite(path, pan_table(0.1))
    fixed = {p.name: TRUTH[p.name] for p in ARM_PARAMETERS if p.name not in ("mass_scale", "strength")}
    data = identify([path], str(tmp_path / "fitted.yaml"), 1.0, FitSettings(evaluations=20), fixed=fixed)
    assert not data["gate"]["accepted"]
    text = " ".join(data["gate"]["reasons"])
    assert "not identifiable from this excitation" in text and "strength" in text


@pytest.mark.parametrize("lines, message", [
    (['{"type": "meta", "joints": ["a"], "rate_hz": 25}', "{not json", '{"type": "summary"}'], "line 2 is not a JSON"),
    (['{"type": "step"}'], "not a deployment log"),
    (['{"type": "meta", "rate_hz": 25}'], "names no joints"),
    ([], "no complete log record"),
])
def test_corrupt_logs_are_one_line_errors(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(UserError, match=message):
        identify([str(path)], str(tmp_path / "out.yaml"))


def test_truncated_and_damaged_step_records_are_one_line_errors(short_log, tmp_path):
    with open(short_log) as handle:
        lines = handle.read().splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:6]) + "\n" + lines[6][: len(lines[6]) // 2])  # crashed: torn last line
    with pytest.raises(UserError, match="control steps logged; a fit needs at least"):
        identify([str(truncated)], str(tmp_path / "out.yaml"))
    damaged = tmp_path / "damaged.jsonl"
    broken = lines[20].replace('"positions": [', '"positions": [NaN, ')
    damaged.write_text("\n".join(lines[:20] + [broken] + lines[21:]) + "\n")
    with pytest.raises(UserError, match="positions"):
        identify([str(damaged)], str(tmp_path / "out.yaml"))


def test_collect_through_the_bus_emulator(threaded_emulator, calibration_file, tmp_path):
    """The excitation through the real driver, wire protocol and emulator, as ``sysid collect`` runs it."""
    from robots.registry import get_robot_spec
    from sim2real.emulators.server import BusEmulator
    from sim2real.hal.drivers import make_robot

    emulator = threaded_emulator(lambda path: BusEmulator("dynamixel", load_reality(path)))
    spec = get_robot_spec("so101")
    robot = make_robot("dynamixel", spec, (0.0, 0.0, 0.0), emulator.port, 1_000_000, calibration_file, 0.0,
                       latency_ms=100.0)  # a reply timeout a loaded test machine keeps
    robot.connect()
    targets = Excitation(amplitude=0.2, hold_s=0.3, chirp_s=0.4, joints=("elbow_flex",),
                         loaded_poses=()).targets(spec, 25.0)
    log = str(tmp_path / "bus.jsonl")
    result, problems = collect_arm(robot, spec, (0.0, 0.0, 0.0), targets, log, 25.0,
                                   limits={"overrun_after_s": 10.0, "stale_after_s": 10.0})  # data, not timing
    assert result.stopped is None and not problems
    steps = [r for r in read_deployment_log(log) if r["type"] == "step" and r["phase"] == "excitation"]
    assert len(steps) == len(targets) and all(len(s["applied"]) == 6 and "late" in s for s in steps)
    moved = np.ptp([s["positions"][2] for s in steps])
    assert moved > 0.1  # the elbow followed its ±0.2 rad steps on the emulated bus (less far on a loaded machine)
    load = np.array([s["efforts"][1:3] for s in steps])  # Present_Current, N·m: the bent-forward arm's weight
    assert np.all(np.abs(np.median(load, axis=0)) > 0.05) and np.all(np.abs(load) <= 2.94 + 1e-9)
    assert all(s["read_s"] > 0 for s in steps)
