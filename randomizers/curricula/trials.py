"""Curricula for trial-based trainers (RL², ``policies.ppo.train_rl2``): one :class:`Task` per *trial*.

A trial's values are pinned one trial ahead (trial vec envs reset a finished trial inside ``step``); the
``TrialWrapper`` resamples only at trial starts, so every inner episode of a trial runs with the same values.
The trainer calls::

    curriculum = TrialCurriculum(teacher, setter_for(vec_env), history=CurriculumHistory(run_dir))
    obs = curriculum.start(lambda: vec_env.reset(seed=seed), timesteps=steps_done)  # instead of vec_env.reset
    curriculum.training_flags()                                   # before each step: train on env i's trial?
    curriculum.trial_finished(i, trial_return, trace=trace)       # for every env i whose trial ended
    curriculum.end_iteration(steps_done)                          # after each rollout: history records
    checkpoint["curriculum"] = curriculum.state_dict()            # and load_state_dict() on resume

PLR and robust PLR score a level (one trial's sampled world) by the value loss of that trial: ``trace`` carries the
trial's training rewards and the critic's values, and :func:`~randomizers.curricula.plr.episode_signals` turns them
into GAE statistics over the whole trial (bootstrapping only at the trial's end, as the RL² trainer's own GAE does).
The history file is the one the SB3 callback writes (:class:`~randomizers.curricula.store.CurriculumHistory`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from randomizers.curricula.base import Task, Teacher
from randomizers.curricula.plr import episode_signals
from randomizers.curricula.store import CurriculumHistory

Setter = Callable[[int, Mapping[str, Any]], None]
T = TypeVar("T")


def setter_for(vec_env: Any) -> Setter:
    """Pin values in env ``i`` of a trial vec env through its ``env_method`` (``SyncTrialVecEnv``, the worker
    processes of ``SubprocTrialVecEnv``) or its SB3 ``venv``'s."""
    target = vec_env if hasattr(vec_env, "env_method") else getattr(vec_env, "venv", None)
    if not hasattr(target, "env_method"):
        raise TypeError(f"cannot reach the envs of {type(vec_env).__name__}: expected env_method or an SB3 'venv'")
    return lambda i, values: target.env_method("set_randomization_values", dict(values), indices=[i])


class TrialCurriculum:
    """Drives ``teacher`` over ``num_envs`` trial envs through ``setter(env_index, values)``; with ``history`` it
    writes the run's ``curriculum_history.jsonl``."""

    def __init__(self, teacher: Teacher, setter: Setter, history: CurriculumHistory | None = None) -> None:
        self.teacher, self.setter, self.history = teacher, setter, history
        self.current: list[Task] = []
        self.pending: list[Task] = []
        self.trials = 0
        self.restored = False

    @property
    def needs_value_signals(self) -> bool:
        """True when the teacher scores trials by the value loss (PLR): the trainer then sends trial traces."""
        return self.teacher.needs_value_signals

    def _pin(self, i: int) -> Task:
        task = self.teacher.sample(i)
        self.setter(i, task)
        return task

    def start(self, reset: Callable[[], T], num_envs: int | None = None, timesteps: int = 0) -> T:
        """Pin every env's first trial, call ``reset()`` (the vec env reset), pin the next trials; returns obs.

        ``timesteps``: env steps already done (the history's ``start`` record, or ``resume`` after
        :meth:`load_state_dict`)."""
        n = num_envs if num_envs is not None else len(self.current) or _num_envs(reset)
        if self.history is not None:
            self.history.begin(self.teacher, timesteps, resumed=self.restored)
        self.current = [self._pin(i) for i in range(n)]
        obs = reset()
        self.pending = [self._pin(i) for i in range(n)]
        return obs

    def trial_finished(self, env_index: int, trial_return: float, success: bool | None = None,
                       signals: Mapping[str, float] | None = None, trace: Any = None) -> None:
        """Report env ``env_index``'s finished trial (sum of raw rewards); its next trial is already running.

        ``trace`` (``policies.ppo.TrialTrace``: rewards, values, last_value, gamma, gae_lambda) gives the value
        signals when ``signals`` is not given."""
        if signals is None and trace is not None:
            signals = episode_signals(trace.rewards, trace.values, trace.last_value, trace.gamma, trace.gae_lambda)
        self.teacher.update(self.current[env_index], trial_return, success, signals)
        self.trials += 1
        self.current[env_index] = self.pending[env_index]
        self.pending[env_index] = self._pin(env_index)

    def training_flags(self) -> list[bool]:
        """Per env: may the running trial be trained on (False for robust PLR's new levels, which are only scored)."""
        return [task.train for task in self.current]

    def end_iteration(self, timesteps: int) -> None:
        """Append the range changes since the last call to the history, stamped ``timesteps`` (env steps)."""
        events = self.teacher.pop_events()
        if self.history is not None:
            self.history.record(events, timesteps)

    def metrics(self, prefix: str = "curriculum/") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in self.teacher.metrics().items()}

    def state_dict(self) -> dict[str, Any]:
        return self.teacher.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.teacher.load_state_dict(state)
        self.restored = True


def _num_envs(reset: Callable[..., Any]) -> int:
    owner = getattr(reset, "__self__", None)
    if owner is None or not hasattr(owner, "num_envs"):
        raise ValueError("TrialCurriculum.start: pass num_envs (reset is not a bound vec-env method)")
    return int(owner.num_envs)
