"""Trial environments stepped in worker processes, so RL² training uses more than one core.

:class:`SubprocTrialVecEnv` splits N env factories into ``workers`` contiguous blocks; each worker process builds its
block as a :class:`~policies.vec.SyncTrialVecEnv` and steps all of it per command (one pipe round trip per worker and
step, the workers stepping at the same time). The trial bookkeeping, hidden states and the policy stay in the
learner. Env ``i`` is seeded ``seed + i`` whatever the split, so the same seed gives the same trajectories with 1 or
k workers (and with :class:`~policies.vec.SyncTrialVecEnv`).

With 2 or more workers the envs form two *stages* (:func:`pipeline_blocks`: the first and second half, each stepped
by its own workers), which :meth:`SubprocTrialVecEnv.step_async` / :meth:`~SubprocTrialVecEnv.step_wait` step
separately: the trainer computes one half's actions while the other half steps (``policies.ppo.collect``).

Workers start with the ``forkserver`` method (``spawn`` where there is none): forking a learner that already runs
torch threads can deadlock a child. Env factories travel once, with cloudpickle (they are the trainer's own closures).
Every wait on a worker is bounded: a worker that died, or did not answer within ``timeout_s``, raises
:class:`EnvWorkerError` with one line naming the worker, its envs and the command; an exception inside an env raises
:class:`EnvWorkerException` carrying the worker's traceback (a bug, as it would be in the learner's process).
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable, Sequence

import cloudpickle
import gymnasium as gym
import numpy as np
import torch

from policies.vec import SyncTrialVecEnv, TrialStep, _to_numpy_actions

START_TIMEOUT_S = 300.0
"""Default limit (s) for a worker to build its envs."""
STEP_TIMEOUT_S = 120.0
"""Default limit (s) for one command (reset, step, env method) to come back."""


class EnvWorkerError(RuntimeError):
    """A worker process died or did not answer in time; one line naming the worker, its envs and the command."""


class EnvWorkerException(RuntimeError):
    """An env raised inside a worker; the message is the exception's last line, then the worker's traceback."""


def start_method() -> str:
    """``forkserver`` where the platform has it (Linux, macOS), else ``spawn``."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def split(num_envs: int, workers: int) -> list[range]:
    """Contiguous env index blocks, sizes differing by at most one: ``split(5, 2) == [range(0, 3), range(3, 5)]``."""
    if not 1 <= workers <= num_envs:
        raise ValueError(f"workers: expected 1..{num_envs} (one env at least per worker), got {workers}")
    base, extra = divmod(num_envs, workers)
    blocks, start = [], 0
    for w in range(workers):
        size = base + (1 if w < extra else 0)
        blocks.append(range(start, start + size))
        start += size
    return blocks


def pipeline_blocks(num_envs: int) -> list[range]:
    """The env halves whose actions the trainer computes one after the other (one block for a single env).

    Fixed by ``num_envs`` alone: a batched forward pass can round a row differently with another batch size, so the
    same blocks for any worker count keep training bit-identical."""
    return split(num_envs, min(num_envs, 2))


