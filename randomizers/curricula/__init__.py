"""Automatic environment curricula over the randomization ParamSpace: uniform, schedule, ADR, ALP-GMM, PLR.

Every teacher follows :class:`Teacher`: ``sample(env_index) -> Task`` (values to pin for one episode),
``update(task, episode_return, success)``, ``state_dict()`` / ``load_state_dict()``, ``metrics()``.
Integration: :mod:`randomizers.curricula.sb3` (stable-baselines3 callback), :mod:`randomizers.curricula.trials`
(RL² trials), :func:`build_teacher` (launch files).
"""
from randomizers.curricula.adr import ADRTeacher
from randomizers.curricula.alp_gmm import ALPGMMTeacher
from randomizers.curricula.base import Task, Teacher
from randomizers.curricula.build import TEACHERS, build_teacher
from randomizers.curricula.plr import PLRTeacher, episode_signals
from randomizers.curricula.uniform import ScheduleTeacher, UniformTeacher

__all__ = ["ADRTeacher", "ALPGMMTeacher", "PLRTeacher", "ScheduleTeacher", "TEACHERS", "Task", "Teacher",
           "UniformTeacher", "build_teacher", "episode_signals"]
