"""Curricula for trial-based trainers (RL², ``policies.ppo.train_rl2``): one :class:`Task` per *trial*.

A trial's values are pinned one trial ahead (trial vec envs reset a finished trial inside ``step``); the
``TrialWrapper`` resamples only at trial starts, so every inner episode of a trial runs with the same values.
The trainer calls three things::

    curriculum = TrialCurriculum(teacher, setter_for(vec_env))
    obs = curriculum.start(lambda: vec_env.reset(seed=seed))      # instead of vec_env.reset(seed=seed)
    curriculum.trial_finished(i, trial_return, success=None)      # for every env i whose trial ended
    checkpoint["curriculum"] = curriculum.state_dict()            # and load_state_dict() on resume
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from randomizers.curricula.base import Task, Teacher

Setter = Callable[[int, Mapping[str, Any]], None]
T = TypeVar("T")


def setter_for(vec_env: Any) -> Setter:
    """Pin values in env ``i`` of a trial vec env: in-process ``envs`` (SyncTrialVecEnv) or an SB3 ``venv``."""
    if hasattr(vec_env, "envs"):
        return lambda i, values: vec_env.envs[i].get_wrapper_attr("set_randomization_values")(dict(values))
    if hasattr(vec_env, "venv"):
        return lambda i, values: vec_env.venv.env_method("set_randomization_values", dict(values), indices=[i])
    raise TypeError(f"cannot reach the envs of {type(vec_env).__name__}: expected an 'envs' list or an SB3 'venv'")


class TrialCurriculum:
    """Drives ``teacher`` over ``num_envs`` trial envs through ``setter(env_index, values)``."""

    def __init__(self, teacher: Teacher, setter: Setter) -> None:
        self.teacher, self.setter = teacher, setter
        self.current: list[Task] = []
        self.pending: list[Task] = []
        self.trials = 0

    def _pin(self, i: int) -> Task:
        task = self.teacher.sample(i)
        self.setter(i, task)
        return task

    def start(self, reset: Callable[[], T], num_envs: int | None = None) -> T:
        """Pin every env's first trial, call ``reset()`` (the vec env reset), pin the next trials; returns obs."""
        n = num_envs if num_envs is not None else len(self.current) or _num_envs(reset)
        self.current = [self._pin(i) for i in range(n)]
        obs = reset()
        self.pending = [self._pin(i) for i in range(n)]
        return obs

    def trial_finished(self, env_index: int, trial_return: float, success: bool | None = None,
                       signals: Mapping[str, float] | None = None) -> None:
        """Report env ``env_index``'s finished trial (sum of raw rewards); its next trial is already running."""
        self.teacher.update(self.current[env_index], trial_return, success, signals)
        self.trials += 1
        self.current[env_index] = self.pending[env_index]
        self.pending[env_index] = self._pin(env_index)

    def metrics(self, prefix: str = "curriculum/") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in self.teacher.metrics().items()}

    def state_dict(self) -> dict[str, Any]:
        return self.teacher.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.teacher.load_state_dict(state)


def _num_envs(reset: Callable[..., Any]) -> int:
    owner = getattr(reset, "__self__", None)
    if owner is None or not hasattr(owner, "num_envs"):
        raise ValueError("TrialCurriculum.start: pass num_envs (reset is not a bound vec-env method)")
    return int(owner.num_envs)
