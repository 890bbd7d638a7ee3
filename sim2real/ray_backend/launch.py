"""Launch-file rules of ``backend`` and ``ray.*`` (called by the launch loader while it validates)."""
from __future__ import annotations

from typing import Any

from sim2real.errors import UserError


def check_backend(config: dict[str, Any], explicit: set[str]) -> None:
    """Resolve ``ray.num_actors`` x ``ray.envs_per_actor`` = ``n_envs`` in place (whichever is left out follows from
    the others; neither: one env per actor); with ``backend: local`` the ``ray`` section is refused when set and
    dropped from the resolved experiment (it lists only what runs)."""
    given = sorted(k for k in explicit if k.startswith("ray."))
    if config["backend"] != "ray":
        if given:
            raise UserError(f"{given[0]}: only used with backend: ray (this launch file says backend: "
                            f"{config['backend']})")
        config.pop("ray", None)
        return
    ray, n_envs = config["ray"], config["n_envs"]
    actors, per_actor = ray["num_actors"], ray["envs_per_actor"]
    if actors is not None and per_actor is not None:
        if "n_envs" in explicit and actors * per_actor != n_envs:
            raise UserError(f"n_envs: {n_envs}, but ray.num_actors {actors} x ray.envs_per_actor {per_actor} = "
                            f"{actors * per_actor}; set two of the three")
        config["n_envs"] = actors * per_actor
    elif actors is not None or per_actor is not None:
        key, value = ("num_actors", actors) if actors is not None else ("envs_per_actor", per_actor)
        if n_envs % value:
            raise UserError(f"ray.{key}: {value} does not divide n_envs {n_envs}")
        ray["envs_per_actor" if key == "num_actors" else "num_actors"] = n_envs // value
    else:
        ray["num_actors"], ray["envs_per_actor"] = n_envs, 1
