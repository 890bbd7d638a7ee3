"""Param / ParamSpace: validation, sampling, ranges by index, entropy and launch-file round trips."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from randomizers.params import (
    ApplyMode, Distribution, Param, ParamSpace, ParamSpecError, UnknownParamError,
)

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def params(draw: st.DrawFn, name: str = "g.p") -> Param:
    dist = draw(st.sampled_from(list(Distribution)))
    if dist is Distribution.CATEGORICAL:
        choices = draw(st.lists(st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c"])),
                                min_size=1, max_size=5, unique=True))
        return Param(name, distribution=dist, choices=tuple(choices))
    a, b = sorted((draw(finite), draw(finite)))
    if dist is Distribution.LOGUNIFORM:
        a, b = sorted((abs(a) + 1e-3, abs(b) + 1e-3))
    integer = draw(st.booleans()) and math.floor(b) >= math.ceil(a)
    pad_lo, pad_hi = draw(st.floats(0, 10)), draw(st.floats(0, 10))
    hard = (a - pad_lo, b + pad_hi) if dist is not Distribution.LOGUNIFORM else (a, b + pad_hi)
    std = draw(st.floats(1e-3, 100)) if dist is Distribution.NORMAL else None
    mean = draw(finite) if dist is Distribution.NORMAL and draw(st.booleans()) else None
    return Param(name, nominal=a, range=(a, b), hard_limits=hard, distribution=dist, std=std, mean=mean,
                 integer=integer)


@st.composite
def spaces(draw: st.DrawFn) -> ParamSpace:
    n = draw(st.integers(1, 6))
    return ParamSpace(draw(params(name=f"g.p{i}")) for i in range(n))


@settings(max_examples=60, deadline=None)
@given(space=spaces(), seed=st.integers(0, 2**32 - 1))
def test_samples_stay_in_range_and_hard_limits(space: ParamSpace, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        values = space.sample(rng)
        assert list(values) == space.names
        for p in space:
            v = values[p.name]
            if p.is_categorical:
                assert v in p.choices
                continue
            assert p.low <= v <= p.high
            assert p.hard_limits[0] <= v <= p.hard_limits[1]
            if p.integer:
                assert isinstance(v, int)


@settings(max_examples=40, deadline=None)
@given(space=spaces(), seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_samples(space: ParamSpace, seed: int) -> None:
    a = [space.sample(np.random.default_rng(seed)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(seed)) for _ in range(3)]
    assert a == b


@settings(max_examples=40, deadline=None)
@given(space=spaces())
def test_yaml_round_trip(space: ParamSpace) -> None:
    text = yaml.safe_dump(space.to_dict())
    assert ParamSpace.from_dict(yaml.safe_load(text)) == space


def test_different_seeds_differ() -> None:
    space = ParamSpace([Param("a.b", nominal=0.0, range=(0.0, 1.0))])
    assert space.sample(np.random.default_rng(1)) != space.sample(np.random.default_rng(2))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(nominal=1.0, range=(2.0, 1.0)), "low 2.0 > high 1.0"),
        (dict(nominal=1.0, range=(0.0, 5.0), hard_limits=(0.0, 2.0)), "outside hard limits"),
        (dict(nominal=1.0, range=(-0.5, 2.0), physical=True), "negative"),
        (dict(apply="scale", range=(-0.1, 2.0), physical=True), "negative scale factor"),
        (dict(nominal=-1.0, physical=True), "negative"),
        (dict(nominal=1.0, distribution="gaussian"), "not one of: uniform, loguniform, normal, categorical"),
        (dict(nominal=1.0, apply="multiply"), "apply mode 'multiply'"),
        (dict(nominal=1.0, range=(0.0, 1.0), distribution="loguniform"), "loguniform needs range low > 0"),
        (dict(nominal=1.0, range=(0.0, 1.0), distribution="normal", std=0.0), "std > 0"),
        (dict(nominal=1.0, range=(0.0, 1.0), std=0.2), "need distribution: normal"),
        (dict(distribution="categorical"), "non-empty 'choices'"),
        (dict(distribution="categorical", choices=["a"], apply="scale"), "only support apply: absolute"),
        (dict(nominal="z", distribution="categorical", choices=["a"]), "not one of choices"),
        (dict(range=(0.0, 1.0)), "needs a nominal"),
        (dict(nominal=1.0, resample="steps"), "resample_k >= 1"),
        (dict(nominal=1.0, resample_k=3), "only allowed with resample: steps"),
        (dict(nominal=0.0, range=(0.2, 0.8), integer=True), "no whole number"),
    ],
)
def test_bad_specs_name_the_param(kwargs: dict, needle: str) -> None:
    with pytest.raises(ParamSpecError) as info:
        Param("dynamics.object.mass", **kwargs)
    assert "dynamics.object.mass" in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_name_lists_known_names() -> None:
    space = ParamSpace([Param("a.x", nominal=0.0), Param("a.y", nominal=0.0)])
    with pytest.raises(UnknownParamError, match=r"'a.z'.*a\.x, a\.y"):
        space["a.z"]
    with pytest.raises(UnknownParamError):
        space.set_range("a.z", 0.0, 1.0)
    with pytest.raises(UnknownParamError):
        ParamSpace.from_dict([{"name": "a.z", "range": [0, 1]}], defaults=space)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ParamSpecError, match="declared twice"):
        ParamSpace([Param("a.x", nominal=0.0), Param("a.x", nominal=1.0)])


def test_apply_modes() -> None:
    nominal = np.array([2.0, 4.0])
    assert Param("a.s", apply="scale", range=(0.5, 2)).apply_to(nominal, 1.5).tolist() == (nominal * 1.5).tolist()
    assert Param("a.d", apply="add", range=(-1, 1)).apply_to(nominal, -0.5).tolist() == (nominal - 0.5).tolist()
    assert Param("a.b", nominal=3.0, range=(1, 5)).apply_to(nominal, 4.0) == 4.0
    friction = Param("a.f", apply="add", range=(-1, 1), physical=True)
    assert friction.apply_to(0.8, -0.5) == pytest.approx(0.3)
    with pytest.raises(ParamSpecError, match="a.f.*negative"):
        friction.apply_to(0.3, -0.5)


def test_identity_nominals_leave_simulation_unchanged() -> None:
    space = ParamSpace([
        Param("a.s", apply="scale", range=(0.5, 2)),
        Param("a.d", apply="add", range=(-1, 1)),
        Param("a.b", nominal=3.0, range=(1, 5)),
    ])
    sim_nominal = 7.25
    for name, value in space.nominal_values().items():
        expected = 3.0 if name == "a.b" else sim_nominal
        assert space.apply(name, sim_nominal, value) == expected


def test_entropy_matches_hand_computation() -> None:
    space = ParamSpace([
        Param("a.x", nominal=0.0, range=(0.0, math.e)),            # log width 1
        Param("a.y", nominal=1.0, range=(1.0, 1.0 + math.e**2)),   # log width 2
        Param("a.z", nominal=5.0, range=(5.0, 5.0)),               # degenerate: excluded
        Param("a.c", distribution="categorical", choices=("u", "v")),  # not a dimension
    ])
    assert space.entropy() == pytest.approx(1.5)
    widths = [math.e * 3, math.e**2]
    space.set_range("a.x", 0.0, widths[0])
    assert space.entropy() == pytest.approx(np.mean(np.log(widths)))
    collapsed = ParamSpace([Param("a.z", nominal=5.0)])
    assert collapsed.entropy() == -math.inf


def test_with_range_copies_and_set_range_mutates() -> None:
    space = ParamSpace([Param("a.x", nominal=1.0, range=(1.0, 1.0), hard_limits=(0.0, 2.0))])
    wider = space.with_range("a.x", 0.5, 1.5)
    assert space["a.x"].range == (1.0, 1.0)
    assert wider["a.x"].range == (0.5, 1.5)
    with pytest.raises(ParamSpecError, match="outside hard limits"):
        space.set_range("a.x", -0.1, 1.0)
    assert space["a.x"].range == (1.0, 1.0)


def test_boundaries_by_index() -> None:
    space = ParamSpace([
        Param("a.c", distribution="categorical", choices=("u", "v")),
        Param("a.x", nominal=1.0, range=(0.5, 1.5), hard_limits=(0.0, 3.0)),
        Param("a.y", apply="scale", range=(0.8, 1.2), physical=True),
    ])
    assert space.dims == ["a.x", "a.y"]
    assert space.n_boundaries == 4
    lo, hi = space.bounds_index("a.y")
    assert space.boundary(lo) == ("a.y", False) and space.boundary(hi) == ("a.y", True)
    assert space.get_bound(lo) == 0.8 and space.get_bound(hi) == 1.2
    space.set_bound(hi, 1.7)
    space.set_bound(lo, 0.1)
    assert space["a.y"].range == (0.1, 1.7)
    with pytest.raises(ParamSpecError):
        space.set_bound(lo, -0.2)  # negative scale of a physical quantity
    with pytest.raises(ParamSpecError):
        space.set_bound(space.bounds_index("a.x")[1], 3.5)  # above hard limit
    with pytest.raises(ParamSpecError):
        space.bounds_index("a.c")
    with pytest.raises(IndexError):
        space.boundary(4)
    low, high = space.hard_bounds()
    assert low.tolist() == [0.0, 0.0] and high.tolist() == [3.0, math.inf]


def test_pinned_boundary_sample_is_exactly_the_bound() -> None:
    space = ParamSpace([Param("a.x", nominal=1.0, range=(0.5, 1.5)), Param("a.y", nominal=0.0, range=(0, 1))])
    k = space.bounds_index("a.x")[1]
    values = space.sample(np.random.default_rng(0), fixed={"a.x": space.get_bound(k)})
    assert values["a.x"] == 1.5 and 0.0 <= values["a.y"] <= 1.0
    with pytest.raises(UnknownParamError):
        space.sample(np.random.default_rng(0), fixed={"nope.x": 1.0})


def test_vector_round_trip() -> None:
    space = ParamSpace([Param("a.x", nominal=1.0, range=(0.5, 1.5)),
                        Param("a.n", nominal=0, range=(0, 4), integer=True)])
    values = space.sample(np.random.default_rng(3))
    assert space.from_vector(space.to_vector(values)) == values
    low, high = space.bounds()
    assert low.tolist() == [0.5, 0.0] and high.tolist() == [1.5, 4.0]


def test_distribution_shapes() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    log_p = Param("a.l", nominal=1.0, range=(0.01, 100.0), distribution="loguniform")
    median = np.median([log_p.sample(rng) for _ in range(n)])
    assert 0.7 < median < 1.4  # geometric centre 1.0; uniform would give ~50
    norm = Param("a.n", nominal=0.0, range=(-1.0, 1.0), distribution="normal", mean=0.5, std=0.1)
    xs = np.array([norm.sample(rng) for _ in range(n)])
    assert abs(xs.mean() - 0.5) < 0.01 and abs(xs.std() - 0.1) < 0.01
    clipped = Param("a.c", nominal=0.0, range=(-1.0, 1.0), distribution="normal", mean=0.0, std=10.0)
    cs = np.array([clipped.sample(rng) for _ in range(n)])
    assert cs.min() == -1.0 and cs.max() == 1.0  # clipped mass sits on the edges
    ints = Param("a.i", nominal=0, range=(0.0, 3.0), integer=True)
    counts = np.bincount([ints.sample(rng) for _ in range(n)], minlength=4)
    assert counts.min() > 0.2 * n  # all four whole numbers, evenly


def test_launch_override_of_declared_defaults() -> None:
    defaults = ParamSpace([
        Param("dynamics.object.mass", apply="scale", range=(0.8, 1.2), physical=True, unit="1",
              hard_limits=(0.1, 10.0)),
        Param("dynamics.gravity.z", nominal=-9.81, range=(-9.81, -9.81), unit="m/s^2"),
    ])
    text = """
