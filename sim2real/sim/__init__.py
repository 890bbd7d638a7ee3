"""PyBullet backend of the HAL: the simulated world, its scene and simulated robots."""
from sim2real.sim.robot import PyBulletRobot
from sim2real.sim.world import Camera, PhysicsConfig, PyBulletWorld

__all__ = ["PyBulletWorld", "PhysicsConfig", "Camera", "PyBulletRobot"]
