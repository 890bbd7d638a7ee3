"""The two-view camera env joins its views side by side, and the goal keypoints land on the rendered marker."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sim2real  # noqa: F401  (registers the envs)
from sim2real.sim import Camera
from sim2real.vision.cameras import keypoint_targets, project


def _marker_centroid(view: np.ndarray) -> np.ndarray:
    """Mean pixel position (u, v; pixel centres at +0.5) of the bright green goal marker in an untextured view."""
    r, g, b = (view[..., k].astype(int) for k in range(3))
    ys, xs = np.nonzero((g > 120) & (g > r + 60) & (g > b + 60))
    assert len(xs) > 10, "marker not visible"
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def test_two_view_env_images_are_the_views_side_by_side_and_keypoints_hit_the_marker():
    env = gym.make("sim2real/SO101ReachTwoView-v0", obs_mode="rgb")
    assert env.observation_space["image"].shape == (64, 128, 3)
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        base = env.unwrapped
        cameras = (base.camera, *base.extra_cameras)
        assert np.array_equal(obs["image"][:, 64:], base.world.render(cameras[1]))
        for k, camera in enumerate(cameras):
            error = np.linalg.norm(project(camera, base.goal[None])[0] - _marker_centroid(obs["image"][:, 64 * k:64 * (k + 1)]))
            assert error < 3.0, (seed, k, error)  # pixels; the shaded lower rim of the sphere is not counted
        targets = keypoint_targets(cameras, base.goal[None])[0]
        assert targets.shape == (2, 2) and targets[0, 0] < 0.0 < targets[1, 0]  # left view, right view
    env.close()


def test_single_camera_envs_keep_their_image_and_mismatched_views_are_refused():
    env = gym.make("sim2real/SO101Reach-v0", obs_mode="rgb")
    assert env.observation_space["image"].shape == (84, 84, 3) and env.unwrapped.extra_cameras == ()
    env.close()
    with pytest.raises(ValueError, match="extra_cameras"):
        gym.make("sim2real/SO101Reach-v0", obs_mode="rgb", extra_cameras=[Camera(width=32, height=32)])


def test_projection_of_the_look_at_point_is_the_image_centre():
    camera = Camera(width=64, height=48, eye=(0.5, 0.2, 0.4), target=(0.0, 0.0, 0.1), fov=40.0)
    assert np.allclose(project(camera, np.array([camera.target])), [[32.0, 24.0]])
    above = project(camera, np.array([[0.0, 0.0, 0.15]]))[0]
    assert above[1] < 24.0  # world up is image up


def test_arm_pose_renders_move_the_arm_toward_the_same_goal():
    from sim2real.launch import resolve
    from sim2real.vision.dataset import render_dataset

    config = resolve("launch/so101_reach_twoview.yaml")
    home = render_dataset(config, 2, 7)
    posed = render_dataset(config, 2, 7, arm_poses=1.0)
    assert np.array_equal(home.goals, posed.goals) and np.allclose(home.keypoints, posed.keypoints, atol=1e-6)
    assert not np.array_equal(home.images, posed.images)


def test_set_arm_joints_is_where_the_next_step_starts():
    env = gym.make("sim2real/SO101Reach-v0")
    env.reset(seed=0)
    base = env.unwrapped
    start = base.robot.read_state().ee_position
    base.set_arm_joints(base.robot.inverse_kinematics(start + [0.0, 0.05, -0.03], None, base.robot.read_state()))
    moved = base.robot.read_state().ee_position
    obs, *_ = env.step(np.zeros(3, dtype=np.float32))  # a zero action holds the new pose, not the old one
    assert np.linalg.norm(moved - start) > 0.02 and np.linalg.norm(obs["achieved_goal"] - moved) < 0.005
    env.close()
