"""Vision pipelines fuse per-frame goal estimates within an episode (a Reach goal does not move): ``first`` holds
the first frame's estimate, ``median`` the running median, ``none`` passes each frame's own; a new episode forgets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sim2real.vision.model import Perception, PerceptionMeta, PerceptionNet
from sim2real.vision.pipeline import VisionPipeline
from sim2real.agents import StatelessPolicy


class GoalEcho(StatelessPolicy):
    """A state policy that returns the desired goal it was given as its action (3-D)."""

    def act_batch(self, observations):
        return np.stack([o["desired_goal"] for o in observations])

    def goal_estimates(self):
        return None


def _pipeline(goal_filter: str) -> VisionPipeline:
    torch.manual_seed(0)
    perception = Perception(PerceptionNet(channels=8), PerceptionMeta(24, 24, (0.0, 0.0, 0.1), (0.1, 0.1, 0.05), 8))
    return VisionPipeline(perception, GoalEcho(), goal_filter)


def _frames(n: int, slots: int = 2) -> list[list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(1)
    return [[{"image": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), "proprio": np.zeros(6, np.float32)}
             for _ in range(slots)] for _ in range(n)]


@pytest.mark.parametrize("goal_filter", ["none", "first", "median"])
def test_goal_filters_fuse_within_an_episode_and_forget_at_the_next(goal_filter: str) -> None:
    pipe, frames = _pipeline(goal_filter), _frames(5)
    raw = [pipe.perception.predict(np.stack([o["image"] for o in batch])) for batch in frames]
    assert not np.allclose(raw[0], raw[1])  # the frames give different estimates, so the filters can differ
    pipe.reset_trials(2)
    for t, batch in enumerate(frames):
        used = pipe.act_batch(batch)
        expected = {"none": raw[t], "first": raw[0], "median": np.median(raw[:t + 1], axis=0)}[goal_filter]
        np.testing.assert_allclose(used, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pipe.goal_estimates(), used)
    pipe.reset_trials(2)  # a new episode starts from its own first frame
    np.testing.assert_allclose(pipe.act_batch(frames[3]), raw[3], rtol=1e-5, atol=1e-6)


def test_unknown_goal_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="goal_filter"):
        _pipeline("mean")
