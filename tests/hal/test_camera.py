"""HAL cameras: OpenCV (here on a video file) and the rendered camera of emulated arms (real PyBullet)."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from robots.registry import get_robot_spec
from sim2real.hal.camera import CameraError, CameraRig, OpenCVCamera
from sim2real.hal.emulated_workspace import EmulatedWorkspace
from sim2real.hal.rendered_camera import RenderedCamera
from sim2real.sim import PyBulletRobot, PyBulletWorld
from sim2real.tasks import make_task


def test_opencv_camera_reads_resized_rgb_frames_until_the_stream_ends(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for blue in (0, 120, 240):  # BGR frames: pure blue of rising intensity
        writer.write(np.full((120, 160, 3), (blue, 0, 0), np.uint8))
    writer.release()
    with OpenCVCamera(path, width=32, height=24) as camera:
        frames = [camera.read_frame() for _ in range(3)]
        with pytest.raises(CameraError, match="no frame"):
            camera.read_frame()
    for frame in frames:
        assert frame.image.shape == (24, 32, 3) and frame.image.dtype == np.uint8
        assert abs(frame.timestamp - time.monotonic()) < 5.0
    blues = [float(f.image[..., 2].mean()) for f in frames]  # RGB order: blue is the last channel
    assert blues[0] < blues[1] < blues[2] and max(float(f.image[..., 0].mean()) for f in frames) < 20


def _clip(path: str, colors: list[tuple[int, int, int]], size=(160, 120)) -> str:
    """A real MJPG video file on disk, one frame per BGR color."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for color in colors:
        writer.write(np.full((size[1], size[0], 3), color, np.uint8))
    writer.release()
    return path


def test_camera_rig_joins_its_cameras_side_by_side_and_one_that_ends_fails_it(tmp_path):
    left = _clip(str(tmp_path / "left.avi"), [(0, 0, 230)] * 3)  # red (BGR)
    right = _clip(str(tmp_path / "right.avi"), [(230, 0, 0)] * 2)  # blue, one frame shorter
    rig = CameraRig([OpenCVCamera(left, 32, 24), OpenCVCamera(right, 32, 24)])
    assert (rig.width, rig.height) == (64, 24)
    with rig:
        frames = [rig.read_frame() for _ in range(2)]
        with pytest.raises(CameraError, match="right.avi"):
            rig.read_frame()
    for frame in frames:
        assert frame.image.shape == (24, 64, 3)
        assert frame.image[:, :32, 0].mean() > 180 and frame.image[:, 32:, 2].mean() > 180  # red left, blue right
    with pytest.raises(ValueError, match="same height"):
        CameraRig([OpenCVCamera(left, 32, 24), OpenCVCamera(right, 32, 20)])
    rig = CameraRig([OpenCVCamera(left, 32, 24), OpenCVCamera(str(tmp_path / "missing.avi"), 32, 24)])
    with pytest.raises(CameraError, match="cannot be opened"):
        rig.connect()
    assert rig.cameras[0]._capture is None  # the one that opened was closed again


def test_opencv_camera_that_cannot_open_is_a_camera_error(tmp_path):
    with pytest.raises(CameraError, match="cannot be opened"):
        OpenCVCamera(str(tmp_path / "missing.avi")).connect()


def test_rendered_camera_follows_the_measured_arm_and_the_placed_goal():
    spec = get_robot_spec("so101")
    task = make_task("reach", spec, "sparse")
    world = PyBulletWorld()  # the HAL robot: a simulated arm (any Robot works)
    robot = PyBulletRobot(world, spec, task.layout.robot_base)
    workspace = EmulatedWorkspace(task)
    camera = RenderedCamera(robot, workspace)
    try:
        with robot, camera:
            robot.reset_joints(np.asarray(spec.home))
            workspace.set_pose("goal", np.array([-0.1, 0.05, 0.1]))
            first = camera.read_frame()
            assert first.image.shape == (84, 84, 3) and first.timestamp == robot.read_state().timestamp
            again = camera.read_frame()
            assert np.array_equal(first.image, again.image)  # same pose, same goal: same picture
            workspace.set_pose("goal", np.array([-0.2, -0.1, 0.05]))
            moved_goal = camera.read_frame()
            robot.reset_joints(np.asarray(spec.home) + 0.4)
            moved_arm = camera.read_frame()
        assert not np.array_equal(first.image, moved_goal.image)
        assert not np.array_equal(moved_goal.image, moved_arm.image)
        assert np.allclose(workspace.twin.read_state().positions, robot.read_state().positions)
    finally:
        workspace.close()
        world.close()


def test_rendered_camera_shows_the_cube_of_push():
    spec = get_robot_spec("so101")
    task = make_task("push", spec, "sparse")
    world = PyBulletWorld()
    robot = PyBulletRobot(world, spec, task.layout.robot_base)
    try:
        with EmulatedWorkspace(task) as workspace, robot, RenderedCamera(robot, workspace) as camera:
            robot.reset_joints(np.asarray(spec.home))
            workspace.set_pose("goal", np.array([-0.06, -0.2, 0.0125]))  # out of the picture's centre
            workspace.set_pose("object", np.array([-0.02, 0.04, 0.0125]))
            here = camera.read_frame().image
            workspace.set_pose("object", np.array([-0.12, -0.04, 0.0125]))
            there = camera.read_frame().image
        changed = np.abs(here.astype(int) - there.astype(int)).sum(axis=2) > 30
        assert 4 <= changed.sum() < 400  # the small blue cube moved, nothing else did
    finally:
        world.close()


def test_rendered_camera_joins_the_views_of_the_env_side_by_side():
    from dataclasses import replace

    from sim2real.hal.rendered_camera import env_views
    from sim2real.sim import Camera as View

    assert env_views("sim2real/SO101Reach-v0") == (View(),)  # the camera the Reach camera env renders
    spec = get_robot_spec("so101")
    task = make_task("reach", spec, "sparse")
    world = PyBulletWorld()
    robot = PyBulletRobot(world, spec, task.layout.robot_base)
    front, side = View(width=32, height=32), replace(View(width=32, height=32), eye=(-0.06, 0.4, 0.3))
    try:
        with EmulatedWorkspace(task) as workspace, robot, RenderedCamera(robot, workspace, (front, side)) as both, \
                RenderedCamera(robot, workspace, (side,)) as one:
            image = both.read_frame().image
            assert (both.width, both.height) == (64, 32) and image.shape == (32, 64, 3)
            assert np.array_equal(image[:, 32:], one.read_frame().image)
            with pytest.raises(ValueError, match="same size"):
                RenderedCamera(robot, workspace, (front, View()))
    finally:
        world.close()
