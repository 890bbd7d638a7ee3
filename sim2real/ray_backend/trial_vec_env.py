"""RL² trial environments in Ray actors: :class:`~policies.subproc.SubprocTrialVecEnv` with actors for workers.

The trainer, hidden states and curriculum stay in the learner; each actor steps its block of trial-wrapped envs
(:class:`~sim2real.ray_backend.actors.TrialEnvBlock`) and answers with numpy arrays, which the inherited
``reset``/``step`` join. Env ``i`` is seeded ``seed + i`` whatever the split, as with the local workers. A lost
actor is restarted (values pinned by a curriculum applied again); its envs report that step as a truncated trial
whose last observation is the one the learner saw last.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

from policies.subproc import START_TIMEOUT_S, STEP_TIMEOUT_S, SubprocTrialVecEnv
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
        lost = self._lost_step if command == "step" else self._restarted_reset
        parts = self.pool.collect(command, self.pool.submit(command, [(item,) for item in data]), on_lost=lost)
        self.last = [p["obs"] if command == "step" else p for p in parts]
        return parts

    def env_method(self, name: str, *args: Any, indices: Sequence[int] | None = None) -> list[Any]:
        """Call ``env.get_wrapper_attr(name)(*args)`` in the envs ``indices`` (default all); results in that order."""
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
