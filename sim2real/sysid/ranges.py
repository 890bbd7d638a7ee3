"""Training ranges from a fit: the bootstrap intervals, widened to a floor, as a launch file's ``randomizers:``
block, and that block applied to a user's launch file (the launch format has no include: the fitted ranges replace
those Params' ranges in the matching group, or add the group).

Floor: at least ``MIN_SPREAD`` of each parameter's search box (unit coordinates, log-spaced for scales) either side
of the estimate: a fit this tight would train a policy for one exact robot, and the next day's robot differs.
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

from sim2real.sysid.model import FitParameter

MIN_SPREAD = 0.05


def training_intervals(parameters: Sequence[FitParameter], values: Mapping[str, float],
                       intervals: Mapping[str, tuple[float, float]],
                       min_spread: float = MIN_SPREAD) -> dict[str, tuple[float, float]]:
    """Per parameter (profile units): the fit's interval, widened to ``min_spread`` of the box around the value."""
    out = {}
    for p in parameters:
        centre = p.to_unit(values[p.name])
        low, high = intervals.get(p.name, (values[p.name], values[p.name]))
        out[p.name] = (min(low, p.from_unit(centre - min_spread)), max(high, p.from_unit(centre + min_spread)))
    return out


def apply_block(launch: dict, block: dict) -> dict:
    """A copy of the launch mapping ``launch`` whose randomizer Params take the ranges of ``block`` (a
    ``{"randomizers": [{"group": ..., "params": [{"name", "range"}]}]}`` mapping); groups and Params the launch file
    lacks are added."""
    out = copy.deepcopy(launch)
    groups = out.setdefault("randomizers", []) or []
    out["randomizers"] = groups
    for fitted in block.get("randomizers", []):
        group = next((g for g in groups if isinstance(g, dict) and g.get("group") == fitted["group"]), None)
        if group is None:
            groups.append(copy.deepcopy(fitted))
            continue
        params = group.setdefault("params", [])
        for param in fitted["params"]:
            mine = next((q for q in params if isinstance(q, dict) and q.get("name") == param["name"]), None)
            if mine is None:
                params.append(dict(param))
            else:
                mine["range"] = list(param["range"])
    return out
