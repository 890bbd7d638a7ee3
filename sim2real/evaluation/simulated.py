"""Seeded episodes of a simulated condition, several environments stepped in lockstep (one batched policy call)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sim2real.evaluation.policy import EvalPolicy


@dataclass
class Episode:
    """One episode: return (sum of rewards), success at the last step, final EE–goal distance (m), and the mean
    distance (m) between the perceived and the true goal when the policy perceives it (else None)."""

    seed: int
    success: bool
    episode_return: float
    final_distance: float
    localization_error: float | None = None
    frames: list[np.ndarray] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "success": self.success, "return": self.episode_return,
                "final_distance": self.final_distance, "localization_error": self.localization_error}


def _distance(env: Any) -> float:
    base = env.unwrapped
    achieved = base.task.achieved_goal(base.robot.read_state(), base.world)
    return float(np.linalg.norm(achieved - base.goal))


def run_episodes(make_env: Callable[[int], Any], policy: EvalPolicy, seeds: list[int], n_envs: int = 4,
                 video_episodes: int = 0, on_episode: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Run one episode per seed (``env.reset(seed=s)``), ``n_envs`` at a time; frames of the first
    ``video_episodes`` episodes are rendered from the env's overview camera (240 x 240 RGB). ``on_episode`` is
    called with each finished episode (for progress displays)."""
    from sim2real.envs.arm_env import RENDER_CAMERA

    envs = [make_env(i) for i in range(max(1, min(n_envs, len(seeds))))]
    episodes: list[Episode] = []
    try:
        for start in range(0, len(seeds), len(envs)):
            batch = seeds[start:start + len(envs)]
            active = envs[:len(batch)]
            obs = [env.reset(seed=s)[0] for env, s in zip(active, batch)]
            if hasattr(policy, "start_episodes"):  # e.g. a vision pipeline that fuses goal estimates per episode
                policy.start_episodes(len(batch))
            totals, done = np.zeros(len(batch)), np.zeros(len(batch), dtype=bool)
            loc: list[list[float]] = [[] for _ in batch]
            frames: list[list[np.ndarray]] = [[] for _ in batch]
            success = [False] * len(batch)
            record = [start + i < video_episodes for i in range(len(batch))]
            while not done.all():
                actions = policy.act_batch(obs)
                estimates = policy.goal_estimates()
                for i, env in enumerate(active):
                    if done[i]:
                        continue
                    if estimates is not None:
                        loc[i].append(float(np.linalg.norm(estimates[i] - env.unwrapped.goal)))
                    if record[i]:
                        frames[i].append(env.unwrapped.world.render(RENDER_CAMERA))
                    obs[i], reward, terminated, truncated, info = env.step(actions[i])
                    totals[i] += float(reward)
                    success[i] = bool(info.get("is_success", False))
                    done[i] = terminated or truncated
            for i, (env, seed) in enumerate(zip(active, batch)):
                episodes.append(Episode(seed, success[i], float(totals[i]), _distance(env),
                                        float(np.mean(loc[i])) if loc[i] else None, frames[i]))
                if on_episode is not None:
                    on_episode(episodes[-1])
    finally:
        for env in envs:
            env.close()
    return episodes
