"""Quadrotor tasks as reference generators: hover at a point, a random sequence of 3-D waypoints, and a
figure-eight (Lissajous) trajectory. Positions m and velocities m/s in the world ENU frame; time s.

A task is pure: it draws its layout from the ``rng`` it is given and answers ``reference(t, position)`` with
(target position, target velocity, look-ahead position). Distances scale with ``size`` (1 for the Crazyflie).
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Reference:
    position: np.ndarray  # m, world
    velocity: np.ndarray  # m/s, world
    lookahead: np.ndarray  # m, world: the next waypoint, or the trajectory 0.5 s ahead


class QuadTask(abc.ABC):
    """Base class: ``reset`` returns the start position (m, world); ``reference`` the current targets."""

    name = "task"

    def __init__(self, size: float = 1.0, altitude: float = 1.0) -> None:
        self.size, self.altitude = size, altitude

    @abc.abstractmethod
    def reset(self, rng: np.random.Generator) -> np.ndarray:
        """Start an episode; returns the start position (m, ENU)."""

    @abc.abstractmethod
    def reference(self, t: float, position: np.ndarray) -> Reference:
        """The target at time ``t`` (s) given the measured position (m, ENU)."""

    def progress(self) -> dict[str, float]:
        """Task-specific numbers for ``info``."""
        return {}


class HoverTask(QuadTask):
    """Hold a fixed point at ``altitude`` above the origin, starting up to ``spawn`` m away per axis."""

    name = "hover"

    def __init__(self, size: float = 1.0, altitude: float = 1.0, spawn: float = 0.3) -> None:
        super().__init__(size, altitude)
        self.spawn = spawn
        self.goal = np.array([0.0, 0.0, altitude])

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        return self.goal + rng.uniform(-self.spawn, self.spawn, 3) * self.size

    def reference(self, t: float, position: np.ndarray) -> Reference:
        return Reference(self.goal, np.zeros(3), self.goal)


class WaypointsTask(QuadTask):
    """Fly through ``count`` random targets in a box of half-width ``size`` m around (0, 0, altitude); a target
    counts as reached within ``radius`` m, then the next one becomes active (the last one is held)."""

    name = "waypoints"

    def __init__(self, size: float = 1.0, altitude: float = 1.0, count: int = 5, radius: float = 0.1) -> None:
        super().__init__(size, altitude)
        self.count, self.radius = count, radius
        self.targets = np.zeros((count, 3))
        self.index = 0

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        centre = np.array([0.0, 0.0, self.altitude])
        half = self.size * np.array([1.0, 1.0, 0.5])
        self.targets = centre + rng.uniform(-1.0, 1.0, (self.count, 3)) * half
        self.index = 0
        return centre + rng.uniform(-0.1, 0.1, 3) * self.size

    def reference(self, t: float, position: np.ndarray) -> Reference:
        if self.index < self.count - 1 and np.linalg.norm(self.targets[self.index] - position) < self.radius:
            self.index += 1
        nxt = self.targets[min(self.index + 1, self.count - 1)]
        return Reference(self.targets[self.index], np.zeros(3), nxt)

    def progress(self) -> dict[str, float]:
        return {"waypoint": float(self.index)}


class TrajectoryTask(QuadTask):
    """Track the figure-eight x = A·sin(ωt), y = (A/2)·sin(2ωt), z = altitude + 0.1·A·sin(ωt) with a random
    phase, amplitude A = 0.6·size m and period ``period`` s."""

    name = "trajectory"

    def __init__(self, size: float = 1.0, altitude: float = 1.0, period: float = 8.0) -> None:
        super().__init__(size, altitude)
        self.amplitude, self.omega, self.phase = 0.6 * size, 2 * math.pi / period, 0.0

    def _at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        a, w, s = self.amplitude, self.omega, self.omega * t + self.phase
        position = np.array([a * math.sin(s), 0.5 * a * math.sin(2 * s), self.altitude + 0.1 * a * math.sin(s)])
        velocity = np.array([a * w * math.cos(s), a * w * math.cos(2 * s), 0.1 * a * w * math.cos(s)])
        return position, velocity

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        self.phase = float(rng.uniform(0.0, 2 * math.pi))
        return self._at(0.0)[0] + rng.uniform(-0.05, 0.05, 3) * self.size

    def reference(self, t: float, position: np.ndarray) -> Reference:
        p, v = self._at(t)
        return Reference(p, v, self._at(t + 0.5)[0])


TASKS = {"hover": HoverTask, "waypoints": WaypointsTask, "trajectory": TrajectoryTask}
