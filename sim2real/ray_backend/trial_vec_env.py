"""RL² trial environments in Ray actors: :class:`~policies.subproc.SubprocTrialVecEnv` with actors for workers.

The trainer, hidden states and curriculum stay in the learner; each actor steps its block of trial-wrapped envs
(:class:`~sim2real.ray_backend.actors.TrialEnvBlock`) and answers with numpy arrays, which the inherited
``reset``/``step`` join. With 2+ actors whose blocks lie inside the two env halves, the halves are *stages* that
step on their own (``step_async``/``step_wait``), so the RL² trainer computes one half's actions while the other
half's actors step, as with local workers. Env ``i`` is seeded ``seed + i`` whatever the split, as with the local
workers. A lost actor is restarted (values pinned by a curriculum applied again); its envs report that step as a
truncated trial whose last observation is the one the learner saw last.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

from policies.subproc import START_TIMEOUT_S, STEP_TIMEOUT_S, SubprocTrialVecEnv, pipeline_blocks
from policies.vec import TrialStep, _to_numpy_actions
from sim2real.ray_backend.actors import ActorPool, PooledEnv, TrialEnvBlock
from sim2real.ray_backend.cluster import RayConnection
from sim2real.ray_backend.vec_env import PINNED_METHODS, RESTART_SEED_STRIDE


class RayTrialVecEnv(PooledEnv, SubprocTrialVecEnv):
    """N trial envs in ``num_actors`` Ray actors; the :class:`~policies.vec.TrialVecEnv` interface."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], num_actors: int, cpus_per_actor: float = 1.0,
                 connection: RayConnection | None = None, timeout_s: float = STEP_TIMEOUT_S,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.num_envs = len(env_fns)
        self.pool = ActorPool(TrialEnvBlock, env_fns, num_actors, cpus_per_actor, timeout_s, start_timeout_s,
                              connection)
        self.blocks = self.pool.blocks
        self.pinned: dict[tuple[int, str], tuple] = {}
        self.last: list[dict[str, np.ndarray] | None] = [None] * len(self.blocks)
        self.first_seed = 0
        self.in_flight: dict[int, Any] = {}  # actor -> object ref of a step sent by step_async
        halves = pipeline_blocks(self.num_envs) if len(self.blocks) >= 2 else []
        if halves and all(any(b.start in h and b.stop - 1 in h for h in halves) for b in self.blocks):
            self.stages: list[range] = halves
            self.stage_actors = [[w for w, b in enumerate(self.blocks) if b.start in h] for h in halves]
        self.observation_space, self.action_space = self.pool.call("spaces", [()], [0])[0]

    def _restarted_reset(self, w: int) -> dict[str, np.ndarray]:
        block = self.blocks[w]
        for (i, name), args in sorted(self.pinned.items()):
            if i in block:
                self.pool.call("env_method", [(name, args, [i - block.start])], [w], retry=False)
        seed = self.first_seed + RESTART_SEED_STRIDE * self.pool.restarts[w]
        return self.pool.call("reset", [(seed,)], [w], retry=False)[0]

    def _lost_step(self, w: int) -> dict[str, Any]:
        """A lost actor's step: every trial of its block truncated (last observation: the one seen last)."""
        obs = self._restarted_reset(w)
        n = len(self.blocks[w])
        zeros, ones = np.zeros(n, np.float32), np.ones(n, np.float32)
        return {"obs": obs, "reward": zeros, "episode_done": ones, "trial_terminated": zeros,
                "trial_truncated": ones, "final_obs": self.last[w] or obs, "episode_success": None}

    def _all(self, command: str, data: Sequence[Any]) -> list[Any]:
        """``reset``/``step`` on every actor at once (what the inherited methods call)."""
        if command == "reset" and data[0] is not None:
            self.first_seed = int(data[0])
        self.in_flight.clear()  # a step sent by step_async and never waited for is dropped (the actor ran it)
        lost = self._lost_step if command == "step" else self._restarted_reset
        parts = self.pool.collect(command, self.pool.submit(command, [(item,) for item in data]), on_lost=lost)
        self.last = [p["obs"] if command == "step" else p for p in parts]
        return parts

    def step_async(self, stage: int, action: Any) -> None:
        """Send the actions (rows = the envs of ``self.stages[stage]``) to that stage's actors; returns at once."""
        actions = _to_numpy_actions(action, self.action_space)
        first = self.stages[stage].start
        workers = self.stage_actors[stage]
        refs = self.pool.submit("step", [(actions[self.blocks[w].start - first:self.blocks[w].stop - first],)
                                         for w in workers], workers)
        self.in_flight.update(zip(workers, refs))

    def step_wait(self, stage: int) -> TrialStep:
        """The step of ``self.stages[stage]``'s envs sent by :meth:`step_async` (rows in env order); a lost actor's
        envs report a truncated trial, as in :meth:`step`."""
        workers = self.stage_actors[stage]
        parts = self.pool.collect("step", [self.in_flight.pop(w) for w in workers], workers, on_lost=self._lost_step)
        for w, part in zip(workers, parts):
            self.last[w] = part["obs"]
        return self._join(parts, [self.blocks[w] for w in workers])

    def env_method(self, name: str, *args: Any, indices: Sequence[int] | None = None) -> list[Any]:
        """Call ``env.get_wrapper_attr(name)(*args)`` in the envs ``indices`` (default all); results in that order
        (an actor runs it after any step in flight: Ray runs an actor's calls in order)."""
        wanted = list(range(self.num_envs)) if indices is None else [int(i) for i in indices]
        groups = [(w, [i for i in wanted if i in b]) for w, b in enumerate(self.blocks)]
        groups = [(w, mine) for w, mine in groups if mine]
        answers = self.pool.call("env_method", [(name, args, [i - self.blocks[w].start for i in mine])
                                                for w, mine in groups], [w for w, _ in groups])
        out: dict[int, Any] = {}
        for (_, mine), values in zip(groups, answers):
            out.update(zip(mine, values))
        if name in PINNED_METHODS:
            for i in wanted:
                self.pinned[(i, name)] = args
        return [out[i] for i in wanted]


def ray_trial_vec_env(config: dict[str, Any], episodes_per_trial: int) -> RayTrialVecEnv:
    """The launch file's RL² envs (each in a ``TrialWrapper`` of ``episodes_per_trial`` episodes) in Ray actors."""
    from policies.trial import TrialWrapper
    from sim2real.env_factory import make_env_fn
    from sim2real.ray_backend.cluster import connect

    settings = config["ray"]
    connection = connect(settings["address"], settings["num_actors"] * settings["cpus_per_actor"])
    try:
        fns = [_in_trials(make_env_fn(config, rank), TrialWrapper, episodes_per_trial)
               for rank in range(config["n_envs"])]
        vec = RayTrialVecEnv(fns, settings["num_actors"], settings["cpus_per_actor"], connection)
    except BaseException:
        connection.release()
        raise
    print(f"ray: {config['n_envs']} trial envs in {settings['num_actors']} actors on "
          f"{', '.join(sorted(set(vec.pool.nodes())))}", flush=True)
    return vec


def _in_trials(fn: Callable[[], gym.Env], wrapper: type, episodes: int) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        return wrapper(fn(), episodes)
    return make
