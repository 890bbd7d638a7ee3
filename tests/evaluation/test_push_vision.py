"""Push vision: the cube-position-only Push env, perception of two targets (cube and goal), renders labelled for
both, and the pipeline's Push state observation (perceived cube as observation tail and achieved goal)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import sim2real  # noqa: F401  (registers the envs)
from sim2real.vision.model import Perception, PerceptionMeta, PerceptionNet
from sim2real.vision.pipeline import VisionPipeline
from sim2real.vision.training import fit, localization_error, target_errors
from sim2real.agents import StatelessPolicy

SIZE = 40


def test_object_position_env_observes_only_the_cube_position():
    full = gym.make("sim2real/SO101Push-v0")
    seen = gym.make("sim2real/SO101PushObjectPosition-v0")
    a, _ = full.reset(seed=4)
    b, _ = seen.reset(seed=4)
    assert a["observation"].shape == (18,) and b["observation"].shape == (9,)
    assert np.allclose(b["observation"], a["observation"][:9]) and np.allclose(b["achieved_goal"], b["observation"][6:9])
    assert seen.unwrapped.describe()["object_state"] == "position"
    with pytest.raises(ValueError, match="object_state"):
        gym.make("sim2real/SO101Push-v0", object_state="pose")
    full.close(), seen.close()


def _two_squares(n: int, seed: int):
    """A red (cube) and a green (goal) 5-pixel square on a noisy background, both on a table (z = 0.0125 m);
    (x, y) map affinely to pixels. Returns images, (N, 6) positions (cube, goal) and (N, 2, 2) keypoints."""
    rng = np.random.default_rng(seed)
    table = np.full(n, 0.0125)
    points = np.column_stack([rng.uniform(-0.1, 0.1, (n, 2)), table,
                              rng.uniform(-0.1, 0.1, (n, 2)), table]).astype(np.float32)
    images = rng.integers(0, 50, (n, SIZE, SIZE, 3)).astype(np.uint8)
    keypoints = np.zeros((n, 2, 2), dtype=np.float32)
    for img, p, kp in zip(images, points, keypoints):
        for t, color in enumerate(((230, 40), (40, 230))):
            x, y = p[3 * t:3 * t + 2]
            u, v = int(round((x + 0.1) / 0.2 * (SIZE - 6))), int(round((y + 0.1) / 0.2 * (SIZE - 6)))
            img[v:v + 5, u:u + 5] = (color[0], color[1], 40)
            kp[t] = (-1.0 + 2.0 * (u + 2) / (SIZE - 1), -1.0 + 2.0 * (v + 2) / (SIZE - 1))
    return images, points, keypoints


def test_perception_locates_two_targets_by_name():
    torch.set_num_threads(2)
    x, y, kp = _two_squares(500, 0)
    perception, _ = fit(x, y, epochs=10, seed=0, keypoints=kp, targets=("object", "goal"))
    test_x, test_y, _ = _two_squares(120, 1)
    located = perception.locate(test_x[:4])
    assert set(located) == {"object", "goal"} and located["goal"].shape == (4, 3)
    assert np.allclose(located["object"], perception.predict(test_x[:4])[:, :3])
    errors = target_errors(perception, test_x, test_y)
    chance = np.linalg.norm((test_y - y.mean(axis=0)).reshape(-1, 2, 3), axis=2).mean(axis=0)
    assert errors["object"] < chance[0] / 3 and errors["goal"] < chance[1] / 3, (errors, chance)
    assert localization_error(perception, test_x, test_y) == pytest.approx(np.mean(list(errors.values())), rel=1e-5)
    with pytest.raises(ValueError, match="targets"):
        fit(x[:40], y[:40, :3], epochs=1, targets=("object", "goal"))


def test_push_renders_label_the_cube_and_the_goal_in_both_views():
    from sim2real.launch import resolve
    from sim2real.vision.dataset import render_dataset

    config = {**resolve("launch/so101_push_twoview.yaml"), "randomizers": []}
    home = render_dataset(config, 2, 3)
    posed = render_dataset(config, 2, 3, arm_poses=1.0)
    assert home.goals.shape == (2, 6) and home.keypoints.shape == (2, 4, 2)
    assert np.allclose(home.goals[:, 3:], posed.goals[:, 3:])  # same goals
    assert not np.allclose(home.goals[:, :2], posed.goals[:, :2], atol=1e-3)  # the cube was moved toward it
    for images, keypoints in ((home.images, home.keypoints), (posed.images, posed.keypoints)):
        for image, points in zip(images, keypoints):
            for u, v in points[:2]:  # the cube in each view: the untextured cube is blue
                col, row = int(round((u + 1) / 2 * 127)), int(round((v + 1) / 2 * 63))
                r, g, b = image[row, col].astype(int)
                assert b > r + 40 and b > g + 40, (u, v, image[row, col])


class _ObservationEcho(StatelessPolicy):
    def __init__(self) -> None:
        self.seen: list[dict[str, np.ndarray]] = []

    def act_batch(self, observations):
        self.seen = observations
        return np.zeros((len(observations), 3), dtype=np.float32)


def test_push_pipeline_puts_the_perceived_cube_in_the_observation_and_holds_the_first_goal():
    torch.manual_seed(0)
    meta = PerceptionMeta(24, 24, (0.0,) * 6, (0.1,) * 6, 8, ("object", "goal"))
    perception = Perception(PerceptionNet(8, 2), meta)
    policy = _ObservationEcho()
    pipeline = VisionPipeline(perception, policy, "first")
    rng = np.random.default_rng(0)
    frames = [{"image": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), "proprio": np.arange(6, dtype=np.float32)}
              for _ in range(2)]
    pipeline.reset_trials(1)
    pipeline.act_batch(frames[:1])
    first = perception.locate(frames[0]["image"][None])
    pipeline.act_batch(frames[1:])
    second = perception.locate(frames[1]["image"][None])
    state = policy.seen[0]
    assert not np.allclose(first["object"], second["object"])
    assert np.allclose(state["observation"], np.concatenate((np.arange(6), second["object"][0])), atol=1e-6)
    assert np.allclose(state["achieved_goal"], second["object"][0], atol=1e-6)  # the cube moves: every frame
    assert np.allclose(state["desired_goal"], first["goal"][0], atol=1e-6)  # the goal does not: the first frame


def test_a_pipeline_whose_perception_does_not_fit_the_task_is_one_line(tmp_path, tiny_run):
    from sim2real.errors import UserError
    from sim2real.launch import resolve
    from sim2real.policy_files import load_batch_policy
    from sim2real.vision.pipeline import write_pipeline
    from sim2real.vision.training import save

    x, y, kp = _two_squares(40, 2)
    perception, _ = fit(x, y[:, 3:], epochs=1, channels=8)  # a goal-only (Reach) perception
    save(perception, str(tmp_path / "p"), {})
    write_pipeline(str(tmp_path / "p"), str(tmp_path / "p"), tiny_run, resolve("launch/so101_push_twoview.yaml"))
    with pytest.raises(UserError, match="locates goal, and sim2real/SO101PushTwoView-v0 needs object, goal"):
        load_batch_policy(str(tmp_path / "p"), None)
    both, _ = fit(x, y, epochs=1, channels=8, targets=("object", "goal"))  # the right perception ...
    save(both, str(tmp_path / "q"), {})
    write_pipeline(str(tmp_path / "q"), str(tmp_path / "q"), tiny_run, resolve("launch/so101_push_twoview.yaml"))
    with pytest.raises(UserError, match="state policy observes 6 values and the pipeline gives 9") as refused:
        load_batch_policy(str(tmp_path / "q"), None)  # ... with a Reach state policy
    assert "SO101PushObjectPosition" in str(refused.value) and "\n" not in str(refused.value)
