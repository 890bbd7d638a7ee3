"""sim2real: train in PyBullet under domain randomization, deploy through one HAL to real robots.

Importing the package registers its gymnasium environments (``sim2real/PandaReach-v0`` ...).
"""
from sim2real.envs import register_envs as _register_envs

__version__ = "0.1.0"
_register_envs()
