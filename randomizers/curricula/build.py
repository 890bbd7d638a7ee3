"""Build a teacher from a launch file's ``curriculum`` entry: ``{"name": "adr", <option>: <value>, ...}``."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from randomizers.curricula.adr import ADRTeacher
from randomizers.curricula.alp_gmm import ALPGMMTeacher
from randomizers.curricula.base import Teacher
from randomizers.curricula.plr import PLRTeacher
from randomizers.curricula.poet import PoetTeacher
from randomizers.curricula.uniform import ScheduleTeacher, UniformTeacher
from randomizers.params import ParamSpace

TEACHERS: dict[str, type[Teacher]] = {
    "uniform": UniformTeacher, "schedule": ScheduleTeacher, "adr": ADRTeacher, "alp_gmm": ALPGMMTeacher,
    "plr": PLRTeacher, "robust_plr": PLRTeacher, "poet": PoetTeacher,
}
_INJECTED = ("self", "space", "seed", "n_envs")


def teacher_options(name: str) -> list[str]:
    """Options a launch file may give teacher ``name``."""
    params = inspect.signature(TEACHERS[name].__init__).parameters
    return [p for p in params if p not in _INJECTED and not (name == "robust_plr" and p == "robust")]


def build_teacher(curriculum_config: str | Mapping[str, Any], space: ParamSpace, n_envs: int, seed: int) -> Teacher:
    """A teacher from ``"adr"`` or ``{"name": "adr", "p_b": 0.5, ...}``; bad names/options raise ValueError naming them."""
    config = {"name": curriculum_config} if isinstance(curriculum_config, str) else dict(curriculum_config)
    name = config.pop("name", None)
    if name not in TEACHERS:
        raise ValueError(f"curriculum 'name': {name!r} is not one of {', '.join(TEACHERS)}")
    allowed = teacher_options(name)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"curriculum option {unknown[0]!r} is not an option of {name} "
                         f"(allowed: {', '.join(allowed)})")
    required = [p.name for p in inspect.signature(TEACHERS[name].__init__).parameters.values()
                if p.default is inspect.Parameter.empty and p.name not in _INJECTED]
    missing = [r for r in required if r not in config]
    if missing:
        raise ValueError(f"curriculum option {missing[0]!r} is required by {name}")
    kwargs: dict[str, Any] = dict(config, seed=int(seed))
    if name == "adr":
        kwargs["n_envs"] = int(n_envs)
    if name == "robust_plr":
        kwargs["robust"] = True
    try:
        return TEACHERS[name](space, **kwargs)
    except TypeError as err:  # a wrongly typed option the constructor could not use
        raise ValueError(f"curriculum {name}: {err}") from None
