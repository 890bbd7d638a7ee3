"""A simulated :class:`Camera` for emulated hardware: the emulated workspace rendered around the arm the HAL measures."""
from __future__ import annotations

from typing import Sequence

from sim2real.hal.camera import Camera, Frame
from sim2real.hal.emulated_workspace import EmulatedWorkspace
from sim2real.hal.robot import Robot
from sim2real.sim import Camera as View


class RenderedCamera(Camera):
    """Renders, with the training renderer and cameras ``views``, the :class:`EmulatedWorkspace` ``workspace``
    (table, floor, the task's objects and goal marker) with the arm at the joint angles ``robot`` reports. Several
    views (same size) are joined side by side, as the camera envs join them (:func:`env_views`).

    It stands in for a camera on an emulated arm (the Dynamixel/Feetech emulators have none): the image follows
    the encoders, so it differs from the emulator's true arm by the reality's encoder errors (noise, backlash —
    milliradians). Each frame reads the robot once more (one bus round trip), lets the workspace track that
    measurement (objects the arm pushes move) and renders (~3 ms at 84×84 for the SO-101 on this CPU). The frame's
    timestamp is that reading's. The workspace belongs to the caller (it is also the deployment's scene). On a
    real robot use :class:`~sim2real.hal.camera.OpenCVCamera`.
    """

    def __init__(self, robot: Robot, workspace: EmulatedWorkspace, views: Sequence[View] = (View(),)) -> None:
        if not views or any((v.width, v.height) != (views[0].width, views[0].height) for v in views):
            raise ValueError("views: one or more cameras of the same size")
        self.robot, self.workspace = robot, workspace
        self.views = tuple(views)
        self.width, self.height = sum(v.width for v in self.views), self.views[0].height

    def connect(self) -> None:
        """Nothing to open: the workspace is the caller's."""

    def disconnect(self) -> None:
        """Nothing to close: the caller closes the workspace."""

    def read_frame(self) -> Frame:
        state = self.robot.read_state()
        self.workspace.track(state)
        return Frame(self.workspace.render(self.views), state.timestamp)


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
