"""What ``eval``, ``deploy`` and the demo hold: one policy interface, one adapter per kind of policy.

Single-environment form, :class:`Policy` (a deployment drives one robot)::

    policy.reset_trial()                          # a new trial: recurrent memory cleared
    action = policy.act(obs)                      # obs as the task builds it, action in [-1, 1] (env units)
    policy.observe(reward, terminated, truncated) # what that action earned; an episode ends when either flag is set
    policy.goal_estimate()                        # the goal a camera policy perceived at its last act (m), or None

Batched form, :class:`BatchPolicy` (evaluation steps N environments in lockstep; slot ``i`` is environment ``i``):
``reset_trials(n)``, ``act_batch(observations)``, ``observe_batch(rewards, terminated, truncated)``,
``goal_estimates()``. A slot's memory lasts for its trial: a recurrent (RL²) policy keeps its hidden state across
the episodes of a trial and gets the reward and done flags as inputs, as in training; a camera pipeline forgets a
slot's goal estimates when that slot's episode ends. Every adapter is a :class:`BatchPolicy`; :class:`OneEnv`
gives any of them the single form. Which adapter a file needs is decided by :mod:`sim2real.policy_files`.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np


class Policy(Protocol):
    def reset_trial(self) -> None: ...
    def act(self, obs: Any) -> np.ndarray: ...
    def observe(self, reward: float, terminated: bool, truncated: bool) -> None: ...
    def goal_estimate(self) -> np.ndarray | None: ...


class BatchPolicy(Protocol):
    recurrent: bool  # whether memory spans the episodes of a trial
    episodes_per_trial: int  # episodes of one sampled world it is evaluated on (1 without memory)

    def reset_trials(self, n: int) -> None: ...
    def act_batch(self, observations: Sequence[Any]) -> np.ndarray: ...
    def observe_batch(self, rewards: Sequence[float], terminated: Sequence[bool],
                      truncated: Sequence[bool]) -> None: ...
    def goal_estimates(self) -> np.ndarray | None: ...


class StatelessPolicy:
    """Base of batch policies without memory: trials and rewards change nothing, no goal is perceived."""

    recurrent = False
    episodes_per_trial = 1

    def reset_trials(self, n: int) -> None:
        return None

    def observe_batch(self, rewards: Sequence[float], terminated: Sequence[bool],
                      truncated: Sequence[bool]) -> None:
        return None

    def goal_estimates(self) -> np.ndarray | None:
        return None


def stack_observations(observations: Sequence[Any]) -> Any:
    """A batch of observations: dicts of arrays stacked key by key, arrays stacked."""
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack([np.asarray(o) for o in observations])


class Sb3Policy(StatelessPolicy):
    """A stable-baselines3 model's deterministic actor (the mean action of its Gaussian, or the argmax);
    ``normalize`` maps a batch of observations to what the model was trained on (``normalize.obs`` statistics)."""

    def __init__(self, model: Any, normalize: Callable[[Any], Any] | None = None) -> None:
        self.model, self.normalize = model, normalize

    def act_batch(self, observations: Sequence[Any]) -> np.ndarray:
        batch = stack_observations(observations)
        actions, _ = self.model.predict(batch if self.normalize is None else self.normalize(batch),
                                        deterministic=True)
        return np.asarray(actions)


class RecurrentPolicy:
    """An RL² policy: one :class:`policies.runner.PolicyRunner` per slot (``make_runner`` builds one), which owns
    the slot's hidden state and its previous action, reward and done inputs. ``episodes_per_trial`` is the trial
    length it was trained on (what evaluation plays)."""

    recurrent = True

    def __init__(self, make_runner: Callable[[], Any], episodes_per_trial: int) -> None:
        self.make_runner, self.episodes_per_trial = make_runner, int(episodes_per_trial)
        self.runners: list[Any] = [make_runner()]
        self._active = 1

    def reset_trials(self, n: int) -> None:
        while len(self.runners) < n:
            self.runners.append(self.make_runner())
        self._active = n
        for runner in self.runners[:n]:
            runner.reset_trial()

    def act_batch(self, observations: Sequence[Any]) -> np.ndarray:
        if len(observations) != self._active:
            raise ValueError(f"act_batch: {len(observations)} observations for {self._active} slots")
        return np.stack([np.asarray(runner.act(obs)) for runner, obs in zip(self.runners, observations)])

    def observe_batch(self, rewards: Sequence[float], terminated: Sequence[bool],
                      truncated: Sequence[bool]) -> None:
        for runner, reward, term, trunc in zip(self.runners, rewards, terminated, truncated):
            runner.observe(float(reward), bool(term or trunc))

    def goal_estimates(self) -> np.ndarray | None:
        return None


class OneEnv:
    """The single-environment :class:`Policy` form of a :class:`BatchPolicy`; sums the rewards it is told per
    episode (``returns``, reset with the trial)."""

    def __init__(self, batch: BatchPolicy) -> None:
        self.batch = batch
        self.returns: list[float] = []
        self._total = 0.0

    @property
    def recurrent(self) -> bool:
        return self.batch.recurrent

    def reset_trial(self) -> None:
        self.returns, self._total = [], 0.0
        self.batch.reset_trials(1)

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.batch.act_batch([obs])[0], dtype=float)

    def observe(self, reward: float, terminated: bool, truncated: bool) -> None:
        self._total += float(reward)
        if terminated or truncated:
            self.returns.append(self._total)
            self._total = 0.0
        self.batch.observe_batch([reward], [terminated], [truncated])

    def goal_estimate(self) -> np.ndarray | None:
        estimates = self.batch.goal_estimates()
        return None if estimates is None else np.asarray(estimates[0], dtype=float)
