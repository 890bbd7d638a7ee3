"""A simulated :class:`Camera` for emulated hardware: the task's scene rendered around the arm the HAL measures."""
from __future__ import annotations

import numpy as np

from sim2real.hal.camera import Camera, Frame
from sim2real.hal.lab_scene import LabScene
from sim2real.hal.robot import Robot
from sim2real.sim import Camera as View
from sim2real.sim import PyBulletRobot, PyBulletWorld
from sim2real.tasks.base import ArmTask


class RenderedCamera(Camera):
    """Renders, with the training renderer and camera ``view``, the task's scene (table, floor, goal marker) with
    the arm at the joint angles ``robot`` reports and every marker where ``scene`` placed it (the goal).

    It stands in for a camera on an emulated arm (the Dynamixel/Feetech emulators have none): the image follows
    the encoders, so it differs from the emulator's true arm by the reality's encoder errors (noise, backlash —
    milliradians). Each frame reads the robot once more (one bus round trip) and renders (~3 ms at 84×84 for the
    SO-101 on this CPU). The frame's timestamp is that reading's. On a real robot use
    :class:`~sim2real.hal.camera.OpenCVCamera`.
    """

    def __init__(self, robot: Robot, task: ArmTask, scene: LabScene, view: View | None = None) -> None:
        self.robot, self.task, self.scene = robot, task, scene
        self.view = view or View()
        self.width, self.height = self.view.width, self.view.height
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
        return Frame(self._world.render(self.view), state.timestamp)
