"""The ``Scene`` contract: objects and goal markers a task can place and measure, in sim or in a lab."""
from __future__ import annotations

import abc

import numpy as np

from sim2real.hal.types import RobotState


class Scene(abc.ABC):
    """Named rigid objects and visual-only markers. Positions m (world frame), quaternions x, y, z, w."""

    @abc.abstractmethod
    def add_box(self, name: str, half_extents: tuple[float, float, float], mass: float,
                rgba: tuple[float, float, float, float], lateral_friction: float = 1.0) -> None:
        """Create (sim) or register (tracked hardware) a box-shaped object; mass kg, half extents m."""

    @abc.abstractmethod
    def add_marker(self, name: str, radius: float, rgba: tuple[float, float, float, float]) -> None:
        """A visual-only sphere (no collision, no mass), e.g. a goal."""

    @abc.abstractmethod
    def set_pose(self, name: str, position: np.ndarray, orientation: np.ndarray | None = None) -> None:
        """Place an object or marker at rest."""

    @abc.abstractmethod
    def pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position m, quaternion) of an object."""

    @abc.abstractmethod
    def velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) velocity of an object, world frame."""

    def track(self, state: RobotState) -> None:
        """Called with every robot measurement the deployment loop reads (e.g. to move what the arm pushes in an
        emulated workspace); nothing by default."""
        return None
