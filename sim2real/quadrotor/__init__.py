"""Quadrotor simulation backend: PyBullet physics, the onboard controller stack and the HAL ``Multirotor``."""
