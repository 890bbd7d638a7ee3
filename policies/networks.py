"""Building blocks of the RL² actor-critic: observation encoders, recurrent core, action heads."""
from __future__ import annotations

import math

import torch
from torch import nn

from policies.normalization import RunningNorm
from policies.spaces import ActionSpec, ObsPart


def mlp(in_dim: int, sizes: tuple[int, ...], activation: type[nn.Module] = nn.Tanh) -> tuple[nn.Module, int]:
    """A stack of Linear+activation layers; returns the module and its output width."""
    layers: list[nn.Module] = []
    for width in sizes:
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    return nn.Sequential(*layers), in_dim


class CNNEncoder(nn.Module):
    """Three stride-2 3×3 convolutions + ReLU, flattened. Input (B, C, H, W) in [0, 1]."""

    def __init__(self, shape: tuple[int, ...], channels: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, kernel_size=3, stride=2, padding=1), nn.ReLU()]
            c, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = c * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ObservationEncoder(nn.Module):
    """Encode a dict observation: images through a CNN, vectors normalised and through an MLP.

    Vector parts are concatenated (in ``parts`` order) before one MLP; each image part has its own CNN
    (channels-last images are transposed to (C, H, W) first).
    """

    def __init__(self, parts: tuple[ObsPart, ...], mlp_sizes: tuple[int, ...],
                 cnn_channels: tuple[int, int, int]) -> None:
        super().__init__()
        self.vector_keys = [p.key for p in parts if not p.image]
        self.image_keys = [p.key for p in parts if p.image]
        self.image_scale = {p.key: (1.0 / 255.0 if p.uint8 else 1.0) for p in parts if p.image}
        self.channels_last = {p.key: p.channels_last for p in parts if p.image}
        vec_dim = sum(p.shape[0] for p in parts if not p.image)
        self.obs_norm = RunningNorm((vec_dim,))
        self.mlp, mlp_out = mlp(vec_dim, mlp_sizes) if vec_dim else (nn.Identity(), 0)
        self.cnns = nn.ModuleDict({p.key: CNNEncoder(p.chw, cnn_channels) for p in parts if p.image})
        self.out_dim = mlp_out + sum(c.out_dim for c in self.cnns.values())

    def vector(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenated raw vector parts, shape (..., D) (what ``obs_norm`` is updated with)."""
        return torch.cat([obs[k] for k in self.vector_keys], dim=-1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        feats: list[torch.Tensor] = []
        if self.vector_keys:
            feats.append(self.mlp(self.obs_norm(self.vector(obs))))
        for key in self.image_keys:
            image = obs[key].permute(0, 3, 1, 2) if self.channels_last[key] else obs[key]
            feats.append(self.cnns[key](image * self.image_scale[key]))
        return torch.cat(feats, dim=-1)


class RecurrentCore(nn.Module):
    """GRU or LSTM whose state is one tensor of shape (S, B, H), S = layers (GRU) or 2·layers (LSTM).

    :meth:`unroll` resets the state to zero wherever ``starts`` is 1, *before* that step; since the
    reset multiplies by zero, no gradient flows through a trial boundary.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, rnn_type: str) -> None:
        super().__init__()
        self.lstm = rnn_type == "lstm"
        cls = nn.LSTM if self.lstm else nn.GRU
        self.rnn = cls(input_size, hidden_size, num_layers)
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.state_layers = num_layers * (2 if self.lstm else 1)
        for name, param in self.rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lstm:
            h, c = state[: self.num_layers], state[self.num_layers:]
            out, (h, c) = self.rnn(x, (h.contiguous(), c.contiguous()))
            return out, torch.cat([h, c], dim=0)
        out, h = self.rnn(x, state.contiguous())
        return out, h

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x`` (B, in) → output (B, H), new state."""
        out, state = self._run(x.unsqueeze(0), state)
        return out.squeeze(0), state

    def unroll(self, x: torch.Tensor, state: torch.Tensor,
               starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``x`` (T, B, in) from ``state``; ``starts`` (T, B) ∈ {0, 1} marks trial starts.

        Runs of steps without any start are fed to the RNN in one call.
        """
        T = x.shape[0]
        boundaries = [0] + [t for t in range(1, T) if bool(starts[t].any())] + [T]
        outs = []
        for t0, t1 in zip(boundaries[:-1], boundaries[1:]):
            keep = (1.0 - starts[t0]).view(1, -1, 1)
            out, state = self._run(x[t0:t1], state * keep)
            outs.append(out)
        return torch.cat(outs, dim=0), state


