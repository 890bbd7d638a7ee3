"""Hardware-abstraction layer: the :class:`Robot` interface every backend (PyBullet, servo buses, drones) implements."""
from sim2real.hal.robot import Robot
from sim2real.hal.types import JointCommand, RobotState

__all__ = ["Robot", "RobotState", "JointCommand"]
