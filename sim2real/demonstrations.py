"""Scripted demonstrations in an off-policy learner's replay buffer (``algo.demonstrations``), before learning.

Sparse-reward Push rarely touches the cube by chance, so SAC + HER can spend 100k+ steps learning only that the cube
stays put; a few hundred episodes of :class:`~sim2real.tasks.scripted.ScriptedExpert` in the buffer show it how the
cube moves (demonstrations with HER: Nair et al. 2018). The episodes run on the model's own (randomized) vector
env; they are not counted in ``budget.total_timesteps``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def add_demonstrations(model, config: dict[str, Any], episodes: int) -> float:
    """Run at least ``episodes`` scripted episodes (whole rounds of ``n_envs``: every env ends together, so no
    partial episode is left in the buffer) and add their transitions to ``model.replay_buffer``. Returns the
    scripted controller's success rate."""
    from sim2real.envs import env_task
    from sim2real.tasks.scripted import ScriptedExpert

    expert = ScriptedExpert(env_task(config["env"]["id"]))
    env = model.get_env()
    successes: list[bool] = []
    while len(successes) < episodes:
        obs = env.reset()
        finished = np.zeros(env.num_envs, dtype=bool)
        while not finished.all():
            actions = np.stack([expert.act({k: v[i] for k, v in obs.items()}) for i in range(env.num_envs)])
            new_obs, rewards, dones, infos = env.step(actions)
            next_obs = {k: v.copy() for k, v in new_obs.items()}
            for i in np.flatnonzero(dones):  # the vector env already reset these: the real last observation
                for k in next_obs:
                    next_obs[k][i] = infos[i]["terminal_observation"][k]
                successes.append(bool(infos[i].get("is_success", False)))
            model.replay_buffer.add(obs, next_obs, actions, rewards, dones, infos)
            finished |= dones
            obs = new_obs
    return float(np.mean(successes))
