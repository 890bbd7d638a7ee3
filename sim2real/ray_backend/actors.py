"""Blocks of environments inside Ray actors, and the pool that starts, calls and restarts those actors.

An actor holds a contiguous block of environments (several per actor, so one remote call steps all of them and
returns their observations as one batch). The pool waits on every call with a limit; an actor that died (its
process or node gone) or did not answer in time is replaced by a new one built from the same factories, and the
caller is told which block was lost so it can report those episodes as cut short. An exception raised *inside* an
environment is a bug and is raised in the learner as :class:`~policies.subproc.EnvWorkerException`.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from policies.subproc import START_TIMEOUT_S, STEP_TIMEOUT_S, EnvWorkerError, EnvWorkerException, split

MAX_RESTARTS_PER_ACTOR = 5
"""An actor that has to be replaced more often than this ends the run (its envs crash it: a bug, not bad luck)."""


def _where() -> tuple[str, int]:
    from sim2real.ray_backend.cluster import node_name

    return node_name(), os.getpid()


class Sb3EnvBlock:
    """Gymnasium envs stepped with stable-baselines3's VecEnv conventions (auto-reset, ``terminal_observation``,
    ``TimeLimit.truncated``); observations are returned stacked for the whole block."""

    def __init__(self, env_fns: Sequence[Callable[[], Any]], first_index: int) -> None:
        import torch
        from stable_baselines3.common.vec_env.patch_gym import _patch_env

        torch.set_num_threads(1)
        self.first_index = first_index
        self.envs = [_patch_env(fn()) for fn in env_fns]

    def where(self) -> tuple[str, int]:
        """(node address, process id) of this actor."""
        return _where()

    def spaces(self) -> tuple[Any, Any]:
        return self.envs[0].observation_space, self.envs[0].action_space

    def reset(self, seeds: Sequence[int | None], options: Sequence[dict[str, Any]]) -> tuple[Any, list[dict]]:
        results = [env.reset(seed=s, **({"options": o} if o else {})) for env, s, o in zip(self.envs, seeds, options)]
        return _stack([r[0] for r in results]), [r[1] for r in results]

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, list[dict], list[dict]]:
        obs_list, rewards, dones, infos, reset_infos = [], [], [], [], []
        for env, action in zip(self.envs, actions):
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            reset_info: dict[str, Any] = {}
            if done:
                info["terminal_observation"] = obs
                obs, reset_info = env.reset()
            obs_list.append(obs)
            rewards.append(reward)
            dones.append(done)
            infos.append(info)
            reset_infos.append(reset_info)
        return _stack(obs_list), np.stack(rewards), np.stack(dones), infos, reset_infos

    def call(self, command: str, data: Any, local: Sequence[int]) -> list[Any]:
        """``env_method`` / ``get_attr`` / ``set_attr`` / ``has_attr`` / ``is_wrapped`` / ``render`` on the block's
        envs ``local`` (indices within the block)."""
        from stable_baselines3.common.env_util import is_wrapped

        out = []
        for j in local:
            env = self.envs[j]
            if command == "env_method":
                name, args, kwargs = data
                out.append(env.get_wrapper_attr(name)(*args, **kwargs))
            elif command == "get_attr":
                out.append(env.get_wrapper_attr(data))
            elif command == "set_attr":
                setattr(env, data[0], data[1])
                out.append(None)
            elif command == "has_attr":
                try:
                    env.get_wrapper_attr(data)
                    out.append(True)
                except AttributeError:
                    out.append(False)
            elif command == "is_wrapped":
                out.append(is_wrapped(env, data))
            elif command == "render":
                out.append(env.render())
            else:
                raise ValueError(f"unknown env command {command!r}")
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()


class TrialEnvBlock:
    """Trial-wrapped envs (:class:`~policies.vec.SyncTrialVecEnv`) answering as a
    :class:`~policies.subproc.SubprocTrialVecEnv` worker does (numpy arrays of a :class:`~policies.vec.TrialStep`)."""

    def __init__(self, env_fns: Sequence[Callable[[], Any]], first_index: int) -> None:
        import torch

        from policies.vec import SyncTrialVecEnv

        torch.set_num_threads(1)
        self.first_index = first_index
        self.vec = SyncTrialVecEnv(env_fns)

    def where(self) -> tuple[str, int]:
        return _where()

    def spaces(self) -> tuple[Any, Any]:
        return self.vec.observation_space, self.vec.action_space

    def reset(self, seed: int | None) -> dict[str, np.ndarray]:
        obs = self.vec.reset(None if seed is None else seed + self.first_index)
        return {k: v.numpy() for k, v in obs.items()}

    def step(self, actions: np.ndarray) -> dict[str, Any]:
        import torch

        from policies.subproc import _step_arrays

        return _step_arrays(self.vec.step(torch.as_tensor(actions)))

    def env_method(self, name: str, args: tuple, local: Sequence[int]) -> list[Any]:
        return [self.vec.envs[j].get_wrapper_attr(name)(*args) for j in local]

    def close(self) -> None:
        self.vec.close()


def _stack(obs_list: Sequence[Any]) -> Any:
    if isinstance(obs_list[0], dict):
        return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    if isinstance(obs_list[0], tuple):
        return tuple(np.stack([o[i] for o in obs_list]) for i in range(len(obs_list[0])))
    return np.stack(obs_list)


def concat(parts: Sequence[Any]) -> Any:
    """Join per-actor observation batches along the env axis (arrays, dicts or tuples of arrays)."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))
    return np.concatenate(parts)


