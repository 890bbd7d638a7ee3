"""A stable-baselines3 ``VecEnv`` whose environments live in Ray actors (several per actor).

Semantics are SB3's ``SubprocVecEnv``'s: seeds and options set with ``seed``/``set_options`` are used by the next
``reset`` only; a finished env is reset inside ``step`` and its last observation is in
``info["terminal_observation"]`` (``info["TimeLimit.truncated"]`` when the time limit ended it); ``env_method``,
``get_attr``, ``set_attr`` reach the gymnasium wrappers with ``get_wrapper_attr`` semantics.

When an actor is lost (process killed, node gone, no answer in time) it is restarted (:class:`ActorPool`), the
values a curriculum pinned in its envs (``set_randomization_values``) and attributes set with ``set_attr`` are
applied again, and its envs report that step as a truncated end (reward 0, ``terminal_observation`` the last one
seen, ``info["actor_restarted"] = True``), so the learner goes on with fresh episodes.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from policies.subproc import START_TIMEOUT_S, STEP_TIMEOUT_S
from sim2real.ray_backend.actors import ActorPool, PooledEnv, Sb3EnvBlock, concat, index
from sim2real.ray_backend.cluster import RayConnection

PINNED_METHODS = ("set_randomization_values",)
"""``env_method`` calls whose latest arguments are applied again to a restarted actor's envs."""
RESTART_SEED_STRIDE = 1_000_003
"""A restarted env ``i`` is reset with seed ``first_seed + i + stride * restarts`` (fresh, reproducible draws)."""