def worker_blocks(num_envs: int, workers: int) -> list[range]:
    """Env blocks of ``workers`` processes, each inside one :func:`pipeline_blocks` half (the first half gets the
    extra worker of an odd count); with 1 or 2 workers the same as :func:`split`."""
    split(num_envs, workers)  # the range check
    if workers == 1:
        return [range(num_envs)]
    halves = pipeline_blocks(num_envs)
    counts = [(workers + 1) // 2, workers // 2]
    return [range(half.start + r.start, half.start + r.stop) for half, k in zip(halves, counts)
            for r in split(len(half), k)]


def _step_arrays(step: TrialStep) -> dict[str, Any]:
    """A :class:`TrialStep` as numpy arrays (what a worker sends)."""
    out: dict[str, Any] = {"obs": {k: v.numpy() for k, v in step.obs.items()}}
    for name in ("reward", "episode_done", "trial_terminated", "trial_truncated"):
        out[name] = getattr(step, name).numpy()
    out["final_obs"] = None if step.final_obs is None else {k: v.numpy() for k, v in step.final_obs.items()}
    success = getattr(step, "episode_success", None)
    out["episode_success"] = None if success is None else success.numpy()
    return out


def _worker(conn: Connection, payload: bytes, first_index: int) -> None:
    """Worker loop: build the envs, then answer ``(command, data)`` messages until ``close`` or a closed pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the learner's: it closes the workers
    torch.set_num_threads(1)
    try:
        vec = SyncTrialVecEnv(cloudpickle.loads(payload))
        conn.send(("ok", (vec.observation_space, vec.action_space)))
    except Exception:  # noqa: BLE001 - reported to the learner, which raises
        conn.send(("error", traceback.format_exc()))
        return
    try:
        while True:
            try:
                command, data = conn.recv()
            except (EOFError, OSError):  # the learner is gone
                return
            try:
                if command == "step":
                    result: Any = _step_arrays(vec.step(torch.as_tensor(data)))
                elif command == "reset":
                    result = {k: v.numpy() for k, v in vec.reset(None if data is None else data + first_index).items()}
                elif command == "env_method":
                    name, args, local = data
                    result = [vec.envs[j].get_wrapper_attr(name)(*args) for j in local]
                elif command == "close":
                    conn.send(("ok", None))
                    return
                else:
                    raise ValueError(f"unknown worker command {command!r}")
            except Exception:  # noqa: BLE001 - reported to the learner, which raises
                conn.send(("error", traceback.format_exc()))
                continue
            conn.send(("ok", result))
    finally:
        vec.close()


class SubprocTrialVecEnv:
    """N trial envs in ``workers`` processes; the same interface as :class:`~policies.vec.SyncTrialVecEnv`.

    Args:
        env_fns: picklable (cloudpickle) factories, each building an env that ends in a ``TrialWrapper``.
        workers: worker processes, 1..N; envs are split into contiguous blocks (:func:`worker_blocks`).
        timeout_s: limit (s) for each reset/step/env-method answer.
        start_timeout_s: limit (s) for a worker to build its envs.
        context: multiprocessing start method (default :func:`start_method`).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], workers: int, timeout_s: float = STEP_TIMEOUT_S,
                 start_timeout_s: float = START_TIMEOUT_S, context: str | None = None) -> None:
        self.num_envs = len(env_fns)
        self.blocks = worker_blocks(self.num_envs, workers)
        halves = [range(self.num_envs)] if workers == 1 else pipeline_blocks(self.num_envs)
        self.stages: list[range] = halves
        """Env ranges that :meth:`step_async` steps on their own (two halves with 2+ workers, else all envs)."""
        self.stage_workers = [[w for w, b in enumerate(self.blocks) if b.start in half] for half in halves]
        self.stashed: dict[int, Any] = {}  # step answers received early (an env_method while the step ran)
        self.stepping: set[int] = set()  # workers with a step in flight
        self.timeout_s = float(timeout_s)
        ctx = mp.get_context(context or start_method())
        if ctx.get_start_method() == "forkserver":  # workers fork from a server that imported torch once
            ctx.set_forkserver_preload([__name__])
        self.conns: list[Connection] = []
        self.processes: list[Any] = []
        self.closed = False
        try:
            for block in self.blocks:
                parent, child = ctx.Pipe()
                payload = cloudpickle.dumps([env_fns[i] for i in block])
                process = ctx.Process(target=_worker, args=(child, payload, block.start), daemon=True,
                                      name=f"rl2-env-worker-{len(self.processes)}")
                process.start()
                child.close()
                self.conns.append(parent)
                self.processes.append(process)
            spaces = [self._receive(w, "start", start_timeout_s) for w in range(len(self.blocks))]
        except BaseException:
            self.close()
            raise
        self.observation_space, self.action_space = spaces[0]

    # -- pipes ------------------------------------------------------------------------------------------------
    def _describe(self, w: int) -> str:
        block = self.blocks[w]
        envs = f"env {block.start}" if len(block) == 1 else f"envs {block.start}-{block.stop - 1}"
        return f"env worker {w} ({envs})"

    def _send(self, w: int, command: str, data: Any) -> None:
        try:
            self.conns[w].send((command, data))
        except (BrokenPipeError, EOFError, OSError):
            self._raise_dead(w, command)

    def _raise_dead(self, w: int, command: str) -> None:
        process = self.processes[w]
        process.join(timeout=1.0)
        code = process.exitcode
        how = f"exit code {code}" if code is None or code >= 0 else f"signal {signal.Signals(-code).name}"
        raise EnvWorkerError(f"{self._describe(w)} died ({how}) during {command}; the run can be resumed "
                             f"from its last checkpoint")

    def _receive(self, w: int, command: str, timeout_s: float | None = None) -> Any:
        """The answer of worker ``w``, waiting at most ``timeout_s`` and noticing a dead worker within ~0.1 s."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        conn = self.conns[w]
        while True:
            try:
                ready = conn.poll(min(0.1, max(0.0, deadline - time.monotonic())))
            except (EOFError, OSError):
                ready = False
                self._raise_dead(w, command)
            if ready:
                try:
                    status, result = conn.recv()
                except (EOFError, OSError):
                    self._raise_dead(w, command)
                if status == "error":
                    last = result.strip().splitlines()[-1]
                    raise EnvWorkerException(f"{self._describe(w)} raised during {command}: {last}\n{result}")
                return result
            if not self.processes[w].is_alive():
                self._raise_dead(w, command)
            if time.monotonic() >= deadline:
                raise EnvWorkerError(f"{self._describe(w)} did not answer {command} within {limit:g} s")

    def _all(self, command: str, data: Sequence[Any]) -> list[Any]:
        """Send one command to every worker (they run at the same time), then collect the answers in order."""
        if self.closed:
            raise EnvWorkerError(f"{command} on a closed SubprocTrialVecEnv")
        for w in range(len(self.blocks)):
            self._settle(w)
        self.stashed.clear()  # a step sent by step_async and never waited for is dropped
        for w, item in enumerate(data):
            self._send(w, command, item)
        return [self._receive(w, command) for w in range(len(self.blocks))]

    def _settle(self, w: int) -> None:
        """Receive worker ``w``'s step in flight, if any, into :attr:`stashed` (its pipe is then free)."""
        if w in self.stepping:
            self.stepping.discard(w)
            self.stashed[w] = self._receive(w, "step")

    # -- TrialVecEnv ------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        parts = self._all("reset", [seed] * len(self.blocks))
        return {k: torch.as_tensor(np.concatenate([p[k] for p in parts])) for k in parts[0]}

    def step(self, action: torch.Tensor) -> TrialStep:
        actions = _to_numpy_actions(action, self.action_space)
        return self._join(self._all("step", [actions[b.start:b.stop] for b in self.blocks]), self.blocks)

    def step_async(self, stage: int, action: torch.Tensor) -> None:
        """Send the actions (rows = the envs of ``self.stages[stage]``) to that stage's workers; returns at once."""
        if self.closed:
            raise EnvWorkerError("step on a closed SubprocTrialVecEnv")
        actions = _to_numpy_actions(action, self.action_space)
        first = self.stages[stage].start
        for w in self.stage_workers[stage]:
            self._settle(w)
            block = self.blocks[w]
            self._send(w, "step", actions[block.start - first:block.stop - first])
            self.stepping.add(w)

    def step_wait(self, stage: int) -> TrialStep:
        """The step of ``self.stages[stage]``'s envs sent by :meth:`step_async` (rows in env order)."""
        workers = self.stage_workers[stage]
        for w in workers:
            self._settle(w)
        return self._join([self.stashed.pop(w) for w in workers], [self.blocks[w] for w in workers])

    @staticmethod
    def _join(parts: list[dict[str, Any]], blocks: Sequence[range]) -> TrialStep:
        """One :class:`TrialStep` from the workers' answers for ``blocks`` (in env order)."""
        cat = lambda name: torch.as_tensor(np.concatenate([p[name] for p in parts]))  # noqa: E731
        obs = {k: torch.as_tensor(np.concatenate([p["obs"][k] for p in parts])) for k in parts[0]["obs"]}
        final_obs = None
        if any(p["final_obs"] is not None for p in parts):  # where a worker had none, its current obs fill in
            final_obs = {k: torch.as_tensor(np.concatenate([(p["final_obs"] or p["obs"])[k] for p in parts]))
                         for k in obs}
        success = None
        if any(p["episode_success"] is not None for p in parts):
            success = torch.as_tensor(np.concatenate([
                p["episode_success"] if p["episode_success"] is not None else np.zeros(len(b), np.float32)
                for p, b in zip(parts, blocks)]))
        step = TrialStep(obs, cat("reward"), cat("episode_done"), cat("trial_terminated"), cat("trial_truncated"),
                         final_obs)
        if success is not None:
            step.episode_success = success
        return step

    def env_method(self, name: str, *args: Any, indices: Sequence[int] | None = None) -> list[Any]:
        """Call ``env.get_wrapper_attr(name)(*args)`` in the envs ``indices`` (default all); results in that order."""
        wanted = list(range(self.num_envs)) if indices is None else [int(i) for i in indices]
        out: dict[int, Any] = {}
        for w, block in enumerate(self.blocks):
            mine = [i for i in wanted if i in block]
            if mine:
                self._settle(w)
                self._send(w, "env_method", (name, args, [i - block.start for i in mine]))
                out.update(zip(mine, self._receive(w, f"env_method {name}")))
        return [out[i] for i in wanted]

    def close(self) -> None:
        """Ask every worker to close its envs; a worker that does not exit within a few seconds is killed."""
        if self.closed:
            return
        self.closed = True
        for w, conn in enumerate(self.conns):
            if self.processes[w].is_alive():
                try:
                    conn.send(("close", None))
                except (BrokenPipeError, EOFError, OSError):
                    pass
        deadline = time.monotonic() + 10.0
        for process in self.processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(timeout=5.0)
        for conn in self.conns:
            conn.close()
