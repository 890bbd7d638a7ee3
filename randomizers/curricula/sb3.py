"""stable-baselines3 integration: :class:`CurriculumCallback` drives a teacher over a (Subproc)VecEnv.

Per env, values are pinned one episode ahead with ``env_method("set_randomization_values", task, indices=[i])``
(SB3 resets a finished env inside ``step``, so the values pinned *before* an episode ends are the next episode's).
Results are read from the callback's ``dones``/``infos``/``rewards``: one IPC call per finished episode, none per
step. At training start the envs are reset once so that every episode runs with teacher-chosen values.

Episodes a teacher marks ``train=False`` (ADR boundary evaluations with ``exclude_boundary``, robust PLR's new
levels) are kept out of training: for PPO the rollout buffer yields only the kept transitions; for off-policy
algorithms with a ``HerReplayBuffer`` the finished episode's transitions get episode length 0, which the buffer
treats as "never sample" (they are not used as future goals either: those come from the same episode).

Checkpoints: call :meth:`CurriculumCallback.save` with the checkpoint directory (writes ``curriculum.json``); on a
resumed run (``num_timesteps > 0``) the callback restores the teacher from ``RUN_DIR/checkpoints/LATEST`` itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from randomizers.curricula.base import Task, Teacher
from randomizers.curricula.plr import episode_signals
from randomizers.curricula.store import CurriculumHistory, latest_checkpoint_dir, load_state, save_state
from randomizers.params import ParamSpace


def _may_exclude(teacher: Teacher) -> bool:
    return bool(getattr(teacher, "exclude_boundary", False) or getattr(teacher, "robust", False))


class CurriculumCallback(BaseCallback):
    """Curriculum over a VecEnv whose envs carry randomization wrappers.

    Args:
        teacher: the curriculum (its space's names must exist in the envs' randomizers).
        run_dir: where ``curriculum_history.jsonl`` goes and checkpoints are looked up on resume (None: no files).
        log_prefix: TensorBoard tag prefix.
    """

    def __init__(self, teacher: Teacher, run_dir: str | None = None, log_prefix: str = "curriculum",
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        self.teacher, self.run_dir, self.prefix = teacher, run_dir, log_prefix
        self.current: list[Task] = []
        self.pending: list[Task] = []
        self.excluded_steps = 0
        self.history = None if run_dir is None else CurriculumHistory(run_dir)

    # -- files ----------------------------------------------------------------------------------------------
    @property
    def history_path(self) -> str | None:
        return None if self.history is None else self.history.path

    def save(self, directory: str) -> str:
        """Write the teacher's state into a checkpoint directory (``curriculum.json``)."""
        return save_state(self.teacher, directory, self.num_timesteps)

    def _restore_or_start(self) -> None:
        """Fresh teacher on a resumed model: restore from the latest checkpoint; fresh run: write the start record."""
        if self.history is None or self.teacher.episodes > 0:  # no files, or learn() called again in-process
            return
        checkpoint = latest_checkpoint_dir(self.run_dir) if self.num_timesteps > 0 else None  # type: ignore[arg-type]
        saved = load_state(self.teacher, checkpoint) if checkpoint else None
        self.history.begin(self.teacher, self.num_timesteps if saved is None else saved, resumed=saved is not None)

    # -- SB3 hooks ------------------------------------------------------------------------------------------
    def check(self, model: Any, env: Any) -> None:
        """Raise ValueError (one line naming the problem) if this teacher cannot drive ``model`` on ``env``."""
        on_policy = isinstance(model, OnPolicyAlgorithm)
        if _may_exclude(self.teacher) and not on_policy and not isinstance(getattr(model, "replay_buffer", None),
                                                                          HerReplayBuffer):
            raise ValueError(f"curriculum {self.teacher.name}: excluding evaluation episodes from training needs ppo "
                             f"or an off-policy algorithm with her: true; set exclude_boundary: false / use plr")
        if self.teacher.needs_value_signals and not on_policy:
            raise ValueError(f"curriculum {self.teacher.name}: value-loss scores need an on-policy algorithm (ppo); "
                             f"use score: success")
        known = ParamSpace.from_dict(env.env_method("get_randomization_space", indices=[0])[0]).names
        missing = [name for name in self.teacher.space.names if name not in known]
        if missing:
            raise ValueError(f"curriculum param {missing[0]!r} is not randomized by the env's wrappers "
                             f"(they randomize: {', '.join(known) or 'nothing'})")

    def _on_training_start(self) -> None:
        env = self.training_env
        n = env.num_envs
        on_policy = isinstance(self.model, OnPolicyAlgorithm)
        self.check(self.model, env)
        self._restore_or_start()
        self.returns = np.zeros(n)
        self.track_values = on_policy and self.teacher.needs_value_signals
        self.ep_rewards: list[list[float]] = [[] for _ in range(n)]
        self.ep_values: list[list[float]] = [[] for _ in range(n)]
        self.keep = np.ones((getattr(self.model, "n_steps", 1), n), dtype=bool)
        replay = getattr(self.model, "replay_buffer", None)
        self.replay = replay if isinstance(replay, HerReplayBuffer) and _may_exclude(self.teacher) else None
        self.slots: list[list[int]] = [[] for _ in range(n)]  # replay positions of each env's current episode
        self.to_hide: list[tuple[int, list[int]]] = []  # finished excluded episodes, hidden once stored
        self.current = [self._pin(i) for i in range(n)]
        obs = env.reset()  # the first episodes run with the pinned values too
        self.model._last_obs = obs  # type: ignore[attr-defined]
        if hasattr(self.model, "_last_episode_starts"):
            self.model._last_episode_starts = np.ones((n,), dtype=bool)  # type: ignore[attr-defined]
        self.pending = [self._pin(i) for i in range(n)]

    def _pin(self, i: int) -> Task:
        task = self.teacher.sample(i)
        self.training_env.env_method("set_randomization_values", dict(task), indices=[i])
        return task

    def _on_rollout_start(self) -> None:
        buffer = getattr(self.model, "rollout_buffer", None)
        if buffer is not None and "get" in vars(buffer):
            del buffer.get  # drop the filter installed for the previous rollout
        self.keep[:] = True

    def _on_step(self) -> bool:
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        if self.keep.shape[0] > 1 and "n_steps" in self.locals:
            t = int(self.locals["n_steps"])
            self.keep[t] = [task.train for task in self.current]
        if self.replay is not None:
            self._hide_stored()
            for i, task in enumerate(self.current):  # SB3 stores this step's transition at ``pos`` after us
                if not task.train:
                    self.slots[i].append(int(self.replay.pos))
        self.returns += rewards
        if self.track_values:
            values = self.locals["values"].detach().cpu().numpy().reshape(-1)
            for i in range(len(rewards)):
                self.ep_rewards[i].append(float(rewards[i]))
                self.ep_values[i].append(float(values[i]))
        for i in np.flatnonzero(dones):
            info = infos[i]
            signals = self._signals(i, info) if self.track_values else None
            success = info.get("is_success")
            self.teacher.update(self.current[i], float(self.returns[i]),
                                None if success is None else bool(success), signals=signals)
            self.returns[i] = 0.0
            if self.replay is not None and self.slots[i]:
                self.to_hide.append((i, self.slots[i]))
                self.slots[i] = []
            self.current[i] = self.pending[i]
            self.pending[i] = self._pin(i)
        events = self.teacher.pop_events()
        if self.history is not None:
            self.history.record(events, self.num_timesteps)
        return True

    def _signals(self, i: int, info: dict[str, Any]) -> dict[str, float]:
        last = 0.0
        if info.get("TimeLimit.truncated", False) and info.get("terminal_observation") is not None:
            import torch

            obs = self.model.policy.obs_to_tensor(info["terminal_observation"])[0]
            with torch.no_grad():
                last = float(self.model.policy.predict_values(obs)[0])
        out = episode_signals(self.ep_rewards[i], self.ep_values[i], last, self.model.gamma,
                              getattr(self.model, "gae_lambda", 1.0))
        self.ep_rewards[i], self.ep_values[i] = [], []
        return out

    def _hide_stored(self) -> None:
        """Give finished excluded episodes (stored by now) episode length 0: HerReplayBuffer never samples them."""
        for i, slots in self.to_hide:
            self.replay.ep_length[slots, i] = 0  # type: ignore[union-attr]
            self.excluded_steps += len(slots)
        if self.to_hide:
            self.logger.record(f"{self.prefix}/excluded_steps", self.excluded_steps)
        self.to_hide = []

    def _on_rollout_end(self) -> None:
        if self.replay is not None:
            self._hide_stored()  # before the gradient steps that follow this collection
        for key, value in self.teacher.metrics().items():
            if np.isfinite(value):  # entropy is -inf while every range is still a point
                self.logger.record(f"{self.prefix}/{key}", value)
        buffer = getattr(self.model, "rollout_buffer", None)
        if buffer is None or self.keep.all():
            return
        keep_flat = self.keep.T.reshape(-1)  # SB3 flattens (T, N) env-major: index = env * T + t
        if not keep_flat.any():
            return  # nothing left to train on: keep the rollout rather than skip the update
        self.excluded_steps += int((~keep_flat).sum())
        self.logger.record(f"{self.prefix}/excluded_steps", self.excluded_steps)
        buffer.get = _filtered_get(buffer, keep_flat)


def _filtered_get(buffer: Any, keep_flat: np.ndarray):
    """A ``RolloutBuffer.get`` that yields minibatches of the kept transitions only."""
    original = type(buffer).get.__get__(buffer)

    def get(batch_size: int | None = None):
        if not buffer.generator_ready:
            next(original(None))  # SB3's own flattening of every array; the full batch it yields is dropped
        indices = np.random.permutation(np.flatnonzero(keep_flat))
        size = batch_size or len(indices)
        for start in range(0, len(indices), size):
            yield buffer._get_samples(indices[start:start + size])

    return get
