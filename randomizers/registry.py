"""Named groups of declared Params: the default ParamSpace of ``dynamics``, ``actuation``, ``sensing``,
``visual`` (the built-in wrappers) and of any group registered with :func:`register_group`."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from randomizers.params import ParamSpace, ParamSpecError

_FACTORIES: dict[str, Callable[[], ParamSpace]] = {}


def register_group(name: str, factory: Callable[[], ParamSpace]) -> None:
    """Declare the default Params of group ``name`` (each Param's name must start with ``name.``)."""
    if name in _FACTORIES and _FACTORIES[name] != factory:
        raise ValueError(f"randomization group {name!r} is already registered")
    _FACTORIES[name] = factory


def _builtin() -> None:
    from randomizers.wrappers import WRAPPERS  # imported late: wrappers import gymnasium and pybullet

    for group, wrapper in WRAPPERS.items():
        register_group(group, wrapper.declare)


def available_groups() -> list[str]:
    _builtin()
    return sorted(_FACTORIES)


def default_space(*groups: str | Iterable[str]) -> ParamSpace:
    """Default ParamSpace of the named groups, merged in the order given (all groups when none is named)."""
    _builtin()
    names: list[str] = []
    for g in groups:
        names += [g] if isinstance(g, str) else list(g)
    space = ParamSpace()
    for name in names or sorted(_FACTORIES):
        if name not in _FACTORIES:
            raise ParamSpecError(name, f"unknown randomization group; known groups: {', '.join(sorted(_FACTORIES))}")
        group = _FACTORIES[name]()
        for param in group:
            if not param.name.startswith(f"{name}."):
                raise ParamSpecError(param.name, f"declared in group {name!r} but not named '{name}.…'")
        space = space.merge(group)
    return space