class CategoricalHead(nn.Module):
    """Logits of a categorical distribution over ``n`` actions."""

    def __init__(self, in_dim: int, n: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n)
        nn.init.orthogonal_(self.linear.weight, gain=0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @staticmethod
    def log_prob(params: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Categorical(logits=params).log_prob(raw.long())

    @staticmethod
    def entropy(params: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Categorical(logits=params).entropy()

    @staticmethod
    def sample(params: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Categorical(logits=params).sample()

    @staticmethod
    def mode(params: torch.Tensor) -> torch.Tensor:
        return params.argmax(dim=-1)


class GaussianHead(nn.Module):
    """Diagonal Gaussian over the raw (pre-squash) action; ``params`` = cat(mean, log_std).

    Log-probabilities are of the raw sample; the tanh Jacobian depends only on that sample, so it
    cancels in PPO's probability ratio and is omitted. ``log_std`` is clamped to [-20, 2].
    """

    def __init__(self, in_dim: int, n: int, state_dependent: bool, init_log_std: float) -> None:
        super().__init__()
        self.n = n
        self.mean = nn.Linear(in_dim, n)
        nn.init.orthogonal_(self.mean.weight, gain=0.01)
        nn.init.zeros_(self.mean.bias)
        self.state_dependent = state_dependent
        if state_dependent:
            self.log_std_layer = nn.Linear(in_dim, n)
            nn.init.orthogonal_(self.log_std_layer.weight, gain=0.01)
            nn.init.constant_(self.log_std_layer.bias, init_log_std)
        else:
            self.log_std = nn.Parameter(torch.full((n,), float(init_log_std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean(x)
        log_std = self.log_std_layer(x) if self.state_dependent else self.log_std.expand_as(mean)
        return torch.cat([mean, log_std.clamp(-20.0, 2.0)], dim=-1)

    def _dist(self, params: torch.Tensor) -> torch.distributions.Normal:
        mean, log_std = params.split(self.n, dim=-1)
        return torch.distributions.Normal(mean, log_std.exp())

    def log_prob(self, params: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        return self._dist(params).log_prob(raw).sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return self._dist(params).entropy().sum(-1)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return self._dist(params).sample()

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return params[..., : self.n]


def make_head(in_dim: int, action: ActionSpec, state_dependent: bool, init_log_std: float) -> nn.Module:
    """Categorical head for discrete actions, Gaussian head for Box actions."""
    if action.discrete:
        return CategoricalHead(in_dim, action.n)
    return GaussianHead(in_dim, action.n, state_dependent, init_log_std)


def init_linear(layer: nn.Linear, gain: float = math.sqrt(2)) -> nn.Linear:
    """Orthogonal weights, zero bias (CleanRL's PPO initialisation)."""
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def one_hot_or_zero(index: torch.Tensor, n: int) -> torch.Tensor:
    """One-hot of ``index`` (B, 1) float; index −1 gives a zero vector (trial start)."""
    return (index.long() == torch.arange(n, device=index.device)).float()


__all__ = ["mlp", "CNNEncoder", "ObservationEncoder", "RecurrentCore", "CategoricalHead", "GaussianHead",
           "make_head", "init_linear", "one_hot_or_zero"]
