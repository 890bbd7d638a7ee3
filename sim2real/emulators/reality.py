"""Reality profiles: the physics of the emulated arm (``launch/realities/*.yaml``), independent of training.

Every key is optional; the defaults are the nominal arm of ``robots/so101.py``. Units: kg, s, rad, N·m, ticks.
Unknown keys and values outside their range are user errors naming the key.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields
from typing import Callable

from sim2real.errors import UserError
from sim2real.launch.files import find_reality
from sim2real.user_files import read_yaml_mapping


@dataclass(frozen=True)
class Faults:
    """Injected bus faults: per-reply probabilities (from ``after_s`` s of serving on), a delay spike length (s),
    and when the bus goes silent for good (s). ``seed`` fixes the fault sequence (reproducible tests); ``None``
    (default) draws it from OS entropy, so no two emulator starts lose the same reply."""

    corrupt_probability: float = 0.0
    drop_probability: float = 0.0
    delay_probability: float = 0.0
    delay_s: float = 0.0
    silent_after_s: float | None = None
    after_s: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class RealityProfile:
    """Physical differences of the emulated arm from the training simulator.

    ``mass_scale`` multiplies every link mass; ``joint_damping`` (N·m·s/rad) and ``lateral_friction`` replace the
    URDF values; ``position_gain``/``velocity_gain`` are the servo's (PyBullet position-control) gains and
    ``strength`` scales the 2.94 N·m stall torque; ``latency_s`` delays every reply; ``sensor_noise_ticks`` is the
    std of encoder noise; ``backlash_rad`` the gear play seen by the encoder; ``deadband_ticks`` the error the
    servo does not correct; ``gear_friction`` (N·m) the back-driving torque of an unpowered servo's gearbox;
    ``timestep`` the physics step (s). The arm powers up, torque off, at the spec's home pose on a table (z = 0).
    """

    name: str = "nominal"
    seed: int = 0
    timestep: float = 0.002
    mass_scale: float = 1.0
    joint_damping: float = 0.05
    lateral_friction: float = 1.0
    position_gain: float = 0.1
    velocity_gain: float = 1.0
    strength: float = 1.0
    max_velocity: float = 4.71
    latency_s: float = 0.0
    sensor_noise_ticks: float = 0.0
    backlash_rad: float = 0.0
    deadband_ticks: int = 0
    gear_friction: float = 1.0
    faults: Faults = field(default_factory=Faults)


_RANGES: dict[str, tuple[float, float]] = {
    "timestep": (1e-4, 0.01), "mass_scale": (0.1, 10.0), "joint_damping": (0.0, 10.0),
    "lateral_friction": (0.0, 5.0), "position_gain": (0.001, 1.0), "velocity_gain": (0.0, 10.0),
    "strength": (0.05, 5.0), "max_velocity": (0.1, 20.0), "latency_s": (0.0, 0.1), "sensor_noise_ticks": (0.0, 50.0),
    "backlash_rad": (0.0, 0.2), "gear_friction": (0.0, 5.0), "deadband_ticks": (0, 50), "corrupt_probability": (0.0, 1.0),
    "drop_probability": (0.0, 1.0), "delay_probability": (0.0, 1.0), "delay_s": (0.0, 1.0),
    "silent_after_s": (0.0, 1e6), "after_s": (0.0, 1e6), "seed": (0, 2**31 - 1),
}


def check_number(where: str, key: str, value: object, integer: bool,
                 ranges: dict[str, tuple[float, float]]) -> float | int:
    """``value`` of profile key ``key`` as a float (or int), inside ``ranges[key]``; one-line UserError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise UserError(f"{where}: {key} must be {'an integer' if integer else 'a number'}, got {value!r}")
    low, high = ranges[key]
    if not low <= value <= high:
        raise UserError(f"{where}: {key}={value} outside {low}..{high}")
    return int(value) if integer else float(value)


def build_section(cls: type, data: dict, where: str, value: Callable[[str, str, object], object],
                  nested: dict[str, type]) -> object:
    """Dataclass ``cls`` from a profile mapping: unknown keys refused, each value checked by ``value(where, key,
    v)``, keys in ``nested`` (e.g. ``faults``) built recursively from their own mappings. A key whose default is
    ``None`` (e.g. ``silent_after_s``, ``faults.seed``) may be set to ``null``."""
    known = {f.name for f in fields(cls)}
    nullable = {f.name for f in fields(cls) if f.default is None}
    unknown = set(data) - known
    if unknown:
        raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(known))})")
    values = {}
    for key, item in data.items():
        if key in nested:
            if not isinstance(item, dict):
                raise UserError(f"{where}: {key} must be a mapping")
            values[key] = build_section(nested[key], item, f"{where}: {key}", value, nested)
        elif item is None and key in nullable:
            values[key] = None
        else:
            values[key] = value(where, key, item)
    return cls(**values)


def _value(where: str, key: str, value: object) -> object:
    if key == "name":
        return str(value)
    return check_number(where, key, value, key in ("seed", "deadband_ticks"), _RANGES)


def fault_seed(seed: int | None) -> int:
    """The seed of an emulator's fault generator: ``seed``, or one drawn from OS entropy (0..2³¹-1, so it can be
    written into a profile's ``faults.seed`` to replay a run)."""
    return secrets.randbelow(2**31) if seed is None else seed


def load_reality(path: str) -> RealityProfile:
    """Read and validate a reality profile YAML."""
    return build_section(RealityProfile, read_profile(path), path, _value, {"faults": Faults})


def read_profile(path: str) -> dict:
    """The mapping in a reality profile YAML (a file or the name of a shipped profile, e.g. ``lab``); unknown names,
    unreadable files and bad YAML are one-line :class:`UserError` s."""
    return read_yaml_mapping(find_reality(path), "reality profile")
