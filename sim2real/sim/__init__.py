"""PyBullet backend of the HAL: the simulated world, its scene and simulated robots (arms here; the quadrotor in
:mod:`sim2real.sim.multirotor` with its physics, :mod:`sim2real.sim.quadrotor_physics`, and onboard controller,
:mod:`sim2real.sim.flight_controller`)."""
from sim2real.sim.robot import PyBulletRobot
from sim2real.sim.world import Camera, PhysicsConfig, PyBulletWorld

__all__ = ["PyBulletWorld", "PhysicsConfig", "Camera", "PyBulletRobot"]
