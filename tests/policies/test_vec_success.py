"""The gymnasium vector adapter reports episode success as the in-process one does (trial ends included)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from policies.trial import TrialWrapper
from policies.vec import GymVectorTrialEnv, SyncTrialVecEnv


class SignEnv(gym.Env):
    """3-step episodes; success when the last action is positive (reported every step, as the arm envs do)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 0.0, False, self.t >= 3, {"is_success": bool(action[0] > 0)}


def test_gymnasium_vector_adapter_reports_success_like_sync():
    make = [lambda: TrialWrapper(SignEnv(), 2)] * 3
    gym_vec = GymVectorTrialEnv(gym.vector.SyncVectorEnv(make, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP))
    sync = SyncTrialVecEnv(make)
    gym_vec.reset(seed=0), sync.reset(seed=0)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(24):  # 4 trials of 2 episodes per env: inner episode ends and trial ends (resets)
        action = torch.as_tensor(rng.uniform(-1, 1, (3, 1)), dtype=torch.float32)
        a, b = gym_vec.step(action), sync.step(action)
        assert a.episode_success is not None and torch.equal(a.episode_success, b.episode_success)
        assert torch.equal(a.episode_done, b.episode_done)
        seen.append(a.episode_success[a.episode_done.bool()])
    ends = torch.cat(seen)
    assert len(ends) == 24 and 0 < ends.sum() < 24  # both outcomes occurred at episode ends
