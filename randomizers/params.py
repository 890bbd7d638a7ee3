"""Declarative description of everything random: :class:`Param` and :class:`ParamSpace`.

A :class:`Param` lives in its *own* space: for ``apply="absolute"`` its range is in the physical unit (kg, m, ...);
for ``apply="scale"`` it is a dimensionless factor on the simulator's nominal value; for ``apply="add"`` it is an
offset in the physical unit. ``Param.nominal`` is the value in that space that leaves the simulation unchanged
(the physical nominal for absolute, 1.0 for scale, 0.0 for add), so "randomization off" means "use nominals".

Curricula (ADR, ALP-GMM, PLR) only ever move ranges, inside hard limits. Boundaries are addressed by *index*
(:meth:`ParamSpace.bounds_index`), never recognised by comparing floats.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Union

import numpy as np

Scalar = Union[float, int, str, bool]


class ParamSpecError(ValueError):
    """A Param or ParamSpace specification a user got wrong; the message names the param."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"randomization param '{name}': {message}")
        self.param_name = name


class UnknownParamError(ParamSpecError):
    """A name that is not in the space; the message lists the known names."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(known) if known else "(none)"
        super().__init__(name, f"unknown name; known params: {listed}")
        self.known = tuple(known)


class Distribution(str, Enum):
    """How a Param is drawn from its current range."""

    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    NORMAL = "normal"  # N(mean, std) clipped to the range
    CATEGORICAL = "categorical"  # one of ``choices`` (range is unused)


class ApplyMode(str, Enum):
    """How a sampled value turns the simulator's nominal value into the value used this episode."""

    ABSOLUTE = "absolute"  # value = sample
    SCALE = "scale"  # value = nominal * sample
    ADD = "add"  # value = nominal + sample


class Resample(str, Enum):
    """When a Param is drawn again."""

    EPISODE = "episode"  # at every reset
    STEPS = "steps"  # every ``resample_k`` control steps (and at reset)


_IDENTITY = {ApplyMode.SCALE: 1.0, ApplyMode.ADD: 0.0}
_FIELDS = (
    "name", "nominal", "range", "hard_limits", "distribution", "apply", "resample", "resample_k", "unit",
    "physical", "integer", "mean", "std", "choices", "description",
)


def _enum(name: str, enum_type: type[Enum], value: Any, what: str) -> Any:
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum_type)
        raise ParamSpecError(name, f"{what} {value!r} is not one of: {allowed}") from None