class RayVecEnv(PooledEnv, VecEnv):
    """``len(env_fns)`` envs in ``num_actors`` Ray actors (contiguous blocks).

    Args:
        env_fns: picklable factories of gymnasium envs.
        num_actors: Ray actors (1..len(env_fns)).
        cpus_per_actor: CPUs each actor reserves in the cluster.
        connection: the Ray connection to release on :meth:`close` (None: leave Ray as it is).
        timeout_s / start_timeout_s: limits (s) for one call / for an actor to start.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], num_actors: int, cpus_per_actor: float = 1.0,
                 connection: RayConnection | None = None, timeout_s: float = STEP_TIMEOUT_S,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.pool = ActorPool(Sb3EnvBlock, env_fns, num_actors, cpus_per_actor, timeout_s, start_timeout_s,
                              connection)
        self.blocks = self.pool.blocks
        observation_space, action_space = self.pool.call("spaces", [()], [0])[0]
        super().__init__(len(env_fns), observation_space, action_space)
        self.pinned: dict[tuple[int, str, str], tuple] = {}
        self.last_obs: Any = None
        self.first_seed = 0
        self.pending: list[Any] | None = None

    # -- restarts ---------------------------------------------------------------------------------------------
    def _reapply(self, w: int) -> None:
        """Apply the pinned values and attributes of actor ``w``'s envs to its new actor."""
        block = self.blocks[w]
        for (i, kind, name), data in sorted(self.pinned.items()):
            if i in block:
                self.pool.call("call", [(kind, data, [i - block.start])], [w], retry=False)

    def _restarted_reset(self, w: int) -> tuple[Any, list[dict]]:
        block = self.blocks[w]
        self._reapply(w)
        stride = RESTART_SEED_STRIDE * self.pool.restarts[w]
        seeds = [self.first_seed + i + stride for i in block]
        return self.pool.call("reset", [(seeds, [{}] * len(block))], [w], retry=False)[0]

    def _lost_step(self, w: int) -> tuple[Any, np.ndarray, np.ndarray, list[dict], list[dict]]:
        """What a lost actor's envs report for the step: a truncated end, then their new first observation."""
        obs, reset_infos = self._restarted_reset(w)
        block = self.blocks[w]
        infos = [{"TimeLimit.truncated": True, "actor_restarted": True,
                  "terminal_observation": index(self.last_obs, i) if self.last_obs is not None else index(obs, k)}
                 for k, i in enumerate(block)]
        return obs, np.zeros(len(block)), np.ones(len(block), dtype=bool), infos, reset_infos

    # -- VecEnv -----------------------------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        if self._seeds[0] is not None:
            self.first_seed = int(self._seeds[0])
        args = [([self._seeds[i] for i in b], [self._options[i] for i in b]) for b in self.blocks]
        parts = self.pool.collect("reset", self.pool.submit("reset", args), on_lost=self._restarted_reset)
        self.reset_infos = [info for _, infos in parts for info in infos]
        self._reset_seeds()
        self._reset_options()
        self.last_obs = concat([obs for obs, _ in parts])
        return self.last_obs

    def step_async(self, actions: np.ndarray) -> None:
        self.pending = self.pool.submit("step", [(actions[b.start:b.stop],) for b in self.blocks])

    def step_wait(self) -> VecEnvStepReturn:
        refs, self.pending = self.pending, None
        parts = self.pool.collect("step", refs or [], on_lost=self._lost_step)
        obs = concat([p[0] for p in parts])
        infos = [info for p in parts for info in p[3]]
        self.reset_infos = [info for p in parts for info in p[4]]
        self.last_obs = obs
        return obs, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]), infos

    def _by_actor(self, indices: VecEnvIndices) -> list[tuple[int, list[int], list[int]]]:
        """(actor, env indices, indices within its block) for the requested envs, in actor order."""
        wanted = list(self._get_indices(indices))
        groups = []
        for w, block in enumerate(self.blocks):
            mine = [i for i in wanted if i in block]
            if mine:
                groups.append((w, mine, [i - block.start for i in mine]))
        return groups

    def _command(self, command: str, data: Any, indices: VecEnvIndices) -> list[Any]:
        """Run ``command`` in the envs ``indices``; the results in the order of ``indices``."""
        groups = self._by_actor(indices)
        answers = self.pool.call("call", [(command, data, local) for _, _, local in groups], [w for w, _, _ in groups])
        out: dict[int, Any] = {}
        for (_, mine, _), values in zip(groups, answers):
            out.update(zip(mine, values))
        return [out[i] for i in self._get_indices(indices)]

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        data = (method_name, method_args, method_kwargs)
        result = self._command("env_method", data, indices)
        if method_name in PINNED_METHODS:
            for i in self._get_indices(indices):
                self.pinned[(i, "env_method", method_name)] = data
        return result

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._command("get_attr", attr_name, indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._command("set_attr", (attr_name, value), indices)
        for i in self._get_indices(indices):
            self.pinned[(i, "set_attr", attr_name)] = (attr_name, value)

    def has_attr(self, attr_name: str) -> bool:
        return all(self._command("has_attr", attr_name, None))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._command("is_wrapped", wrapper_class, indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self._command("render", None, None)


def ray_vec_env(config: dict[str, Any], seed_offset: int = 0) -> RayVecEnv:
    """The launch file's training envs in Ray actors (``ray.num_actors`` x ``ray.envs_per_actor``), seeded as the
    local backend seeds them (env ``i``: ``seed + seed_offset + i``)."""
    from sim2real.env_factory import make_env_fn
    from sim2real.ray_backend.cluster import connect

    settings = config["ray"]
    connection = connect(settings["address"], settings["num_actors"] * settings["cpus_per_actor"])
    try:
        fns = [make_env_fn(config, rank, seed_offset) for rank in range(config["n_envs"])]
        vec = RayVecEnv(fns, settings["num_actors"], settings["cpus_per_actor"], connection)
    except BaseException:
        connection.release()
        raise
    vec.seed(config["seed"] + seed_offset)
    print(f"ray: {config['n_envs']} envs in {settings['num_actors']} actors on "
          f"{', '.join(sorted(set(vec.pool.nodes())))}", flush=True)
    return vec
