"""sim2real: train in PyBullet under domain randomization, deploy through one HAL to real robots.

Importing the package registers its gymnasium environments (``sim2real/PandaReach-v0`` ...).
"""
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from sim2real.envs import register_envs as _register_envs

try:
    __version__ = _version("sim2real")  # pyproject.toml's version, as installed
except _PackageNotFoundError:  # a source tree on sys.path that pip never installed
    __version__ = "0+unknown"
_register_envs()
