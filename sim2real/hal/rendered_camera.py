"""A simulated :class:`Camera` for emulated hardware: the task's scene rendered around the arm the HAL measures."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sim2real.hal.camera import Camera, Frame
from sim2real.hal.lab_scene import LabScene
from sim2real.hal.robot import Robot
from sim2real.sim import Camera as View
from sim2real.sim import PyBulletRobot, PyBulletWorld
from sim2real.tasks.base import ArmTask


class RenderedCamera(Camera):
    """Renders, with the training renderer and cameras ``views``, the task's scene (table, floor, goal marker) with
    the arm at the joint angles ``robot`` reports and every marker where ``scene`` placed it (the goal). Several
    views (same size) are joined side by side, as the camera envs join them (:func:`env_views`).

    It stands in for a camera on an emulated arm (the Dynamixel/Feetech emulators have none): the image follows
    the encoders, so it differs from the emulator's true arm by the reality's encoder errors (noise, backlash —
    milliradians). Each frame reads the robot once more (one bus round trip) and renders (~3 ms at 84×84 for the
    SO-101 on this CPU). The frame's timestamp is that reading's. On a real robot use
    :class:`~sim2real.hal.camera.OpenCVCamera`.
    """

    def __init__(self, robot: Robot, task: ArmTask, scene: LabScene, views: Sequence[View] = (View(),)) -> None:
        if not views or any((v.width, v.height) != (views[0].width, views[0].height) for v in views):
            raise ValueError("views: one or more cameras of the same size")
        self.robot, self.task, self.scene = robot, task, scene
        self.views = tuple(views)
        self.width, self.height = sum(v.width for v in self.views), self.views[0].height
        self._world: PyBulletWorld | None = None
        self._twin: PyBulletRobot | None = None

    def connect(self) -> None:
        if self._world is not None:
            return
        self._world = PyBulletWorld()
        self._twin = PyBulletRobot(self._world, self.task.spec, self.task.layout.robot_base)
        self._twin.connect()
        self.task.setup(self._world)

    def disconnect(self) -> None:
        if self._world is not None:
            self._world.close()
            self._world, self._twin = None, None

    def read_frame(self) -> Frame:
        if self._world is None or self._twin is None:
            raise RuntimeError("RenderedCamera.read_frame before connect()")
        state = self.robot.read_state()
        self._twin.reset_joints(np.asarray(state.positions, dtype=float))
        for name, (position, orientation) in self.scene.markers().items():
            self._world.set_pose(name, position, orientation)
        images = [self._world.render(view) for view in self.views]
        return Frame(images[0] if len(images) == 1 else np.concatenate(images, axis=1), state.timestamp)


def env_views(env_id: str) -> tuple[View, ...]:
    """The cameras a registered camera env renders (its ``camera``, then any ``extra_cameras`` joined side by
    side), read from the env's own description so a deployment sees what training saw."""
    import gymnasium as gym

    import sim2real.envs  # noqa: F401  (registers the envs)

    env = gym.make(env_id, obs_mode="rgb")
    try:
        info = env.unwrapped.describe()
    finally:
        env.close()
    return tuple(View(**{k: tuple(v) if isinstance(v, list) else v for k, v in cam.items()})
                 for cam in [info["camera"], *info.get("extra_cameras", [])])