params:
  - {name: dynamics.object.mass, range: [0.5, 2.0], distribution: loguniform}
"""
    space = ParamSpace.from_dict(yaml.safe_load(text), defaults=defaults)
    mass = space["dynamics.object.mass"]
    assert mass.range == (0.5, 2.0) and mass.distribution is Distribution.LOGUNIFORM
    assert mass.apply is ApplyMode.SCALE and mass.hard_limits == (0.1, 10.0) and mass.physical
    assert space["dynamics.gravity.z"] == defaults["dynamics.gravity.z"]
    assert defaults["dynamics.object.mass"].range == (0.8, 1.2)
    with pytest.raises(ParamSpecError, match=r"dynamics.object.mass.*outside hard limits"):
        ParamSpace.from_dict([{"name": "dynamics.object.mass", "range": [0.5, 20.0]}], defaults=defaults)
    with pytest.raises(ParamSpecError, match=r"dynamics.object.mass.*unknown field.*'rnage'"):
        ParamSpace.from_dict([{"name": "dynamics.object.mass", "rnage": [0.5, 2.0]}], defaults=defaults)
    with pytest.raises(ParamSpecError, match="negative"):
        ParamSpace.from_dict([{"name": "dynamics.object.mass", "range": [-1.0, 2.0], "hard_limits": [None, None]}],
                             defaults=defaults)
    normal = ParamSpace.from_dict([{"name": "dynamics.object.mass", "distribution": "normal", "std": 0.1}],
                                  defaults=defaults)
    assert normal["dynamics.object.mass"].std == 0.1
    back = ParamSpace.from_dict(normal.to_dict(), defaults=defaults)
    assert back == normal


def test_steps_resampling_groups() -> None:
    space = ParamSpace([
        Param("a.x", nominal=0.0, range=(0, 1), resample="steps", resample_k=5),
        Param("a.y", nominal=0.0, range=(0, 1)),
        Param("a.z", nominal=0.0, range=(0, 1), resample="steps", resample_k=5),
    ])
    assert space.by_resample_k() == {5: ["a.x", "a.z"]}
    rng = np.random.default_rng(0)
    partial = space.sample(rng, names=["a.x"])
    assert list(partial) == ["a.x"]
