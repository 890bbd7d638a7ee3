"""Launch-file rules of ``env.simulator`` (issue 23): ``pybullet`` steps one PyBullet env per ``n_envs``;
``batched`` steps ``n_envs`` quadrotors together on the numpy model (:mod:`sim2real.sim.batched_quadrotor`) in the
training process. Evaluation, eval runs and deployment always use the PyBullet env of the same id."""
from __future__ import annotations

from typing import Any

from sim2real.errors import UserError


def check_simulator(config: dict[str, Any], explicit: set[str]) -> None:
    """Refuse what the batched model cannot run (other envs, cameras, other randomizer groups, privileged critics,
    curricula other than POET with SB3 agents, Ray actors, RL² worker processes) and ``env.action_rate_penalty``
    without it; the resolved experiment keeps the penalty only where it applies."""
    env = config["env"]
    if env["simulator"] != "batched":
        if "env.action_rate_penalty" in explicit:
            raise UserError("env.action_rate_penalty: only used with env.simulator: batched")
        env.pop("action_rate_penalty", None)
        return
    from sim2real.tasks.quadrotor import QUAD_ENVS

    where = "env.simulator: batched"
    if env["id"] not in QUAD_ENVS:
        raise UserError(f"{where} steps quadrotors only; {env['id']} is not one (choose from: "
                        f"{', '.join(QUAD_ENVS)})")
    if env["obs_mode"] != "state":
        raise UserError(f"{where} renders no images; use env.obs_mode: state")
    if config.get("backend", "local") != "local":
        raise UserError(f"{where} steps every vehicle in the training process; use backend: local")
    if config["policy"] not in ("mlp", "rl2"):
        raise UserError(f"policy: {config['policy']} is not wired to {where} (use mlp or rl2)")
    if config["policy"] == "rl2" and (config.get("rl2") or {}).get("workers"):
        raise UserError(f"rl2.workers: {where} steps every vehicle in the trainer's process; leave workers at 0")
    for key in ("asymmetric_critic", "critic_sees_world", "curriculum"):
        if key == "curriculum" and config.get(key) == "poet" and config["policy"] == "mlp":
            continue  # POET's own driver pins each niche's vehicles (sim2real.poet_train)
        if config.get(key):
            raise UserError(f"{key}: not available with {where} (use env.simulator: pybullet)")
    for index, entry in enumerate(config.get("randomizers") or []):
        group = entry.get("group") if isinstance(entry, dict) else None
        if group != "quadrotor":
            raise UserError(f"randomizers[{index}] ({group}): {where} takes group quadrotor only")
