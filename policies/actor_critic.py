"""The RL² recurrent actor-critic.

Input each step (Duan et al. 2016): the observation, the previous action (one-hot if discrete),
the previous reward and the previous inner-episode done flag — all zero at a trial's first step.
The hidden state is carried across the episodes of a trial and reset only at trial starts.

Asymmetric actor-critic (``NetworkConfig.critic_keys``): the observation keys listed there (e.g. the privileged
true ``state``) feed only the critic, through its own encoder and embedding; the actor sees the other keys (e.g.
``image`` + ``proprio``) and the RL² inputs, so :meth:`RecurrentActorCritic.actor_step` runs without them.
"""
from __future__ import annotations

import torch
from torch import nn

from policies.config import NetworkConfig
from policies.errors import ConfigError
from policies.networks import ObservationEncoder, RecurrentCore, init_linear, make_head, one_hot_or_zero
from policies.normalization import RunningNorm
from policies.spaces import ObsPart, PolicySpec


class RecurrentActorCritic(nn.Module):
    """Encoder → RL² embedding → GRU/LSTM (shared or one each for actor and critic) → heads.

    State layout: one tensor (S, B, H); with separate recurrence the actor's layers come first.
    """

    def __init__(self, spec: PolicySpec, cfg: NetworkConfig) -> None:
        super().__init__()
        cfg.validate()
        self.spec = spec
        self.cfg = cfg
        actor_parts, critic_parts = _split_parts(spec.obs_parts, cfg.critic_keys)
        self.actor_spec = PolicySpec(actor_parts, spec.action)
        self.encoder = ObservationEncoder(actor_parts, cfg.encoder_sizes, cfg.cnn_channels)
        act = spec.action
        self.action_in = act.n  # one-hot width, or Box dimension
        self.reward_norm = RunningNorm((1,))
        embed = lambda width: nn.Sequential(  # noqa: E731
            init_linear(nn.Linear(width + self.action_in + 2, cfg.embed_size)), nn.Tanh())
        self.embed = embed(self.encoder.out_dim)
        self.critic_encoder: ObservationEncoder | None = None
        self.critic_embed: nn.Module | None = None
        if critic_parts:
            self.critic_encoder = ObservationEncoder(critic_parts, cfg.encoder_sizes, cfg.cnn_channels)
            self.critic_embed = embed(self.critic_encoder.out_dim)
        core = lambda: RecurrentCore(cfg.embed_size, cfg.hidden_size, cfg.num_layers, cfg.rnn_type)  # noqa: E731
        self.actor_core = core()
        self.critic_core = None if cfg.shared_recurrence else core()
        self.actor_head = make_head(cfg.hidden_size, act, cfg.log_std_mode == "state_dependent", cfg.init_log_std)
        self.critic_head = init_linear(nn.Linear(cfg.hidden_size, 1), gain=1.0)

    @property
    def asymmetric(self) -> bool:
        """True when the critic has observation keys of its own (the actor never sees them)."""
        return self.critic_encoder is not None

    def critic_only_parameters(self) -> list[nn.Parameter]:
        """Parameters only the value function uses: its head, and its own encoder, embedding and recurrence where
        it has them (shared layers are left out, since training them changes the actor)."""
        own = (self.critic_encoder, self.critic_embed, self.critic_core, self.critic_head)
        return [p for module in own if module is not None for p in module.parameters()]

    @property
    def actor_state_layers(self) -> int:
        """First dimension of the actor's part of the hidden state (all of it with shared recurrence)."""
        return self.actor_core.state_layers

    @property
    def state_layers(self) -> int:
        """First dimension of the hidden-state tensor."""
        n = self.actor_core.state_layers
        return n if self.critic_core is None else 2 * n

    def initial_state(self, batch: int) -> torch.Tensor:
        """Zero hidden state for ``batch`` trials, shape (S, B, H)."""
        return torch.zeros(self.state_layers, batch, self.cfg.hidden_size)

    def initial_actor_state(self, batch: int) -> torch.Tensor:
        """Zero hidden state of the actor alone (what :meth:`actor_step` takes), shape (S_actor, B, H)."""
        return torch.zeros(self.actor_state_layers, batch, self.cfg.hidden_size)

    def _rl2_inputs(self, prev_action: torch.Tensor, prev_reward: torch.Tensor,
                    prev_done: torch.Tensor) -> list[torch.Tensor]:
        if self.spec.action.discrete:
            prev_action = one_hot_or_zero(prev_action, self.action_in)
        return [prev_action, self.reward_norm(prev_reward.unsqueeze(-1)), prev_done.unsqueeze(-1)]

    def _embed(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
               prev_done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actor input, critic input) of the recurrent cores; the same tensor unless asymmetric."""
        rl2 = self._rl2_inputs(prev_action, prev_reward, prev_done)
        x = self.embed(torch.cat([self.encoder(obs), *rl2], dim=-1))
        if self.critic_encoder is None or self.critic_embed is None:
            return x, x
        return x, self.critic_embed(torch.cat([self.critic_encoder(obs), *rl2], dim=-1))

    def actor_step(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
                   prev_done: torch.Tensor, actor_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor alone, one step: ``obs`` needs only the actor's keys, ``actor_state`` is (S_actor, B, H).
        Returns distribution params and the new actor state (what deployment runs)."""
        x = self.embed(torch.cat([self.encoder(obs), *self._rl2_inputs(prev_action, prev_reward, prev_done)], -1))
        out, actor_state = self.actor_core.step(x, actor_state)
        return self.actor_head(out), actor_state

    def _flat(self, obs: dict[str, torch.Tensor], lead: int) -> dict[str, torch.Tensor]:
        return {k: v.reshape(-1, *v.shape[lead:]) for k, v in obs.items()}

    def step(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
             prev_done: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch. Shapes: obs[k] (B, ...), prev_action (B, A_in), prev_reward (B,),
        prev_done (B,), state (S, B, H). Returns distribution params, value (B,), new state."""
        x, xc = self._embed(obs, prev_action, prev_reward, prev_done)
        if self.critic_core is None:
            out, state = self.actor_core.step(x, state)
            return self.actor_head(out), self.critic_head(out).squeeze(-1), state
        n = self.actor_core.state_layers
        a_out, a_state = self.actor_core.step(x, state[:n])
        c_out, c_state = self.critic_core.step(xc, state[n:])
        return self.actor_head(a_out), self.critic_head(c_out).squeeze(-1), torch.cat([a_state, c_state], 0)

    def unroll(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
               prev_done: torch.Tensor, state: torch.Tensor,
               starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A sequence for a batch: inputs with leading (T, B); ``starts`` (T, B) marks trial starts,
        where the state is zeroed before the step. Returns params (T, B, P), values (T, B), final state."""
        T, B = starts.shape
        flat = self._flat(obs, 2)
        x, xc = self._embed(flat, prev_action.reshape(T * B, -1), prev_reward.reshape(-1), prev_done.reshape(-1))
        x, xc = x.view(T, B, -1), xc.view(T, B, -1)
        if self.critic_core is None:
            out, state = self.actor_core.unroll(x, state, starts)
            return self.actor_head(out), self.critic_head(out).squeeze(-1), state
        n = self.actor_core.state_layers
        a_out, a_state = self.actor_core.unroll(x, state[:n], starts)
        c_out, c_state = self.critic_core.unroll(xc, state[n:], starts)
        return self.actor_head(a_out), self.critic_head(c_out).squeeze(-1), torch.cat([a_state, c_state], 0)

    def update_normalizers(self, obs: dict[str, torch.Tensor], reward: torch.Tensor) -> None:
        """Fold a batch of raw observations and rewards into the input statistics (trainer only)."""
        for encoder in (self.encoder, self.critic_encoder):
            if encoder is not None and encoder.vector_keys:
                encoder.obs_norm.update(encoder.vector(obs))
        self.reward_norm.update(reward.reshape(-1, 1))


def _split_parts(parts: tuple[ObsPart, ...], critic_keys: tuple[str, ...]
                 ) -> tuple[tuple[ObsPart, ...], tuple[ObsPart, ...]]:
    """(actor parts, critic-only parts); unknown critic keys or nothing left for the actor are config errors."""
    keys = [p.key for p in parts]
    for key in critic_keys:
        if key not in keys:
            raise ConfigError(f"network.critic_keys: {key!r} is not an observation key (have: {', '.join(keys)})")
    actor = tuple(p for p in parts if p.key not in critic_keys)
    if not actor:
        raise ConfigError("network.critic_keys: lists every observation key; the actor needs at least one")
    return actor, tuple(p for p in parts if p.key in critic_keys)
