"""Small spaces shared by the curriculum tests."""
from __future__ import annotations

import pytest

from randomizers.params import Param, ParamSpace


@pytest.fixture
def space() -> ParamSpace:
    """Two ADR-able dims (a scale factor and an additive offset) and a categorical param."""
    return ParamSpace([
        Param("dynamics.mass", apply="scale", range=(0.8, 1.05), hard_limits=(0.5, 1.1)),
        Param("dynamics.offset", nominal=0.0, range=(-0.1, 0.1), hard_limits=(-1.0, 1.0)),
        Param("visual.color", distribution="categorical", choices=("red", "blue")),
    ])


@pytest.fixture
def unit_square() -> ParamSpace:
    return ParamSpace([Param("a.x", nominal=0.5, range=(0.0, 1.0)), Param("a.y", nominal=0.5, range=(0.0, 1.0))])
