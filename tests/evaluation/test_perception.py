"""The goal-localization CNN learns a fixed synthetic set, saves tensors only, and the pipeline feeds a policy."""
from __future__ import annotations

import numpy as np
import torch

from sim2real.vision.model import PerceptionNet
from sim2real.vision.pipeline import VisionPipeline
from sim2real.vision.training import fit, load, localization_error, save
from sim2real.agents import StatelessPolicy

SIZE = 40


def synthetic_set(n: int, seed: int, with_keypoints: bool = False):
    """A bright 6-pixel square on a noisy background at pixel (u, v) = affine(x, y); z (m) sets its red level.
    With ``with_keypoints`` also the square's centre as a (N, 1, 2) keypoint in normalized image coordinates."""
    rng = np.random.default_rng(seed)
    goals = np.column_stack((rng.uniform(-0.15, 0.15, n), rng.uniform(-0.15, 0.15, n), rng.uniform(0.05, 0.25, n)))
    images = rng.integers(0, 60, (n, SIZE, SIZE, 3)).astype(np.uint8)
    keypoints = np.zeros((n, 1, 2), dtype=np.float32)
    for img, (x, y, z), kp in zip(images, goals, keypoints):
        u, v = int(round((x + 0.15) / 0.3 * (SIZE - 7))), int(round((y + 0.15) / 0.3 * (SIZE - 7)))
        img[v:v + 6, u:u + 6] = (int(60 + 700 * z), 230, 40)
        kp[0] = (-1.0 + 2.0 * (u + 2.5) / (SIZE - 1), -1.0 + 2.0 * (v + 2.5) / (SIZE - 1))
    if with_keypoints:
        return images, goals.astype(np.float32), keypoints
    return images, goals.astype(np.float32)


def test_perception_error_on_a_fixed_synthetic_set_is_below_a_bound(tmp_path):
    torch.set_num_threads(2)
    x, y = synthetic_set(700, 0)
    perception, result = fit(x, y, epochs=25, seed=0)
    test_x, test_y = synthetic_set(200, 1)
    error = localization_error(perception, test_x, test_y)
    chance = float(np.mean(np.linalg.norm(test_y - y.mean(axis=0), axis=1)))
    assert error < 0.02 and error < chance / 5, (error, chance, result)
    save(perception, str(tmp_path), {"note": "synthetic"})
    again = load(str(tmp_path))  # torch.load(weights_only=True) inside
    assert np.allclose(again.predict(test_x[:8]), perception.predict(test_x[:8]), atol=1e-5)
    state = torch.load(tmp_path / "perception.pt", weights_only=True)
    assert set(state) == set(PerceptionNet().state_dict())


def test_keypoint_loss_ties_the_first_channel_to_the_object():
    torch.set_num_threads(2)
    x, y, kp = synthetic_set(400, 0, with_keypoints=True)
    perception, _ = fit(x, y, epochs=12, seed=0, keypoints=kp)
    test_x, _, test_kp = synthetic_set(100, 1, with_keypoints=True)
    with torch.no_grad():
        _, _, points = perception.net.outputs(torch.as_tensor(test_x))
    pixel = np.abs(points[:, 0].numpy() - test_kp[:, 0]).mean() * (SIZE - 1) / 2  # mean |error| per axis, pixels
    chance = np.abs(test_kp[:, 0] - test_kp[:, 0].mean(axis=0)).mean() * (SIZE - 1) / 2
    assert pixel < 1.5 and pixel < chance / 5, (pixel, chance)


class _EchoPolicy(StatelessPolicy):
    """Returns the desired goal it was given as its action (to see what the pipeline passes on)."""

    def act_batch(self, observations):
        return np.stack([o["desired_goal"] for o in observations])

    def goal_estimates(self):
        return None


def test_pipeline_builds_the_state_observation_from_the_perceived_goal():
    x, y = synthetic_set(64, 2)
    perception, _ = fit(x, y, epochs=1, seed=0)
    pipeline = VisionPipeline(perception, _EchoPolicy())
    proprio = np.arange(6, dtype=np.float32)
    actions = pipeline.act_batch([{"image": x[0], "proprio": proprio}, {"image": x[1], "proprio": proprio}])
    assert np.allclose(actions, pipeline.goal_estimates()) and actions.shape == (2, 3)
    state = pipeline.state_observations([{"image": x[0], "proprio": proprio}])[0]
    assert np.array_equal(state["achieved_goal"], proprio[:3]) and np.array_equal(state["observation"], proprio)


def test_perception_command_writes_a_pipeline_that_eval_reports_localization_error_for(tiny_run, tmp_path):
    import json

    from sim2real.cli import main

    out = tmp_path / "pipe"
    assert main(["perception", "train", "launch/so101_reach_vision.yaml", "--images", "60", "--epochs", "1",
                 "--test-images", "10", "--policy", tiny_run, "--out", str(out)]) == 0
    facts = json.loads((out / "perception.json").read_text())
    assert facts["heldout_texture_error_m"] > 0 and (out / "pipeline.json").is_file()
    report_dir = tmp_path / "report"
    assert main(["eval", str(out), "--conditions", "train,heldout-textures", "--episodes", "2", "--videos", "0",
                 "--out", str(report_dir)]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    for cond in ("train", "heldout-textures"):
        loc = report["conditions"][cond]["metrics"]["localization_error"]["mean"]
        assert 0 < loc["value"] < 1.0 and loc["n"] == 2
    assert "Localization error" in (report_dir / "report.md").read_text()


def test_perception_refuses_state_launch_files(capsys):
    from sim2real.cli import main

    assert main(["perception", "train", "launch/so101_reach.yaml"]) == 2
    assert "env.obs_mode rgb" in capsys.readouterr().err


def test_fine_tuning_keeps_the_normalization_and_a_bad_init_folder_is_one_line(tmp_path, capsys):
    from sim2real.cli import main

    x, y = synthetic_set(64, 3)
    first, _ = fit(x, y, epochs=1, seed=0, channels=8)
    again, _ = fit(x + 1, y * 2.0, epochs=1, seed=0, init=first)
    assert again.meta == first.meta and again.meta.channels == 8
    assert main(["perception", "train", "launch/so101_reach_twoview.yaml", "--images", "2", "--test-images", "2",
                 "--epochs", "1", "--init", str(tmp_path / "missing"), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init" in err[0]
