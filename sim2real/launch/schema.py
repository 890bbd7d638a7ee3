"""The launch-file schema: every key, its type, default, allowed values and meaning.

A launch file (YAML) is one experiment. Any key left out takes the default below, so the defaults are the
toolkit's embedded experiment (Panda Reach with SAC + HER).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

ALGOS = ("ppo", "a2c", "sac", "td3", "ddpg")  # stable-baselines3's algorithms for continuous actions
ON_POLICY = ("ppo", "a2c")
OFF_POLICY = ("sac", "td3", "ddpg")


@dataclass(frozen=True)
class Field:
    """One launch-file value. ``low``/``high`` are inclusive bounds for numbers (list items for lists)."""

    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] | Callable[[], tuple[Any, ...]] | None = None
    low: float | None = None
    high: float | None = None
    nullable: bool = False
    item_kind: type | None = None  # for lists
    algos: tuple[str, ...] = ALGOS  # for algo.* keys: the algorithms that accept it

    def allowed_choices(self) -> tuple[Any, ...] | None:
        return self.choices() if callable(self.choices) else self.choices


def _env_ids() -> tuple[str, ...]:
    from sim2real.envs import registered_ids

    return tuple(registered_ids())


_OFF = OFF_POLICY
SCHEMA: dict[str, Any] = {
    "name": Field(str, "panda_reach", "experiment name, used in the run directory name (a plain name: no '/', "
                  "'\\' or leading '.')"),
    "env": {
        "id": Field(str, "sim2real/PandaReach-v0", "registered environment id", choices=_env_ids),
        "obs_mode": Field(str, "state", "observation mode", choices=("state", "rgb")),
        "control_mode": Field(str, None, "action mode; default: the env's own (arms: ee | joints, quadrotors: "
                              "ctbr | rpm | attitude | velocity)", nullable=True,
                              choices=(None, "ee", "joints", "rpm", "ctbr", "attitude", "velocity")),
        "reward_type": Field(str, "sparse", "reward", choices=("sparse", "dense")),
        "max_episode_steps": Field(int, 50, "control steps per episode", low=1, high=100_000),
        "simulator": Field(str, "pybullet", "training simulator of quadrotor envs: pybullet (one PyBullet env per "
                           "n_envs) or batched (n_envs vehicles stepped together in numpy, same physics and task; "
                           "evaluation and deployment still fly the PyBullet env)", choices=("pybullet", "batched")),
        "action_rate_penalty": Field(float, 0.0, "env.simulator batched: c in the extra training reward "
                                     "-c·|a_t - a_(t-1)|² (smoother actions)", low=0.0, high=100.0),
    },
    "randomizers": Field(list, [], "domain-randomization entries (see `sim2real randomizers list`)", item_kind=dict),
    "curriculum": Field(str, None, "automatic curriculum over the randomizers' ranges",
                        choices=(None, "uniform", "schedule", "adr", "alp_gmm", "plr", "robust_plr", "poet"),
                        nullable=True),
    "curriculum_options": Field(dict, None, "options of the curriculum, e.g. {p_b: 0.5, buffer_size: 240}",
                                nullable=True),
    "policy": Field(str, "mlp", "policy family: mlp (stable-baselines3, `algo`) or rl2 (recurrent PPO, `rl2`)",
                    choices=("mlp", "rl2")),
    "asymmetric_critic": Field(bool, False, "pixel policies: the critic sees the true state (observation key "
                               "`state`), the actor only image + proprio; needs env.obs_mode rgb and algo ppo or "
                               "policy rl2"),
    "critic_sees_world": Field(bool, False, "policy rl2: the critic also sees the trial's sampled randomization "
                               "values (observation key `world`), the actor never does; needs randomizers"),
    "rl2": Field(dict, None, "RL² options (policies.config.RL2Config: episodes_per_trial, rollout_steps, "
                 "network: {...}, ...); budget, seed and n_envs come from the launch file", nullable=True),
    "algo": {
        "name": Field(str, "sac", "stable-baselines3 algorithm (any case: SAC, ppo, ...); switching it by override "
                      "drops the launch file's keys that do not apply to the new one, with a note", choices=ALGOS),
        "her": Field(bool, True, "hindsight experience replay (goal tasks, off-policy only)", algos=_OFF),
        "her_n_sampled_goal": Field(int, 4, "HER relabelled goals per transition", low=1, high=64, algos=_OFF),
        "learning_rate": Field(float, 1e-3, "Adam learning rate", low=1e-8, high=1.0),
        "gamma": Field(float, 0.95, "discount factor", low=0.0, high=1.0),
        "batch_size": Field(int, 256, "minibatch size", low=1, high=1_000_000,
                            algos=("ppo", "sac", "td3", "ddpg")),
        "net_arch": Field(list, [256, 256], "hidden layer sizes", item_kind=int, low=1, high=4096),
        "buffer_size": Field(int, 200_000, "replay buffer transitions", low=100, high=10_000_000, algos=_OFF),
        "learning_starts": Field(int, 1000, "transitions before learning", low=0, high=10_000_000, algos=_OFF),
        "demonstrations": Field(int, 0, "episodes of the task's scripted controller put in the replay buffer before "
                                "learning (arm reach/push, ee control; not counted in the budget)", low=0,
                                high=1_000_000, algos=_OFF),
        "bc_steps": Field(int, 0, "gradient steps of behavior cloning of the actor on those demonstrations before "
                          "learning (needs algo.demonstrations)", low=0, high=10_000_000, algos=_OFF),
        "tau": Field(float, 0.05, "target-network soft-update rate", low=0.0, high=1.0, algos=_OFF),
        "train_freq": Field(int, 1, "environment steps between updates", low=1, high=100_000, algos=_OFF),
        "gradient_steps": Field(int, 1, "gradient steps per update", low=1, high=10_000, algos=_OFF),
        "n_steps": Field(int, 1024, "rollout steps per environment", low=2, high=1_000_000, algos=("ppo",)),
        "n_epochs": Field(int, 10, "epochs per rollout", low=1, high=1000, algos=("ppo",)),
        "gae_lambda": Field(float, 0.95, "GAE lambda", low=0.0, high=1.0, algos=("ppo",)),
        "clip_range": Field(float, 0.2, "PPO clip range", low=0.0, high=10.0, algos=("ppo",)),
        "ent_coef": Field(float, 0.0, "entropy bonus", low=0.0, high=10.0, algos=("ppo",)),
        "kwargs": Field(dict, {}, "further keyword arguments of the algorithm's constructor, passed through (e.g. "
                        "{use_sde: true} for SAC, {n_steps: 5, gae_lambda: 1.0} for A2C, {policy_delay: 2} for TD3)"),
    },
    "normalize": {
        "obs": Field(bool, False, "policy mlp: normalize observations by running mean and std (SB3 VecNormalize; "
                     "vector keys only, never images); the statistics are saved as vecnormalize.json beside each "
                     "model and applied by eval and deploy"),
        "reward": Field(bool, False, "policy mlp: scale training rewards by the running std of the discounted "
                        "return (training only; evaluation reports raw rewards)"),
        "clip_obs": Field(float, 10.0, "normalized observations are clipped to [-clip_obs, clip_obs]", low=1e-3,
                          high=1e6),
        "clip_reward": Field(float, 10.0, "normalized rewards are clipped to [-clip_reward, clip_reward]",
                             low=1e-3, high=1e6),
    },
    "n_envs": Field(int, 2, "parallel environments (SubprocVecEnv when > 1)", low=1, high=256),
    "backend": Field(str, "local", "where the training envs run: local (this machine) or ray (Ray actors, `ray`)",
                     choices=("local", "ray")),
    "ray": {  # backend ray only (issue 22)
        "address": Field(str, None, "Ray cluster to join: head host:port, or auto (the one `ray start` began on this "
                         "machine); null: a private Ray instance on this machine", nullable=True),
        "num_actors": Field(int, None, "Ray actors holding the envs (default: n_envs / ray.envs_per_actor)",
                            nullable=True, low=1, high=256),
        "envs_per_actor": Field(int, None, "envs per actor, stepped with one call (default: n_envs / "
                                "ray.num_actors, or 1)", nullable=True, low=1, high=256),
        "cpus_per_actor": Field(float, 1.0, "CPUs each actor reserves in the cluster", low=0.0, high=64.0),
    },
    "budget": {"total_timesteps": Field(int, 20_000, "environment steps to train", low=1, high=10**10)},
    "eval": {
        "every_steps": Field(int, 5000, "environment steps between evaluations", low=1, high=10**10),
        "episodes": Field(int, 20, "episodes per evaluation", low=1, high=100_000),
    },
    "checkpoint": {"every_steps": Field(int, 5000, "environment steps between checkpoints", low=1, high=10**10)},
    "seed": Field(int, 0, "random seed (environments, networks, evaluation)", low=0, high=2**31 - 1),
    "output_dir": Field(str, "runs", "directory that receives the run directory"),
    "device": Field(str, "cpu", "torch device of stable-baselines3 training (cuda without CUDA, and any device with "
                    "policy rl2, train on the cpu after a warning)", choices=("cpu", "cuda", "auto")),
}


def defaults(schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    """The embedded default experiment as a plain nested dict."""
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        out[key] = defaults(spec) if isinstance(spec, dict) else _copy(spec.default)
    return out


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
