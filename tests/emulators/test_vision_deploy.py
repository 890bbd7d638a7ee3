"""A vision pipeline (perception CNN → state Reach policy) deployed through the HAL: camera + Dynamixel emulator.

The perception is trained for one epoch on a few renders, so it localizes badly; the tests check the plumbing
(images flow, goal estimates are logged, the safety limits hold), never task success.
"""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from robots.calibration import Calibration
from robots.so101 import so101_spec
from sim2real.cli import main
from sim2real.deploy.log import read_log

TINY_STATE_POLICY = ["budget.total_timesteps=300", "eval.every_steps=300", "eval.episodes=1",
                     "checkpoint.every_steps=300", "algo.learning_starts=100", "algo.net_arch=[32, 32]"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> str:
    """A pipeline folder: a one-epoch perception on 48 renders of the SO-101 Reach camera env + a 300-step SAC."""
    import sim2real  # noqa: F401  (registers the envs)
    from sim2real.launch import resolve
    from sim2real.train import train
    from sim2real.vision.pipeline import write_pipeline
    from sim2real.vision.training import fit, save

    root = tmp_path_factory.mktemp("vision")
    state_run = train(resolve("launch/demo_so101_reach.yaml", [f"output_dir={root}", *TINY_STATE_POLICY]),
                      run_dir=str(root / "state"), progress=False)
    env = gym.make("sim2real/SO101Reach-v0", obs_mode="rgb")
    images, goals = [], []
    for seed in range(48):
        obs, _ = env.reset(seed=seed)
        images.append(obs["image"])
        goals.append(env.unwrapped.goal.copy())
    env.close()
    perception, _ = fit(np.stack(images), np.stack(goals).astype(np.float32), epochs=1, seed=0)
    save(perception, str(root / "perception"), {"note": "one epoch, test only"})
    write_pipeline(str(root / "pipe"), str(root / "perception"), state_run, resolve("launch/so101_reach_vision.yaml"))
    return str(root / "pipe")


def test_vision_pipeline_deploys_through_a_camera_and_the_dynamixel_emulator(pipeline, emulator, calibration_file,
                                                                            tmp_path, capsys):
    journal = tmp_path / "journal.jsonl"
    em = emulator("dynamixel", journal=str(journal))
    log = tmp_path / "log.jsonl"
    code = main(["deploy", pipeline, "--driver", "dynamixel", "--port", em.port, "--calibration", calibration_file,
                 "--camera", "render", "--episodes", "2", "--steps", "25", "--overrun-periods", "5",
                 "--log", str(log)])
    out = capsys.readouterr().out
    assert code == 0, out
    records = read_log(str(log))
    meta = next(r for r in records if r["type"] == "meta")
    assert meta["camera"] == [84, 84]
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    assert len(steps) == 50
    # images flow: every step has a fresh frame, and frames change (the goal marker moves between episodes)
    assert all(0.0 <= s["image_age"] < 0.2 for s in steps)
    assert len({round(s["image_mean"], 3) for s in steps}) > 1
    # the perceived goals are logged with their error against the goal the deployment placed
    episodes = [r for r in records if r["type"] == "episode"]
    for s in steps:
        goal = np.array(episodes[s["episode"]]["goal"])
        estimate = np.array(s["goal_estimate"])
        assert estimate.shape == (3,) and np.isfinite(estimate).all()
        assert s["localization_error"] == pytest.approx(float(np.linalg.norm(estimate - goal)), abs=1e-5)
    assert all(e["localization_error"] > 0 for e in episodes)
    # safety: everything that reached the servos lies inside the joint limits
    spec = so101_spec()
    applied = np.array([s["applied"] for s in steps])
    assert np.all(applied >= spec.lower - 1e-3) and np.all(applied <= spec.upper + 1e-3)
    cal = Calibration.from_json(open(calibration_file).read())
    writes = [json.loads(line) for line in open(journal)]
    low = cal.radians_to_ticks(spec.lower)
    high = cal.radians_to_ticks(spec.upper)
    index = {j.servo_id: i for i, j in enumerate(cal.joints)}
    bounds = np.array([sorted((low[index[w["id"]]], high[index[w["id"]]])) for w in writes])
    ticks = np.array([w["ticks"] for w in writes])
    assert len(writes) >= 50 * 6 and np.all(ticks >= bounds[:, 0] - 1) and np.all(ticks <= bounds[:, 1] + 1)


def test_camera_policies_need_the_camera_flag(pipeline, calibration_file, capsys):
    assert main(["deploy", pipeline, "--driver", "dynamixel", "--port", "/dev/null",
                 "--calibration", calibration_file]) == 2
    err = capsys.readouterr().err.strip()
    assert "--camera is required for camera policies" in err and "\n" not in err


def test_emulated_condition_runs_the_vision_pipeline_with_its_localization_error(pipeline, tmp_path):
    out = tmp_path / "report"
    assert main(["eval", pipeline, "--conditions", "emulated", "--episodes", "2", "--videos", "0",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    emulated = report["conditions"]["emulated"]
    loc = emulated["metrics"]["localization_error"]["mean"]
    assert loc["n"] == 2 and loc["value"] > 0
    facts = next(iter(emulated["facts"].values()))
    assert facts["camera"] == "rendered 84x84" and facts["trips"] == []


def test_a_camera_that_stops_delivering_frames_stops_the_arm(pipeline, emulator, calibration_file, tmp_path, capsys):
    import cv2

    clip = str(tmp_path / "clip.avi")  # an OpenCV camera whose stream ends after 8 frames: an unplugged camera
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (128, 96))
    for i in range(8):
        writer.write(np.full((96, 128, 3), 20 * i, np.uint8))
    writer.release()
    em = emulator("dynamixel")
    log = tmp_path / "log.jsonl"
    code = main(["deploy", pipeline, "--driver", "dynamixel", "--port", em.port, "--calibration", calibration_file,
                 "--camera", clip, "--episodes", "1", "--steps", "25", "--overrun-periods", "5", "--log", str(log)])
    assert code == 3 and "stopped by link: camera" in capsys.readouterr().out
    records = read_log(str(log))
    assert sum(r["type"] == "step" and r["phase"] == "policy" for r in records) == 7  # frame 1: the warm-up call
    event = next(r for r in records if r["type"] == "event")
    assert event["kind"] == "link" and "no frame" in event["reason"] and event["safe_stop_error"] is None


def test_one_opencv_source_per_view_or_a_one_line_error(pipeline, emulator, calibration_file, tmp_path, capsys):
    em = emulator("dynamixel")
    code = main(["deploy", pipeline, "--driver", "dynamixel", "--port", em.port, "--calibration", calibration_file,
                 "--camera", "0,1", "--episodes", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "sees 1 view(s)" in err and "one OpenCV source per view" in err and "\n" not in err.strip()
