"""Running mean/variance statistics kept as module buffers, so they travel with checkpoints and exports."""
from __future__ import annotations

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
    inside a trial do not reset it (the RL² objective is the whole trial's return).
    """

    def __init__(self, num_envs: int, gamma: float, eps: float = 1e-8) -> None:
        self.ret = torch.zeros(num_envs, dtype=torch.float64)
        self.stats = RunningNorm(())
        self.gamma = gamma
        self.eps = eps

    def __call__(self, reward: torch.Tensor, trial_done: torch.Tensor) -> torch.Tensor:
        """Return ``reward / std(return)``; ``trial_done`` marks envs whose trial ended at this step."""
        self.ret = self.ret * self.gamma + reward.double()
        self.stats.update(self.ret.float())
        self.ret[trial_done.bool()] = 0.0
        return reward / torch.sqrt(self.stats.var + self.eps)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"ret": self.ret.clone(), **{k: v.clone() for k, v in self.stats.state_dict().items()}}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.ret = state["ret"].clone()
        self.stats.load_state_dict({k: state[k] for k in ("mean", "var", "count")})
