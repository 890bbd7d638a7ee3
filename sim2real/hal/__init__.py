"""Hardware-abstraction layer: the :class:`Robot` interface every backend (PyBullet, servo buses, drones) implements,
and the :class:`Camera` interface of camera policies."""
from sim2real.hal.camera import Camera, Frame
from sim2real.hal.robot import Robot
from sim2real.hal.types import JointCommand, RobotState

__all__ = ["Robot", "RobotState", "JointCommand", "Camera", "Frame"]
