"""Running mean/variance statistics kept as module buffers, so they travel with checkpoints and exports."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class RunningNorm(nn.Module):
    """Normalise inputs by a running mean and standard deviation (Chan et al. parallel update).

    ``forward`` is a pure function of the buffers; call :meth:`update` (trainer only) to move them.
    Outputs are clipped to ``±clip`` standard deviations.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))
        self.clip = clip
        self.eps = eps

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``x`` of shape ``(N, *shape)`` into the statistics."""
        x = x.reshape(-1, *self.mean.shape).to(self.mean.dtype)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = x.shape[0]
        total = self.count + n
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * (n / total).float()
        m2 = self.var * self.count.float() + batch_var * n + delta.pow(2) * (self.count * n / total).float()
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total.float())
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)


class ReturnScaler:
    """Scale rewards by the running std of the discounted return (as SB3's VecNormalize does).

    The discounted return is accumulated per env and reset at trial ends, so inner-episode ends
    inside a trial do not reset it (the RL² objective is the whole trial's return). The running statistics are
    :class:`RunningNorm`'s (same update, same state-dict keys and dtypes), kept in Python floats: the trainer calls
    this every step, where a dozen small tensor operations would cost more than the arithmetic.
    """

    def __init__(self, num_envs: int, gamma: float, eps: float = 1e-8) -> None:
        self.ret = torch.zeros(num_envs, dtype=torch.float64)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-8  # float32-rounded mean/var, float64 count
        self.gamma = gamma
        self.eps = eps

    def __call__(self, reward: torch.Tensor, trial_done: torch.Tensor, envs: slice = slice(None)) -> torch.Tensor:
        """Return ``reward / std(return)``; ``trial_done`` marks envs whose trial ended at this step. ``envs``: the
        envs the rows belong to, when a step comes in blocks of envs (each block updates the statistics)."""
        ret = self.ret[envs] * self.gamma + reward.double()
        self._update(ret.float())
        ret[trial_done.bool()] = 0.0
        self.ret[envs] = ret
        return reward / math.sqrt(_f32(self.var + self.eps))

    def _update(self, x: torch.Tensor) -> None:
        """:meth:`RunningNorm.update` for a batch of scalars (float32 mean/var, float64 count)."""
        batch_var, batch_mean = (float(v) for v in torch.var_mean(x, unbiased=False))
        n = x.numel()
        total = self.count + n
        delta = _f32(batch_mean - self.mean)
        self.mean = _f32(self.mean + _f32(delta * _f32(n / total)))
        m2 = _f32(_f32(_f32(self.var * _f32(self.count)) + _f32(batch_var * n)) +
                  _f32(_f32(delta * delta) * _f32(self.count * n / total)))
        self.var = _f32(m2 / _f32(total))
        self.count = total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"ret": self.ret.clone(), "mean": torch.tensor(self.mean), "var": torch.tensor(self.var),
                "count": torch.tensor(self.count, dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.ret = state["ret"].clone()
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])


def _f32(x: float) -> float:
    """``x`` rounded to float32 (what the tensor arithmetic of :class:`RunningNorm` keeps)."""
    return float(np.float32(x))
