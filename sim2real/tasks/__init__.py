"""Tasks written once against the HAL (:class:`Robot` + :class:`Scene`); PyBullet is one backend."""
from sim2real.tasks.base import ArmTask, Layout
from sim2real.tasks.catalog import LAYOUTS, TASKS, make_task
from sim2real.tasks.control import Controller, make_controller

__all__ = ["ArmTask", "Layout", "LAYOUTS", "TASKS", "make_task", "Controller", "make_controller"]
