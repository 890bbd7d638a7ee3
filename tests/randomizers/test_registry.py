"""Registry of declared Param groups."""
from __future__ import annotations

import pytest

from randomizers.params import Param, ParamSpace, ParamSpecError
from randomizers.registry import available_groups, default_space, register_group


def test_builtin_groups_and_merge() -> None:
    assert {"dynamics", "actuation", "sensing", "visual"} <= set(available_groups())
    space = default_space("dynamics", "actuation")
    assert all(n.split(".")[0] in ("dynamics", "actuation") for n in space.names)
    assert "dynamics.object.mass" in space and "actuation.latency" in space
    assert len(default_space()) >= len(space)


def test_register_and_errors() -> None:
    register_group("testgroup", lambda: ParamSpace([Param("testgroup.x", nominal=0.0, range=(0.0, 1.0))]))
    assert default_space("testgroup").names == ["testgroup.x"]
    with pytest.raises(ParamSpecError, match="unknown randomization group; known groups:.*dynamics"):
        default_space("nope")
    register_group("badgroup", lambda: ParamSpace([Param("other.x", nominal=0.0)]))
    with pytest.raises(ParamSpecError, match="other.x"):
        default_space("badgroup")
