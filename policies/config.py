"""Typed configuration of the RL² policy and its recurrent-PPO trainer.

:class:`RL2Config` is the single description of the keys a launch file's ``policy: rl2`` section may
set. :meth:`RL2Config.from_dict` rejects unknown keys and out-of-range values with a
:class:`~policies.errors.ConfigError` naming the field and what is allowed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping

from policies.errors import ConfigError

RnnType = Literal["gru", "lstm"]
LogStdMode = Literal["state_independent", "state_dependent"]
Squash = Literal["tanh", "clip"]


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of :class:`policies.actor_critic.RecurrentActorCritic`.

    Attributes:
        rnn_type: ``"gru"`` or ``"lstm"``.
        hidden_size: recurrent units per layer, 1–4096.
        num_layers: stacked recurrent layers, 1–8.
        shared_recurrence: one RNN for actor and critic (True) or one each (False).
        encoder_sizes: hidden widths of the MLP applied to vector observations (may be empty).
        cnn_channels: output channels of the three conv layers used for image observations.
        embed_size: width of the RL² input embedding fed to the RNN, 1–4096.
        log_std_mode: Gaussian head: ``"state_independent"`` (learned vector) or ``"state_dependent"``.
        squash: how a Gaussian action is mapped into the Box bounds: ``"tanh"`` or ``"clip"``.
        init_log_std: initial log standard deviation of the Gaussian head, in [-5, 2].
        critic_keys: observation keys only the critic sees (asymmetric actor-critic, e.g. ``["state"]``, the
            privileged true state); the actor, and every export, never gets them. Needs separate recurrence.
    """

    rnn_type: RnnType = "gru"
    hidden_size: int = 128
    num_layers: int = 1
    shared_recurrence: bool = False
    encoder_sizes: tuple[int, ...] = (64,)
    cnn_channels: tuple[int, int, int] = (16, 32, 32)
    embed_size: int = 64
    log_std_mode: LogStdMode = "state_independent"
    squash: Squash = "tanh"
    init_log_std: float = -0.5
    critic_keys: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for the first out-of-range field."""
        _choice("rnn_type", self.rnn_type, ("gru", "lstm"))
        _int_range("hidden_size", self.hidden_size, 1, 4096)
        _int_range("num_layers", self.num_layers, 1, 8)
        _bool("shared_recurrence", self.shared_recurrence)
        for width in self.encoder_sizes:
            _int_range("encoder_sizes[]", width, 1, 4096)
        if len(self.cnn_channels) != 3:
            raise ConfigError(f"cnn_channels: expected 3 integers, got {len(self.cnn_channels)}")
        for ch in self.cnn_channels:
            _int_range("cnn_channels[]", ch, 1, 1024)
        _int_range("embed_size", self.embed_size, 1, 4096)
        _choice("log_std_mode", self.log_std_mode, ("state_independent", "state_dependent"))
        _choice("squash", self.squash, ("tanh", "clip"))
        _float_range("init_log_std", self.init_log_std, -5.0, 2.0)
        for key in self.critic_keys:
            if not isinstance(key, str) or not key:
                raise ConfigError(f"critic_keys[]: expected observation key names, got {key!r}")
        if self.critic_keys and self.shared_recurrence:
            raise ConfigError("critic_keys: an asymmetric critic needs its own recurrence; set shared_recurrence: false")


@dataclass(frozen=True)
class RL2Config:
    """Recurrent PPO (RL²) hyper-parameters; every field has a default.

    Attributes:
        network: see :class:`NetworkConfig` (a nested mapping in a launch file).
        episodes_per_trial: inner episodes per trial (K) when the trainer wraps envs in a
            :class:`~policies.trial.TrialWrapper`, 1–100000.
        total_steps: environment steps (summed over envs) to train for, ≥ 1.
        num_envs: parallel environments (ignored when a vectorized env is passed in), 1–65536.
        workers: processes stepping the envs (:class:`~policies.subproc.SubprocTrialVecEnv`, contiguous blocks of
            envs per process): 0 steps every env in the trainer's own process; 1..``num_envs`` otherwise; with 2 or
            more the rollout is pipelined (the trainer computes one half's actions while the other half steps).
            Results do not depend on it (env ``i`` is seeded ``seed + i`` in any split, and the policy runs on the
            same two halves in the same order), so a run may resume with another count.
        rollout_steps: steps per env per PPO iteration, 1–100000.
        seq_len: truncated-BPTT length in steps; must divide ``rollout_steps``.
        epochs: PPO epochs per iteration, 1–100.
        num_minibatches: minibatches per epoch; must divide ``num_envs * rollout_steps / seq_len``.
        learning_rate: Adam step size, (0, 1).
        anneal_lr: linearly decay the learning rate to 0 over ``total_steps``.
        gamma: discount per step across the whole trial, [0, 1].
        gae_lambda: GAE λ, [0, 1].
        clip_range: PPO ratio clip ε, (0, 1).
        clip_value: clip the value update to ±clip_range around the old value.
        ent_coef: entropy bonus weight, [0, 1].
        vf_coef: value loss weight, [0, 10].
        max_grad_norm: global gradient-norm clip, > 0.
        normalize_obs: running mean/std normalisation of vector observations and of the previous-reward
            input (statistics are model buffers, so exports include them).
        normalize_reward: divide rewards by the running std of the discounted trial return.
        normalize_advantages: per-minibatch advantage normalisation.
        target_kl: stop the epoch loop early when the approximate KL exceeds this (0 disables).
        seed: seeds torch, numpy and the envs.
        checkpoint_every: iterations between checkpoints, ≥ 1.
        snapshot_every: iterations between kept weight snapshots (``snapshots/step_<env steps>.pt`` in the run
            directory, tensors-only like zoo files; for choosing a policy on validation trials afterwards); 0 keeps none.
        log_every: iterations between TensorBoard/console logs, ≥ 1.
        torch_threads: ``torch.set_num_threads`` during training, 1–256.
        init_from: weights to start a new run from instead of a random initialisation: a zoo ``.pt`` or a
            ``checkpoint.pt`` with the same network and observation/action spaces (e.g. a policy trained on shorter
            trials). The optimizer and the reward-normalisation statistics start fresh; ignored when the run
            resumes from its own checkpoint.
        critic_warmup_steps: env steps at the start of training during which only the critic's own parameters are
            optimised on the value loss and the observation/reward normalisers stay fixed, so the actor does not
            change while a critic facing a new task (or new reward scale) — typically after ``init_from`` — is
            fitted; 0 disables, else less than ``total_steps``.
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    episodes_per_trial: int = 2
    total_steps: int = 1_000_000
    num_envs: int = 8
    workers: int = 0
    rollout_steps: int = 256
    seq_len: int = 32
    epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_value: bool = False
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_obs: bool = True
    normalize_reward: bool = True
    normalize_advantages: bool = True
    target_kl: float = 0.0
    seed: int = 0
    checkpoint_every: int = 10
    snapshot_every: int = 0
    log_every: int = 1
    torch_threads: int = 1
    init_from: str = ""
    critic_warmup_steps: int = 0

    def validate(self, num_envs: int | None = None) -> None:
        """Raise :class:`ConfigError` for the first inconsistent field.

        Args:
            num_envs: the actual number of envs when a vectorized env overrides ``num_envs``.
        """
        self.network.validate()
        _int_range("episodes_per_trial", self.episodes_per_trial, 1, 100_000)
        _int_range("total_steps", self.total_steps, 1, 10**13)
        _int_range("num_envs", self.num_envs, 1, 65_536)
        _int_range("workers", self.workers, 0, num_envs or self.num_envs)
        _int_range("rollout_steps", self.rollout_steps, 1, 100_000)
        _int_range("seq_len", self.seq_len, 1, self.rollout_steps)
        if self.rollout_steps % self.seq_len:
            raise ConfigError(f"seq_len: must divide rollout_steps={self.rollout_steps}, got {self.seq_len}")
        _int_range("epochs", self.epochs, 1, 100)
        n_seq = (num_envs or self.num_envs) * self.rollout_steps // self.seq_len
        _int_range("num_minibatches", self.num_minibatches, 1, n_seq)
        if n_seq % self.num_minibatches:
            raise ConfigError(
                f"num_minibatches: must divide the {n_seq} sequences per rollout, got {self.num_minibatches}")
        _float_range("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True, open_high=True)
        _float_range("gamma", self.gamma, 0.0, 1.0)
        _float_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        _float_range("clip_range", self.clip_range, 0.0, 1.0, open_low=True, open_high=True)
        _float_range("ent_coef", self.ent_coef, 0.0, 1.0)
        _float_range("vf_coef", self.vf_coef, 0.0, 10.0)
        _float_range("max_grad_norm", self.max_grad_norm, 0.0, 1e6, open_low=True)
        _float_range("target_kl", self.target_kl, 0.0, 10.0)
        for name in ("anneal_lr", "clip_value", "normalize_obs", "normalize_reward", "normalize_advantages"):
            _bool(name, getattr(self, name))
        _int_range("seed", self.seed, 0, 2**63 - 1)
        _int_range("checkpoint_every", self.checkpoint_every, 1, 10**9)
        _int_range("snapshot_every", self.snapshot_every, 0, 10**9)
        _int_range("log_every", self.log_every, 1, 10**9)
        _int_range("torch_threads", self.torch_threads, 1, 256)
        _int_range("critic_warmup_steps", self.critic_warmup_steps, 0, 10**13)
        if self.critic_warmup_steps and self.critic_warmup_steps >= self.total_steps:
            raise ConfigError(f"critic_warmup_steps: must be less than total_steps={self.total_steps} (the actor "
                              f"would never train), got {self.critic_warmup_steps}")
        if not isinstance(self.init_from, str):
            raise ConfigError(f"init_from: expected a file path, got {self.init_from!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "RL2Config":
        """Build and validate a config from a launch-file mapping; unknown keys are errors."""
        data = dict(data or {})
        net = data.pop("network", {}) or {}
        if not isinstance(net, Mapping):
            raise ConfigError(f"network: expected a mapping, got {type(net).__name__}")
        net_cfg = _build(NetworkConfig, dict(net), prefix="network.")
        cfg = _build(cls, data, prefix="", extra={"network": net_cfg})
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-serialisable)."""
        out = dataclasses.asdict(self)
        for key in ("encoder_sizes", "cnn_channels", "critic_keys"):
            out["network"][key] = list(out["network"][key])
        return out


def _build(cls: type, data: dict[str, Any], prefix: str, extra: dict[str, Any] | None = None) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = dict(extra or {})
    for key, value in data.items():
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise ConfigError(f"{prefix}{key}: unknown key; allowed: {allowed}")
        default = getattr(cls(), key) if key not in kwargs else None
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                kind = "names" if key == "critic_keys" else "integers"
                raise ConfigError(f"{prefix}{key}: expected a list of {kind}, got {value!r}")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{prefix}{key}: expected true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{prefix}{key}: expected an integer, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{prefix}{key}: expected a number, got {value!r}")
            value = float(value)
        kwargs[key] = value
    return cls(**kwargs)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}; got {value!r}")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _int_range(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")


def _float_range(name: str, value: Any, low: float, high: float,
                 open_low: bool = False, open_high: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        lb, rb = "(" if open_low else "[", ")" if open_high else "]"
        raise ConfigError(f"{name}: expected a number in {lb}{low}, {high}{rb}, got {value!r}")
