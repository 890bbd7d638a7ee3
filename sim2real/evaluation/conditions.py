"""Evaluation conditions as launch configs: the training randomization, held-out textures, wider dynamics.

Each simulated condition is the run's resolved launch config with its ``randomizers:`` list rewritten; the
curriculum is dropped (evaluation samples the launch file's ranges and never moves them). ``emulated`` is not a
config: it runs through the HAL (:mod:`sim2real.evaluation.emulated`).
"""
from __future__ import annotations

import copy
from typing import Any

from sim2real.errors import UserError
from sim2real.extras import require

CONDITIONS = ("train", "heldout-textures", "heldout-dynamics", "emulated")
HELDOUT_TEXTURES = {"n_unique": 1000, "heldout_families": ["cells", "dots"], "size": 64, "seed": 0}
WIDEN = 2.0  # held-out dynamics: each range's distance from nominal is multiplied by this (clipped to hard limits)


def parse_conditions(text: str) -> list[str]:
    """``"train,emulated"`` → ``["train", "emulated"]``; unknown names, and ``emulated`` without the servo extra
    (it drives the emulator through the Dynamixel driver), are a :class:`UserError`."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONDITIONS]
    if unknown or not names:
        raise UserError(f"--conditions: unknown {unknown or 'empty list'}; choose from {', '.join(CONDITIONS)}")
    if "emulated" in names:
        require("dynamixel_sdk", "the emulated condition (Dynamixel driver)")
    return list(dict.fromkeys(names))


def not_applicable(name: str, config: dict[str, Any]) -> str | None:
    """Why condition ``name`` cannot change what a policy of ``config`` does (so it is not run and reported as
    "n/a", never as a zero gap), or None when it can: held-out textures change only camera images."""
    if name == "heldout-textures" and config["env"]["obs_mode"] != "rgb":
        return "policy does not see images"
    return None


def _entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(e) for e in (config.get("randomizers") or [])]


def _base(config: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    out["randomizers"] = entries
    out["curriculum"] = None
    out["curriculum_options"] = None
    return out


def train_config(config: dict[str, Any]) -> dict[str, Any]:
    """The launch file's own randomization (curriculum frozen at the launch-file ranges)."""
    return _base(config, _entries(config))


def heldout_textures_config(config: dict[str, Any], directory: str | None = None) -> dict[str, Any]:
    """Visual randomization drawing only held-out textures: the held-out procedural split of the launch file's
    texture set (families ``cells`` and ``dots`` when it names none), or the images of ``directory``."""
    entries = _entries(config)
    visual = next((e for e in entries if e["group"] == "visual"), None)
    if visual is None:
        visual = {"group": "visual", "params": [{"name": "visual.texture.probability", "range": [1.0, 1.0]}]}
        entries.append(visual)
    visual["enabled"] = True
    if directory is not None:
        visual["textures"] = {"directory": directory, "size": 64}
    else:
        textures = dict(visual.get("textures") or HELDOUT_TEXTURES)
        if "directory" in textures:
            textures["split"] = "heldout"
            textures.setdefault("heldout_fraction", 0.2)
        else:
            textures.setdefault("heldout_families", list(HELDOUT_TEXTURES["heldout_families"]))
            textures["split"] = "heldout"
        visual["textures"] = textures
    return _base(config, entries)


def _widened(param: Any, factor: float) -> Any:
    """``param`` with its range pushed away from the nominal value by ``factor`` (kept if that is invalid)."""
    from randomizers.params import ParamSpecError

    if param.is_categorical or param.range is None:
        return param
    low, high = param.range
    nominal = float(param.nominal)
    if param.distribution.value == "loguniform" and nominal > 0:
        new_low, new_high = nominal * (low / nominal) ** factor, nominal * (high / nominal) ** factor
    else:
        new_low, new_high = nominal - factor * (nominal - low), nominal + factor * (high - nominal)
    hard_low, hard_high = param.limits
    new_low, new_high = max(min(new_low, low), hard_low), min(max(new_high, high), hard_high)
    try:
        return param.with_range(new_low, new_high)
    except ParamSpecError:
        try:
            return param.with_range(low, new_high)
        except ParamSpecError:
            return param


def _dynamics_randomizer(env_id: str) -> type:
    """The randomizer of the env's physical dynamics: ``quadrotor`` for multirotors, ``dynamics`` for arms."""
    from sim2real.envs import QUAD_ENVS

    if env_id in QUAD_ENVS:
        from randomizers.quadrotor import QuadrotorRandomizer

        return QuadrotorRandomizer
    from randomizers.wrappers.dynamics import DynamicsRandomizer

    return DynamicsRandomizer


def heldout_dynamics_config(config: dict[str, Any], factor: float = WIDEN) -> dict[str, Any]:
    """Dynamics randomization wider than training: every range of the env's dynamics group (``dynamics`` for arms,
    ``quadrotor`` for multirotors; the launch file's, or the group's defaults when training did not randomize it)
    widened by ``factor`` around its nominal value."""
    from randomizers.params import ParamSpace
    from sim2real.launch.randomizers import env_traits

    randomizer = _dynamics_randomizer(config["env"]["id"])
    group = randomizer.GROUP
    traits = env_traits(config["env"]["id"], config["env"]["obs_mode"])
    defaults = randomizer.applicable_to(randomizer.declare(), traits)
    entries = _entries(config)
    index = next((i for i, e in enumerate(entries) if e["group"] == group), None)
    trained = defaults if index is None else ParamSpace.from_dict(entries[index].get("params") or [],
                                                                  defaults=defaults)
    wide = ParamSpace([_widened(p, factor) for p in trained])
    entry = {"group": group, "params": [{"name": p.name, "range": list(p.range)} for p in wide
                                             if not p.is_categorical and p.range is not None]}
    if index is None:
        entries.insert(0, entry)
    else:
        entries[index] = entry
    return _base(config, entries)


def condition_config(name: str, config: dict[str, Any], textures: str | None = None) -> dict[str, Any]:
    """The launch config a simulated condition runs under."""
    if name == "train":
        return train_config(config)
    if name == "heldout-textures":
        return heldout_textures_config(config, textures)
    if name == "heldout-dynamics":
        return heldout_dynamics_config(config)
    raise ValueError(f"{name} is not a simulated condition")


def dynamics_ranges(config: dict[str, Any]) -> dict[str, list[float]]:
    """``name → [low, high]`` of the dynamics entry of ``config`` (for the report)."""
    group = _dynamics_randomizer(config["env"]["id"]).GROUP
    for entry in config.get("randomizers") or []:
        if entry["group"] == group:
            return {p["name"]: list(p["range"]) for p in entry.get("params") or [] if "range" in p}
    return {}