def _pair(name: str, value: Any, what: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ParamSpecError(name, f"{what} must be a pair [low, high], got {value!r}")
    try:
        low, high = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise ParamSpecError(name, f"{what} must hold two numbers, got {value!r}") from None
    if math.isnan(low) or math.isnan(high):
        raise ParamSpecError(name, f"{what} must not contain NaN, got {value!r}")
    return low, high


@dataclass(frozen=True)
class Param:
    """One random quantity.

    Attributes:
        name: dotted name, ``group.thing.property`` (e.g. ``dynamics.object.mass``).
        nominal: value in the Param's own space that leaves the simulation unchanged; defaults to 1.0 for
            ``scale``, 0.0 for ``add``; required for ``absolute`` and categorical params.
        range: current sampling range (low, high) in the Param's own space; curricula move it.
        hard_limits: (low, high) the range may never leave (defaults: unbounded, or the physical floor).
        distribution: uniform, loguniform (needs low > 0), normal (clipped to range) or categorical.
        apply: absolute, scale or add (see :class:`ApplyMode`).
        resample: per episode, or every ``resample_k`` control steps.
        unit: unit of the Param's own space ("kg", "m", "1" for factors, "steps", ...).
        physical: the applied value can never be negative (mass, friction, damping, gains, noise std).
        integer: samples are whole numbers (latency in steps, counts).
        mean, std: normal distribution parameters; default mean = range centre, std = range width / 4.
        choices: categorical values.
    """

    name: str
    nominal: Scalar | None = None
    range: tuple[float, float] | None = None
    hard_limits: tuple[float, float] = (-math.inf, math.inf)
    distribution: Distribution = Distribution.UNIFORM
    apply: ApplyMode = ApplyMode.ABSOLUTE
    resample: Resample = Resample.EPISODE
    resample_k: int | None = None
    unit: str = ""
    physical: bool = False
    integer: bool = False
    mean: float | None = None
    std: float | None = None
    choices: tuple[Scalar, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        name = self.name
        if not isinstance(name, str) or not name or any(not part for part in name.split(".")):
            raise ParamSpecError(str(name), "name must be a non-empty dotted string like 'dynamics.object.mass'")
        set_(self, "distribution", _enum(name, Distribution, self.distribution, "distribution"))
        set_(self, "apply", _enum(name, ApplyMode, self.apply, "apply mode"))
        set_(self, "resample", _enum(name, Resample, self.resample, "resample"))
        set_(self, "hard_limits", _pair(name, self.hard_limits, "hard_limits"))
        if self.resample is Resample.STEPS:
            if not isinstance(self.resample_k, int) or isinstance(self.resample_k, bool) or self.resample_k < 1:
                raise ParamSpecError(name, f"resample 'steps' needs resample_k >= 1, got {self.resample_k!r}")
        elif self.resample_k is not None:
            raise ParamSpecError(name, "resample_k is only allowed with resample: steps")
        if self.distribution is Distribution.CATEGORICAL:
            self._check_categorical()
        else:
            self._check_continuous()

    # -- validation -------------------------------------------------------------------------------------------
    def _check_categorical(self) -> None:
        name = self.name
        if not self.choices:
            raise ParamSpecError(name, "categorical distribution needs a non-empty 'choices' list")
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.apply is not ApplyMode.ABSOLUTE:
            raise ParamSpecError(name, "categorical params only support apply: absolute")
        for bad in ("range", "mean", "std"):
            if getattr(self, bad) is not None:
                raise ParamSpecError(name, f"'{bad}' is not allowed with distribution: categorical")
        if self.nominal is None:
            object.__setattr__(self, "nominal", self.choices[0])
        if self.nominal not in self.choices:
            raise ParamSpecError(name, f"nominal {self.nominal!r} is not one of choices {list(self.choices)}")

    def _check_continuous(self) -> None:
        name = self.name
        if self.choices is not None:
            raise ParamSpecError(name, f"'choices' needs distribution: categorical, not {self.distribution.value}")
        nominal = self.nominal
        if nominal is None:
            if self.apply is ApplyMode.ABSOLUTE:
                raise ParamSpecError(name, "apply: absolute needs a nominal value")
            nominal = _IDENTITY[self.apply]
        if isinstance(nominal, (str, bool)) or not isinstance(nominal, (int, float, np.number)):
            raise ParamSpecError(name, f"nominal must be a number, got {nominal!r}")
        object.__setattr__(self, "nominal", float(nominal))
        rng = (self.nominal, self.nominal) if self.range is None else _pair(name, self.range, "range")
        object.__setattr__(self, "range", rng)
        hl, hh = self.hard_limits
        if hl > hh:
            raise ParamSpecError(name, f"hard_limits low {hl} > high {hh}")
        if self.physical and hh < self.physical_floor():
            raise ParamSpecError(name, f"hard_limits [{hl}, {hh}] only allow negative values of a physical "
                                       f"quantity (mass, friction, ... must be >= 0)")
        if self.integer and float(self.nominal).is_integer():
            object.__setattr__(self, "nominal", int(self.nominal))
        if self.distribution is Distribution.NORMAL:
            if self.std is not None and not (math.isfinite(self.std) and self.std > 0):
                raise ParamSpecError(name, f"normal distribution needs std > 0, got {self.std!r}")
            if self.mean is not None and not math.isfinite(self.mean):
                raise ParamSpecError(name, f"normal distribution needs a finite mean, got {self.mean!r}")
        elif self.mean is not None or self.std is not None:
            raise ParamSpecError(name, f"'mean'/'std' need distribution: normal, not {self.distribution.value}")
        self.check_range(*rng)
        if self.physical and self.nominal < self.physical_floor():
            raise ParamSpecError(name, f"nominal {self.nominal} is negative for a physical quantity "
                                       f"(mass, friction, ... must be >= 0)")
        lo, hi = self.limits
        if not lo <= self.nominal <= hi:
            raise ParamSpecError(name, f"nominal {self.nominal} is outside hard_limits [{lo}, {hi}]")

    def physical_floor(self) -> float:
        """Smallest value in the Param's own space whose applied value is >= 0 (factor or value: 0).

        For ``add`` the floor depends on the simulator's nominal, unknown here: it is checked in :meth:`apply_to`.
        """
        return -math.inf if self.apply is ApplyMode.ADD else 0.0

    @property
    def limits(self) -> tuple[float, float]:
        """Effective hard limits: ``hard_limits`` raised to the physical floor for physical params."""
        hl, hh = self.hard_limits
        if self.physical and not self.is_categorical:
            hl = max(hl, self.physical_floor())
        return hl, hh

    def check_range(self, low: float, high: float) -> None:
        """Raise :class:`ParamSpecError` unless [low, high] is a valid range for this Param."""
        name = self.name
        if self.is_categorical:
            raise ParamSpecError(name, "categorical params have no range")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ParamSpecError(name, f"range must be finite, got [{low}, {high}]")
        if low > high:
            raise ParamSpecError(name, f"range low {low} > high {high}")
        if self.physical and low < self.physical_floor():
            what = "scale factor" if self.apply is ApplyMode.SCALE else "value"
            raise ParamSpecError(name, f"range low {low} gives a negative {what} for a physical quantity "
                                       f"(mass, friction, ... must be >= 0)")
        hl, hh = self.limits
        if low < hl or high > hh:
            raise ParamSpecError(name, f"range [{low}, {high}] is outside hard limits [{hl}, {hh}]")
        if self.distribution is Distribution.LOGUNIFORM and low <= 0:
            raise ParamSpecError(name, f"loguniform needs range low > 0, got {low}")
        if self.integer and math.floor(high) < math.ceil(low) and low != high:
            raise ParamSpecError(name, f"integer param range [{low}, {high}] contains no whole number")

    # -- use ----------------------------------------------------------------------------------------------
    @property
    def is_categorical(self) -> bool:
        return self.distribution is Distribution.CATEGORICAL

    @property
    def low(self) -> float:
        assert self.range is not None, f"{self.name} is categorical"
        return self.range[0]

    @property
    def high(self) -> float:
        assert self.range is not None, f"{self.name} is categorical"
        return self.range[1]

    def with_range(self, low: float, high: float) -> Param:
        """A copy with the current range set to [low, high] (validated against hard limits)."""
        self.check_range(float(low), float(high))
        return dataclasses.replace(self, range=(float(low), float(high)))

    def sample(self, rng: np.random.Generator) -> Scalar:
        """Draw one value in the Param's own space; always inside the current range."""
        if self.is_categorical:
            assert self.choices is not None
            return self.choices[int(rng.integers(len(self.choices)))]
        low, high = self.low, self.high
        if self.integer:
            lo, hi = math.ceil(low), math.floor(high)
            if lo > hi:  # degenerate point range at a non-integer value
                return int(round(low))
            if self.distribution is Distribution.UNIFORM:
                return int(rng.integers(lo, hi + 1))
            return int(min(max(round(self._sample_float(rng, low, high)), lo), hi))
        return self._sample_float(rng, low, high)

    def _sample_float(self, rng: np.random.Generator, low: float, high: float) -> float:
        if low == high:
            return low
        if self.distribution is Distribution.UNIFORM:
            x = rng.uniform(low, high)
        elif self.distribution is Distribution.LOGUNIFORM:
            x = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            mean = 0.5 * (low + high) if self.mean is None else self.mean
            std = 0.25 * (high - low) if self.std is None else self.std
            x = rng.normal(mean, std)
        return float(min(max(x, low), high))

    def apply_to(self, nominal_value: Any, sampled: Any) -> Any:
        """The value to put in the simulator: ``sampled``, ``nominal_value * sampled`` or ``nominal_value + sampled``.

        ``nominal_value`` is the simulator's own default (scalar or numpy array, physical unit); the result has
        the same unit. A physical param whose result is negative (possible with ``add``) raises
        :class:`ParamSpecError`.
        """
        if type(nominal_value) in (int, float) and type(sampled) in (int, float):  # fast path (every reset)
            out = sampled if self.apply is ApplyMode.ABSOLUTE else \
                nominal_value * sampled if self.apply is ApplyMode.SCALE else nominal_value + sampled
            negative = self.physical and out < 0
        else:
            if self.apply is ApplyMode.ABSOLUTE:
                out = sampled
            elif self.apply is ApplyMode.SCALE:
                out = np.multiply(nominal_value, sampled)
            else:
                out = np.add(nominal_value, sampled)
            negative = self.physical and not self.is_categorical and bool(np.any(np.less(out, 0.0)))
        if negative:
            raise ParamSpecError(self.name, f"nominal {nominal_value!r} {self.apply.value} {sampled!r} gives a "
                                            f"negative value for a physical quantity; narrow the range")
        if isinstance(out, np.ndarray) and out.ndim == 0:
            return float(out)
        return out.item() if isinstance(out, np.generic) else out

    # -- serialization ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-able mapping; :meth:`from_dict` inverts it. Fields at their default are left out."""
        out: dict[str, Any] = {"name": self.name}
        defaults = Param.__dataclass_fields__
        for key in _FIELDS[1:]:
            value = getattr(self, key)
            if isinstance(value, Enum):
                value = value.value
            if isinstance(value, tuple):
                value = list(value)
            default = defaults[key].default
            if isinstance(default, Enum):
                default = default.value
            if isinstance(default, tuple):
                default = list(default)
            if value != default:
                out[key] = value
        if "hard_limits" in out:
            out["hard_limits"] = [None if math.isinf(v) else v for v in out["hard_limits"]]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Param:
        """Build a Param from a launch-file entry (unknown keys are errors that name the allowed keys)."""
        if not isinstance(data, Mapping):
            raise ParamSpecError("?", f"each randomization entry must be a mapping, got {data!r}")
        name = str(data.get("name", "?"))
        _check_keys(name, data)
        kwargs = dict(data)
        if "hard_limits" in kwargs:
            kwargs["hard_limits"] = _limits(name, kwargs["hard_limits"])
        if kwargs.get("choices") is not None:
            if isinstance(kwargs["choices"], (str, bytes)) or not isinstance(kwargs["choices"], Sequence):
                raise ParamSpecError(name, f"choices must be a list, got {kwargs['choices']!r}")
            kwargs["choices"] = tuple(kwargs["choices"])
        try:
            return cls(**kwargs)
        except TypeError as err:  # e.g. a missing name
            raise ParamSpecError(name, str(err)) from None


def _check_keys(name: str, data: Mapping[str, Any]) -> None:
    unknown = sorted(set(map(str, data)) - set(_FIELDS))
    if unknown:
        raise ParamSpecError(name, f"unknown field(s) {unknown}; allowed: {', '.join(_FIELDS)}")


def _limits(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2:
        lo = -math.inf if value[0] is None else value[0]
        hi = math.inf if value[1] is None else value[1]
        return _pair(name, (lo, hi), "hard_limits")
    return _pair(name, value, "hard_limits")


class ParamSpace:
    """Ordered, named collection of Params; the single description of what is random.

    Continuous params are the *dimensions* of the space (categorical ones are not); dimension ``i`` has boundary
    indices ``2 * i`` (low) and ``2 * i + 1`` (high).
    """

    def __init__(self, params: Iterable[Param] = ()) -> None:
        self.params = {}
        for p in params:
            if not isinstance(p, Param):
                raise TypeError(f"ParamSpace holds Param objects, got {type(p).__name__}")
            if p.name in self.params:
                raise ParamSpecError(p.name, "declared twice in the same space")
            self.params[p.name] = p

    # -- collection ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params.values())

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __getitem__(self, name: str) -> Param:
        try:
            return self.params[name]
        except KeyError:
            raise UnknownParamError(name, self.names) from None

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def dims(self) -> list[str]:
        """Names of the continuous params, in order (the dimensions curricula move)."""
        return [p.name for p in self.params.values() if not p.is_categorical]

    def merge(self, other: ParamSpace) -> ParamSpace:
        """A new space with the params of both (a name in both is an error)."""
        return ParamSpace([*self, *other])

    def select(self, names: Iterable[str]) -> ParamSpace:
        """A new space with only ``names`` (in the order given)."""
        return ParamSpace([self[n] for n in names])

    def prefixed(self, prefix: str) -> ParamSpace:
        """A new space with the params whose names start with ``prefix`` (e.g. ``"dynamics."``)."""
        return ParamSpace([p for p in self if p.name.startswith(prefix)])

    def copy(self) -> ParamSpace:
        return ParamSpace(self)

    def __repr__(self) -> str:
        return f"ParamSpace({self.names})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSpace) and list(self.params.items()) == list(other.params.items())

    # -- sampling -----------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, names: Iterable[str] | None = None,
               fixed: Mapping[str, Scalar] | None = None) -> dict[str, Scalar]:
        """Draw values for ``names`` (default: all, in declaration order), one draw each from ``rng``.

        ``fixed`` pins values (e.g. an ADR boundary evaluation pins a bound); pinned params consume no draws.
        """
        fixed = {} if fixed is None else dict(fixed)
        for key in fixed:
            if key not in self.params:
                raise UnknownParamError(key, self.names)
        chosen = self.names if names is None else list(names)
        out: dict[str, Scalar] = {}
        for n in chosen:
            out[n] = fixed[n] if n in fixed else self[n].sample(rng)
        return out

    def nominal_values(self, names: Iterable[str] | None = None) -> dict[str, Scalar]:
        """Values that leave the simulation unchanged (used when randomization is switched off)."""
        chosen = self.names if names is None else list(names)
        return {n: self[n].nominal for n in chosen}  # type: ignore[misc]

    def apply(self, name: str, nominal_value: Any, sampled: Any) -> Any:
        """Value for the simulator from its nominal value and a sample, by the param's apply mode."""
        return self[name].apply_to(nominal_value, sampled)

    def by_resample_k(self) -> dict[int, list[str]]:
        """Params resampled during an episode, grouped by their step interval k."""
        groups: dict[int, list[str]] = {}
        for p in self:
            if p.resample is Resample.STEPS:
                groups.setdefault(int(p.resample_k), []).append(p.name)  # type: ignore[arg-type]
        return groups

    # -- ranges (curricula) --------------------------------------------------------------------------------
    def with_range(self, name: str, low: float, high: float) -> ParamSpace:
        """A new space with ``name``'s range set to [low, high]; this space is unchanged."""
        out = self.copy()
        out.set_range(name, low, high)
        return out

    def set_range(self, name: str, low: float, high: float) -> None:
        """Set ``name``'s current range in place (validated against its hard limits)."""
        self.params[name] = self[name].with_range(low, high)

    def bounds_index(self, name: str) -> tuple[int, int]:
        """Boundary indices (low, high) of continuous param ``name``: ``(2 * i, 2 * i + 1)``."""
        param = self[name]
        if param.is_categorical:
            raise ParamSpecError(name, "categorical params have no range boundaries")
        i = self.dims.index(name)
        return 2 * i, 2 * i + 1

    @property
    def n_boundaries(self) -> int:
        return 2 * len(self.dims)

    def boundary(self, index: int) -> tuple[str, bool]:
        """(param name, is_high) for a boundary index."""
        dims = self.dims
        if not 0 <= index < 2 * len(dims):
            raise IndexError(f"boundary index {index} out of range [0, {2 * len(dims)})")
        return dims[index // 2], bool(index % 2)

    def get_bound(self, index: int) -> float:
        """Current value of boundary ``index``."""
        name, is_high = self.boundary(index)
        return self[name].range[int(is_high)]  # type: ignore[index]

    def set_bound(self, index: int, value: float) -> None:
        """Move boundary ``index`` to ``value`` in place (the other edge stays; validated)."""
        name, is_high = self.boundary(index)
        low, high = self[name].range  # type: ignore[misc]
        self.set_range(name, low if is_high else value, value if is_high else high)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) arrays over :attr:`dims`."""
        ps = [self[n] for n in self.dims]
        return np.array([p.low for p in ps], dtype=float), np.array([p.high for p in ps], dtype=float)

    def hard_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) hard-limit arrays over :attr:`dims` (may hold +-inf)."""
        ps = [self[n] for n in self.dims]
        return (np.array([p.limits[0] for p in ps], dtype=float),
                np.array([p.limits[1] for p in ps], dtype=float))

    def to_vector(self, values: Mapping[str, Scalar]) -> np.ndarray:
        """Continuous values as an array ordered like :attr:`dims`."""
        return np.array([float(values[n]) for n in self.dims], dtype=float)  # type: ignore[arg-type]

    def from_vector(self, vector: Sequence[float]) -> dict[str, Scalar]:
        """Inverse of :meth:`to_vector` (integers rounded, values clipped to the current ranges)."""
        dims = self.dims
        if len(vector) != len(dims):
            raise ValueError(f"vector has {len(vector)} entries, space has {len(dims)} dimensions")
        out: dict[str, Scalar] = {}
        for n, x in zip(dims, vector):
            p = self[n]
            v = min(max(float(x), p.low), p.high)
            out[n] = int(round(v)) if p.integer else v
        return out

    def entropy(self) -> float:
        """ADR entropy in nats per dimension: mean of log(high - low) over continuous dims with high > low.

        Returns ``-inf`` when no dimension has a non-degenerate range (nothing is randomized).
        """
        widths = [p.high - p.low for p in self if not p.is_categorical and p.high > p.low]
        if not widths:
            return -math.inf
        return float(np.mean(np.log(widths)))

    # -- serialization ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"params": [entry, ...]}`` with one launch-file entry per Param."""
        return {"params": [p.to_dict() for p in self]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                  defaults: ParamSpace | None = None) -> ParamSpace:
        """Build a space from launch-file entries.

        Without ``defaults`` every entry is a full spec. With ``defaults`` (the Params wrappers declared) each
        entry names a known param and overrides some of its fields, e.g.
        ``{name: dynamics.object.mass, range: [0.5, 2.0], distribution: uniform, apply: scale}``; the result holds
        all default params, overridden ones replaced.
        """
        entries = data.get("params", None) if isinstance(data, Mapping) else data
        if isinstance(data, Mapping) and (entries is None or set(data) != {"params"}):
            raise ParamSpecError("?", f"expected a mapping with only the key 'params', got keys {sorted(data)}")
        if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
            raise ParamSpecError("?", f"randomization params must be a list of entries, got {entries!r}")
        if defaults is None:
            return cls(Param.from_dict(e) for e in entries)
        out = defaults.copy()
        seen: set[str] = set()
        for entry in entries:
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise ParamSpecError("?", f"each entry needs a 'name', got {entry!r}")
            name = str(entry["name"])
            if name in seen:
                raise ParamSpecError(name, "listed twice")
            seen.add(name)
            base = out[name]  # raises UnknownParamError listing known names
            _check_keys(name, entry)
            merged = base.to_dict()
            merged.update(entry)
            if "distribution" in entry and entry["distribution"] != base.distribution.value:
                for stale in ("mean", "std", "choices"):
                    if stale not in entry:
                        merged.pop(stale, None)
            if "apply" in entry and entry["apply"] != base.apply.value:
                for stale in ("nominal", "hard_limits"):
                    if stale not in entry:
                        merged.pop(stale, None)
            if "resample" in entry and entry["resample"] == Resample.EPISODE.value:
                merged.pop("resample_k", None)
            out.params[name] = Param.from_dict(merged)
        return out