def index(obs: Any, i: int) -> Any:
    """Env ``i``'s observation in a batch."""
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(v[i] for v in obs)
    return obs[i]


class ActorPool:
    """``len(blocks)`` actors of ``block_class``, each building its block of ``env_fns``, spread over the cluster's
    nodes (Ray's SPREAD strategy), each reserving ``cpus_per_actor`` CPUs.

    Args:
        block_class: :class:`Sb3EnvBlock` or :class:`TrialEnvBlock`.
        env_fns: picklable env factories (they travel to the actors once, through Ray's object store).
        num_actors: actors, 1..len(env_fns); blocks differ in size by at most one (:func:`policies.subproc.split`).
        timeout_s: limit (s) for one call; an actor that does not answer in time is treated as dead.
        start_timeout_s: limit (s) for an actor to be placed and build its envs.
        connection: the Ray connection to release when the pool closes (None: leave Ray as it is).
        log: where restart lines go (default stderr).
    """

    def __init__(self, block_class: type, env_fns: Sequence[Callable[[], Any]], num_actors: int,
                 cpus_per_actor: float = 1.0, timeout_s: float = STEP_TIMEOUT_S,
                 start_timeout_s: float = START_TIMEOUT_S, connection: Any = None,
                 log: Callable[[str], None] | None = None) -> None:
        import ray

        self.blocks = split(len(env_fns), num_actors)
        self.remote_class = ray.remote(block_class)
        self.cpus_per_actor = float(cpus_per_actor)
        self.timeout_s, self.start_timeout_s = float(timeout_s), float(start_timeout_s)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.payloads = [ray.put([env_fns[i] for i in block]) for block in self.blocks]
        self.actors: list[Any] = [None] * len(self.blocks)
        self.places: list[tuple[str, int]] = [("", 0)] * len(self.blocks)
        self.restarts = [0] * len(self.blocks)
        self.connection = connection
        self.closed = False
        try:
            for w in range(len(self.blocks)):
                self.actors[w] = self._new_actor(w)
            self.places = self._wait_started(range(len(self.blocks)))
        except BaseException:
            self.close()
            raise

    # -- starting -----------------------------------------------------------------------------------------------
    def _new_actor(self, w: int) -> Any:
        options = dict(num_cpus=self.cpus_per_actor, scheduling_strategy="SPREAD", max_restarts=0,
                       max_concurrency=1)
        return self.remote_class.options(**options).remote(self.payloads[w], self.blocks[w].start)

    def _wait_started(self, which: Sequence[int]) -> list[tuple[str, int]]:
        import ray

        refs = [self.actors[w].where.remote() for w in which]
        try:
            return [tuple(p) for p in ray.get(refs, timeout=self.start_timeout_s)]
        except ray.exceptions.GetTimeoutError:
            need = len(which) * self.cpus_per_actor
            have = ray.cluster_resources().get("CPU", 0.0)
            raise EnvWorkerError(f"{len(which)} env actor(s) were not placed and started within "
                                 f"{self.start_timeout_s:g} s (they ask for {need:g} CPUs; the cluster has "
                                 f"{have:g})") from None
        except ray.exceptions.RayTaskError as err:
            raise EnvWorkerException(f"an env actor failed to build its envs: {_last_line(err)}\n{err}") from None

    def describe(self, w: int) -> str:
        block = self.blocks[w]
        envs = f"env {block.start}" if len(block) == 1 else f"envs {block.start}-{block.stop - 1}"
        return f"env actor {w} ({envs})"

    def nodes(self) -> list[str]:
        """Node of each actor (:func:`~sim2real.ray_backend.cluster.node_name`), in actor order."""
        return [place[0] for place in self.places]

    def restart(self, w: int, reason: str) -> None:
        """Replace actor ``w`` by a new one (any node), and log it; too many replacements end the run."""
        import ray

        self.restarts[w] += 1
        if self.restarts[w] > MAX_RESTARTS_PER_ACTOR:
            raise EnvWorkerError(f"{self.describe(w)} was lost {self.restarts[w]} times (last: {reason}); the run "
                                 f"can be resumed from its last checkpoint")
        try:
            ray.kill(self.actors[w], no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        old = self.places[w]
        self.actors[w] = self._new_actor(w)
        self.places[w] = self._wait_started([w])[0]
        self.log(f"ray: {self.describe(w)} on {old[0]} (pid {old[1]}) lost ({reason}); restarted on "
                 f"{self.places[w][0]} (pid {self.places[w][1]}), its episodes cut short "
                 f"[restart {self.restarts[w]}/{MAX_RESTARTS_PER_ACTOR}]")

    # -- calling -----------------------------------------------------------------------------------------------
    def submit(self, method: str, args_per_actor: Sequence[tuple], which: Sequence[int] | None = None) -> list[Any]:
        """Start ``method(*args)`` on the actors ``which`` (default all); returns their object refs."""
        if self.closed:
            raise EnvWorkerError(f"{method} on a closed Ray vec env")
        which = range(len(self.blocks)) if which is None else which
        return [getattr(self.actors[w], method).remote(*args) for w, args in zip(which, args_per_actor)]

    def collect(self, method: str, refs: Sequence[Any], which: Sequence[int] | None = None,
                on_lost: Callable[[int], Any] | None = None) -> list[Any]:
        """The answers of ``refs`` (one per actor of ``which``), each waited on until ``timeout_s`` after the
        first wait began. An actor found dead is restarted and its answer is ``on_lost(w)`` (default: the same
        call is not repeated and :class:`EnvWorkerError` is raised)."""
        import ray

        which = list(range(len(self.blocks))) if which is None else list(which)
        deadline = time.monotonic() + self.timeout_s
        out = []
        for w, ref in zip(which, refs):
            try:
                out.append(ray.get(ref, timeout=max(0.0, deadline - time.monotonic())))
                continue
            except ray.exceptions.RayTaskError as err:  # the env raised: a bug, as it would be in the learner
                raise EnvWorkerException(f"{self.describe(w)} raised during {method}: {_last_line(err)}\n{err}") \
                    from None
            except ray.exceptions.GetTimeoutError:
                reason = f"no answer to {method} within {self.timeout_s:g} s"
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as err:
                reason = f"died during {method}: {type(err).__name__}"
            self.restart(w, reason)
            if on_lost is None:
                raise EnvWorkerError(f"{self.describe(w)} {reason}")
            out.append(on_lost(w))
        return out

    def call(self, method: str, args_per_actor: Sequence[tuple], which: Sequence[int] | None = None,
             retry: bool = True) -> list[Any]:
        """Submit and collect; with ``retry`` a lost actor's call is made again on its replacement."""
        which = list(range(len(self.blocks))) if which is None else list(which)
        args = dict(zip(which, args_per_actor))

        def again(w: int) -> Any:
            return self.collect(method, self.submit(method, [args[w]], [w]), [w])[0]

        return self.collect(method, self.submit(method, args_per_actor, which), which, again if retry else None)

    def close(self) -> None:
        """Close every actor's envs (bounded wait), end the actors, release the connection."""
        import ray

        if self.closed:
            return
        self.closed = True
        live = [a for a in self.actors if a is not None]
        try:
            ray.wait([a.close.remote() for a in live], num_returns=len(live), timeout=10.0)
        except Exception:  # noqa: BLE001 - an actor already gone has nothing to close
            pass
        for actor in live:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        if self.connection is not None:
            self.connection.release()


def _last_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


class PooledEnv:
    """What the Ray vec envs share: their :class:`ActorPool` (``self.pool``), its processes and closing."""

    pool: ActorPool

    def actor_processes(self) -> list[tuple[str, int]]:
        """(node address, process id) of each actor (for logs and for tests that kill one)."""
        return list(self.pool.places)

    @property
    def closed(self) -> bool:
        return self.pool.closed

    def close(self) -> None:
        """End the actors (their envs closed first) and a Ray instance this env started."""
        self.pool.close()
