"""Which tasks exist, and where each robot stands and finds its goals (facts for Panda from panda-gym 3.x)."""
from __future__ import annotations

from typing import Type

from robots.spec import RobotSpec
from sim2real.tasks.arm_tasks import PickAndPlace, Push, Reach
from sim2real.tasks.base import ArmTask, Layout
from sim2real.tasks.experiments import Heavier, Towers

TASKS: dict[str, Type[ArmTask]] = {"reach": Reach, "push": Push, "pick_and_place": PickAndPlace,
                                   "heavier": Heavier, "towers": Towers}

LAYOUTS: dict[str, Layout] = {
    # panda-gym: base at (-0.6, 0, 0), goal/object xy range 0.3 m, goals up to 0.3 m (Reach) / 0.2 m (P&P),
    # 0.04 m cube, 0.05 m success threshold.
    "panda": Layout(robot_base=(-0.6, 0.0, 0.0), center=(0.0, 0.0), xy_range=0.3, z_range=(0.0, 0.3),
                    object_size=0.04, object_mass=1.0, distance_threshold=0.05),
    "kuka": Layout(robot_base=(-0.65, 0.0, 0.0), center=(0.0, 0.0), xy_range=0.3, z_range=(0.05, 0.35),
                   object_size=0.05, object_mass=1.0, distance_threshold=0.05),
    # The SO-101-class arm reaches about 0.35 m: a smaller workspace, cube and success radius.
    "so101": Layout(robot_base=(-0.25, 0.0, 0.0), center=(-0.06, 0.0), xy_range=0.14, z_range=(0.02, 0.18),
                    object_size=0.025, object_mass=0.02, distance_threshold=0.03),
}


def make_task(name: str, spec: RobotSpec, reward_type: str = "sparse",
              distance_threshold: float | None = None, object_state: str | None = None, **options) -> ArmTask:
    """Build task ``name`` for robot ``spec`` with the robot's layout; ``object_state`` (tasks with an object:
    ``full`` or ``position``, see :class:`sim2real.tasks.arm_tasks.Push`) defaults to ``full``; ``options`` go to
    the task's constructor (e.g. ``n_blocks`` of :class:`sim2real.tasks.experiments.Heavier`)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    if object_state is None:
        return TASKS[name](spec, LAYOUTS[spec.name], reward_type, distance_threshold, **options)
    return TASKS[name](spec, LAYOUTS[spec.name], reward_type, distance_threshold, object_state=object_state,
                       **options)
