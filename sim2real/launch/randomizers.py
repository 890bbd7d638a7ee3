"""Validation of a launch file's ``randomizers:`` list (format: :mod:`randomizers.launch`) without building an env."""
from __future__ import annotations

from typing import Any

from sim2real.errors import UserError


class _NameRecorder:
    """A stand-in scene that records the names a task's ``setup`` creates (no simulator needed)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add_box(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.names.append(name)

    def add_marker(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.names.append(name)


def env_traits(env_id: str, obs_mode: str):
    """:class:`randomizers.wrappers.base.EnvTraits` of a registered env id, from its task's scene objects."""
    from randomizers.wrappers.base import EnvTraits
    from robots.registry import get_robot_spec
    from sim2real.envs import ARM_ENVS
    from sim2real.tasks import make_task

    has_object = False
    if env_id in ARM_ENVS:
        robot, task = ARM_ENVS[env_id]
        scene = _NameRecorder()
        make_task(task, get_robot_spec(robot)).setup(scene)  # type: ignore[arg-type]
        has_object = "object" in scene.names
    return EnvTraits(has_object=has_object, rgb=obs_mode == "rgb")


def validate_randomizers(config: dict[str, Any]) -> None:
    """Raise :class:`UserError` (one line naming the entry) unless ``config["randomizers"]`` is valid for its env."""
    entries = config.get("randomizers") or []
    if not entries:
        if config.get("curriculum") is not None:
            raise UserError(f"curriculum: {config['curriculum']} moves randomizer ranges, but randomizers is empty")
        return
    from randomizers.launch import RandomizerConfigError, parse_randomizers

    try:
        parsed = parse_randomizers(entries, env_traits(config["env"]["id"], config["env"]["obs_mode"]))
    except RandomizerConfigError as err:
        raise UserError(str(err)) from None
    _check_arm_scene(config["env"]["id"], entries)
    if config.get("curriculum") is not None:
        _validate_curriculum(config, parsed)


def _check_arm_scene(env_id: str, entries: list[Any]) -> None:
    """Visual randomization repaints an arm scene's surfaces and cameras: a multirotor env has neither."""
    from sim2real.envs import ARM_ENVS

    if env_id in ARM_ENVS:
        return
    for index, entry in enumerate(entries):
        if entry["group"] == "visual" and entry.get("enabled", True):
            raise UserError(f"randomizers[{index}] (visual): repaints arm scenes only, not {env_id}")


def _validate_curriculum(config: dict[str, Any], parsed: list[Any]) -> None:
    """Build the teacher once over the launch file's ParamSpace so bad options fail at resolve time."""
    from randomizers.curricula import build_teacher
    from randomizers.params import ParamSpace

    space = ParamSpace()
    for entry in parsed:
        space = space.merge(entry.space)
    try:
        build_teacher({"name": config["curriculum"], **(config.get("curriculum_options") or {})},
                      space, config["n_envs"], config["seed"])
    except ValueError as err:
        raise UserError(f"curriculum_options: {err}") from None
