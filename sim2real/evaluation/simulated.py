"""Seeded episodes of a simulated condition, several environments stepped in lockstep (one batched policy call)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sim2real.agents import BatchPolicy


@dataclass
class Episode:
    """One episode: the seed of its trial, return (sum of rewards), success at the last step, final EE–goal
    distance (m), the mean distance (m) between the perceived and the true goal when the policy perceives it (else
    None), and its index within the trial."""

    seed: int
    success: bool
    episode_return: float
    final_distance: float
    localization_error: float | None = None
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    index_in_trial: int = 0  # 0 for the first episode of a trial (the seed's); RL² trials have several

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "success": self.success, "return": self.episode_return,
                "final_distance": self.final_distance, "localization_error": self.localization_error,
                "index_in_trial": self.index_in_trial}


def _distance(env: Any, info: dict[str, Any]) -> float:
    """Final distance to the goal (m): what a quadrotor env reports (``position_error``, to its reference), else
    from the arm task's achieved goal."""
    if "position_error" in info:
        return float(info["position_error"])
    base = env.unwrapped
    achieved = base.task.achieved_goal(base.robot.read_state(), base.world)
    return float(np.linalg.norm(achieved - base.goal))


def _frame(env: Any) -> np.ndarray | None:
    """The overview camera's image (240 x 240 RGB) of an arm env; None for envs without one (quadrotors)."""
    from sim2real.envs.arm_env import RENDER_CAMERA

    world = env.unwrapped.world
    return world.render(RENDER_CAMERA) if hasattr(world, "render") else None


def run_episodes(make_env: Callable[[int], Any], policy: BatchPolicy, seeds: list[int], n_envs: int = 4,
                 video_episodes: int = 0, on_episode: Callable[[Episode], None] | None = None) -> list[Episode]:
    """One trial per seed, ``n_envs`` trials at a time: ``env.reset(seed=s)`` samples the trial's world, then
    ``policy.episodes_per_trial`` episodes run in it (later resets pass ``options={"randomize": False}``, so the
    randomizers keep their values: the RL² trial contract, :mod:`policies.trial`). The policy's memory lasts a
    trial; it observes every step's reward and end flags. Without memory a trial is one episode. Frames of the
    episodes of the first ``video_episodes`` trials are rendered from the env's overview camera (240 x 240 RGB).
    ``on_episode`` is called with each finished episode (for progress displays). Episodes are returned trial by
    trial, in order within a trial (``Episode.index_in_trial``)."""
    per_trial = max(1, int(policy.episodes_per_trial))
    envs = [make_env(i) for i in range(max(1, min(n_envs, len(seeds))))]
    episodes: list[Episode] = []
    try:
        for start in range(0, len(seeds), len(envs)):
            batch = seeds[start:start + len(envs)]
            active, n = envs[:len(batch)], len(batch)
            obs = [env.reset(seed=s)[0] for env, s in zip(active, batch)]
            policy.reset_trials(n)
            index, over = [0] * n, np.zeros(n, dtype=bool)  # episode within the trial; trial finished
            totals, success, infos = np.zeros(n), [False] * n, [{} for _ in batch]
            loc: list[list[float]] = [[] for _ in batch]
            frames: list[list[np.ndarray]] = [[] for _ in batch]
            record = [start + i < video_episodes for i in range(n)]
            finished: list[Episode] = []
            while not over.all():
                actions = policy.act_batch(obs)
                estimates = policy.goal_estimates()
                rewards, terminated, truncated = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
                for i, env in enumerate(active):
                    if over[i]:
                        continue
                    if estimates is not None:
                        loc[i].append(float(np.linalg.norm(estimates[i] - env.unwrapped.goal)))
                    frame = _frame(env) if record[i] else None
                    if frame is not None:
                        frames[i].append(frame)
                    obs[i], rewards[i], terminated[i], truncated[i], infos[i] = env.step(actions[i])
                    totals[i] += float(rewards[i])
                    success[i] = bool(infos[i].get("is_success", False))
                policy.observe_batch(rewards, terminated, truncated)
                for i, env in enumerate(active):
                    if over[i] or not (terminated[i] or truncated[i]):
                        continue
                    finished.append(Episode(batch[i], success[i], float(totals[i]), _distance(env, infos[i]),
                                            float(np.mean(loc[i])) if loc[i] else None, frames[i], index[i]))
                    if on_episode is not None:
                        on_episode(finished[-1])
                    index[i] += 1
                    over[i] = index[i] >= per_trial
                    if not over[i]:  # the next episode of the trial, in the same sampled world
                        obs[i] = env.reset(options={"randomize": False})[0]
                        totals[i], success[i], loc[i], frames[i] = 0.0, False, [], []
            episodes += sorted(finished, key=lambda e: (batch.index(e.seed), e.index_in_trial))
    finally:
        for env in envs:
            env.close()
    return episodes
