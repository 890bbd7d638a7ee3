"""The real-world side of :class:`Scene` for deployment: markers are bookkeeping, objects need a tracker."""
from __future__ import annotations

import numpy as np

from sim2real.errors import UserError
from sim2real.hal.scene import Scene

_IDENTITY = np.array((0.0, 0.0, 0.0, 1.0))


class LabScene(Scene):
    """Remembers where markers (goals) were placed; has no object tracking, so tasks with objects are refused."""

    def __init__(self) -> None:
        self._poses: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add_box(self, name, half_extents, mass, rgba, lateral_friction: float = 1.0) -> None:
        raise UserError(f"this task needs the pose of object {name!r}, and the lab scene has no object tracker: "
                        "deploy a task without objects (e.g. reach)")

    def add_marker(self, name, radius, rgba) -> None:
        self._poses[name] = (np.zeros(3), _IDENTITY.copy())

    def set_pose(self, name, position, orientation=None) -> None:
        if name not in self._poses:
            raise KeyError(name)
        self._poses[name] = (np.asarray(position, dtype=float), _IDENTITY if orientation is None else
                             np.asarray(orientation, dtype=float))

    def pose(self, name):
        return self._poses[name]

    def markers(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every marker's (position m, quaternion), e.g. for a camera that renders the goal where it was placed."""
        return dict(self._poses)

    def velocity(self, name):
        return np.zeros(3), np.zeros(3)
