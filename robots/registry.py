"""Robot catalogue: name -> :class:`RobotSpec` factory."""
from __future__ import annotations

from typing import Callable

from robots.kuka import kuka_spec
from robots.panda import panda_spec
from robots.so101 import so101_spec
from robots.spec import RobotSpec

ROBOTS: dict[str, Callable[[], RobotSpec]] = {"panda": panda_spec, "kuka": kuka_spec, "so101": so101_spec}


def get_robot_spec(name: str) -> RobotSpec:
    """Spec of a known robot; ``KeyError`` names the known ones."""
    try:
        return ROBOTS[name]()
    except KeyError:
        raise KeyError(f"unknown robot {name!r} (known: {', '.join(sorted(ROBOTS))})") from None
