"""Package list (the rest of the metadata is in pyproject.toml): the code under its four roots, plus ``launch/``
mapped onto ``sim2real.launch_files`` (pyproject's package-dir) so launch files and reality profiles ship in the wheel."""
from setuptools import find_packages, setup

CODE = find_packages(include=["sim2real*", "robots*", "randomizers*", "policies*"])
LAUNCH_FILES = ["sim2real.launch_files", "sim2real.launch_files.realities"]

setup(packages=CODE + LAUNCH_FILES)
