"""The RL² recurrent actor-critic.

Input each step (Duan et al. 2016): the observation, the previous action (one-hot if discrete),
the previous reward and the previous inner-episode done flag — all zero at a trial's first step.
The hidden state is carried across the episodes of a trial and reset only at trial starts.
"""
from __future__ import annotations

import torch
from torch import nn

from policies.config import NetworkConfig
from policies.networks import ObservationEncoder, RecurrentCore, init_linear, make_head, one_hot_or_zero
from policies.normalization import RunningNorm
from policies.spaces import PolicySpec


class RecurrentActorCritic(nn.Module):
    """Encoder → RL² embedding → GRU/LSTM (shared or one each for actor and critic) → heads.

    State layout: one tensor (S, B, H); with separate recurrence the actor's layers come first.
    """

    def __init__(self, spec: PolicySpec, cfg: NetworkConfig) -> None:
        super().__init__()
        cfg.validate()
        self.spec = spec
        self.cfg = cfg
        self.encoder = ObservationEncoder(spec.obs_parts, cfg.encoder_sizes, cfg.cnn_channels)
        act = spec.action
        self.action_in = act.n  # one-hot width, or Box dimension
        self.reward_norm = RunningNorm((1,))
        embed_in = self.encoder.out_dim + self.action_in + 2
        self.embed = nn.Sequential(init_linear(nn.Linear(embed_in, cfg.embed_size)), nn.Tanh())
        core = lambda: RecurrentCore(cfg.embed_size, cfg.hidden_size, cfg.num_layers, cfg.rnn_type)  # noqa: E731
        self.actor_core = core()
        self.critic_core = None if cfg.shared_recurrence else core()
        self.actor_head = make_head(cfg.hidden_size, act, cfg.log_std_mode == "state_dependent", cfg.init_log_std)
        self.critic_head = init_linear(nn.Linear(cfg.hidden_size, 1), gain=1.0)

    @property
    def state_layers(self) -> int:
        """First dimension of the hidden-state tensor."""
        n = self.actor_core.state_layers
        return n if self.critic_core is None else 2 * n

    def initial_state(self, batch: int) -> torch.Tensor:
        """Zero hidden state for ``batch`` trials, shape (S, B, H)."""
        return torch.zeros(self.state_layers, batch, self.cfg.hidden_size)

    def _embed(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
               prev_done: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(obs)
        if self.spec.action.discrete:
            prev_action = one_hot_or_zero(prev_action, self.action_in)
        r = self.reward_norm(prev_reward.unsqueeze(-1))
        return self.embed(torch.cat([feats, prev_action, r, prev_done.unsqueeze(-1)], dim=-1))

    def _flat(self, obs: dict[str, torch.Tensor], lead: int) -> dict[str, torch.Tensor]:
        return {k: v.reshape(-1, *v.shape[lead:]) for k, v in obs.items()}

    def step(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
             prev_done: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch. Shapes: obs[k] (B, ...), prev_action (B, A_in), prev_reward (B,),
        prev_done (B,), state (S, B, H). Returns distribution params, value (B,), new state."""
        x = self._embed(obs, prev_action, prev_reward, prev_done)
        if self.critic_core is None:
            out, state = self.actor_core.step(x, state)
            return self.actor_head(out), self.critic_head(out).squeeze(-1), state
        n = self.actor_core.state_layers
        a_out, a_state = self.actor_core.step(x, state[:n])
        c_out, c_state = self.critic_core.step(x, state[n:])
        return self.actor_head(a_out), self.critic_head(c_out).squeeze(-1), torch.cat([a_state, c_state], 0)

    def unroll(self, obs: dict[str, torch.Tensor], prev_action: torch.Tensor, prev_reward: torch.Tensor,
               prev_done: torch.Tensor, state: torch.Tensor,
               starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A sequence for a batch: inputs with leading (T, B); ``starts`` (T, B) marks trial starts,
        where the state is zeroed before the step. Returns params (T, B, P), values (T, B), final state."""
        T, B = starts.shape
        flat = self._flat(obs, 2)
        x = self._embed(flat, prev_action.reshape(T * B, -1), prev_reward.reshape(-1), prev_done.reshape(-1))
        x = x.view(T, B, -1)
        if self.critic_core is None:
            out, state = self.actor_core.unroll(x, state, starts)
            return self.actor_head(out), self.critic_head(out).squeeze(-1), state
        n = self.actor_core.state_layers
        a_out, a_state = self.actor_core.unroll(x, state[:n], starts)
        c_out, c_state = self.critic_core.unroll(x, state[n:], starts)
        return self.actor_head(a_out), self.critic_head(c_out).squeeze(-1), torch.cat([a_state, c_state], 0)

    def update_normalizers(self, obs: dict[str, torch.Tensor], reward: torch.Tensor) -> None:
        """Fold a batch of raw observations and rewards into the input statistics (trainer only)."""
        if self.encoder.vector_keys:
            self.encoder.obs_norm.update(self.encoder.vector(obs))
        self.reward_norm.update(reward.reshape(-1, 1))
