"""Scripted demonstrations for off-policy learners, before learning: in the replay buffer (``algo.demonstrations``)
and, optionally, cloned into the actor (``algo.bc_steps``).

Sparse-reward Push rarely touches the cube by chance, so SAC + HER can spend 100k+ steps learning only that the cube
stays put; a few hundred episodes of :class:`~sim2real.tasks.scripted.ScriptedExpert` in the buffer show it how the
cube moves (demonstrations with HER: Nair et al. 2018). Behavior cloning starts the actor as a copy of the scripted
controller, which reinforcement learning then refines. The episodes run on the model's own (randomized) vector
env; they are not counted in ``budget.total_timesteps``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class Demonstrations(NamedTuple):
    """What :func:`add_demonstrations` recorded: the policy's observations (dict of (N, ...) arrays), the scripted
    actions (N, action dim) in [-1, 1] and the scripted controller's success rate."""

    observations: dict[str, np.ndarray]
    actions: np.ndarray
    success_rate: float


def add_demonstrations(model, config: dict[str, Any], episodes: int) -> Demonstrations:
    """Run at least ``episodes`` scripted episodes (whole rounds of ``n_envs``: every env ends together, so no
    partial episode is left in the buffer) and add their transitions to ``model.replay_buffer``."""
    from sim2real.envs import env_task
    from sim2real.tasks.scripted import ScriptedExpert

    expert = ScriptedExpert(env_task(config["env"]["id"]))
    env = model.get_env()
    successes: list[bool] = []
    seen: list[dict[str, np.ndarray]] = []
    done_actions: list[np.ndarray] = []
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
            seen.append(obs)
            done_actions.append(actions)
            finished |= dones
            obs = new_obs
    observations = {k: np.concatenate([o[k] for o in seen]) for k in seen[0]}
    return Demonstrations(observations, np.concatenate(done_actions), float(np.mean(successes)))


def clone_actor(model, demonstrations: Demonstrations, steps: int, batch_size: int = 256, seed: int = 0) -> float:
    """``steps`` Adam steps (the actor's own optimizer) of behavior cloning: mean squared error between the
    actor's deterministic action and the scripted one (clipped to ±0.98, inside tanh's range). TD3's target
    actor is synchronised afterwards. Returns the last batch's loss."""
    import torch

    policy = model.policy
    targets = torch.as_tensor(np.clip(demonstrations.actions, -0.98, 0.98), dtype=torch.float32)
    observations, _ = policy.obs_to_tensor(demonstrations.observations)
    rng = np.random.default_rng(seed)
    policy.set_training_mode(True)
    loss = torch.zeros(())
    for _ in range(steps):
        index = torch.as_tensor(rng.integers(0, len(targets), batch_size))
        batch = {k: v[index] for k, v in observations.items()} if isinstance(observations, dict) else observations[index]
        loss = torch.nn.functional.mse_loss(policy._predict(batch, deterministic=True), targets[index])
        policy.actor.optimizer.zero_grad()
        loss.backward()
        policy.actor.optimizer.step()
    policy.set_training_mode(False)
    if getattr(policy, "actor_target", None) is not None:
        policy.actor_target.load_state_dict(policy.actor.state_dict())
    return float(loss.detach())
