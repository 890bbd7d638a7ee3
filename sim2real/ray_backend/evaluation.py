"""``sim2real eval ... --backend ray``: simulated episodes as Ray tasks, conditions x policies x chunks of trials.

A chunk is one batch of ``n_envs`` trials, the batch the local evaluation steps together, built the same way (env
``k`` of a batch is built as rank ``k``, reset with the trial's seed); so each episode, and so the report, is the
local one. Policies travel once through Ray's object store (pickled in memory here, never read from a file
there). The emulated condition is not a task: it runs in real time on this machine, beside its emulator, while
the tasks run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sim2real.errors import UserError

CPUS_PER_TASK = 1.0
"""CPUs each evaluation task reserves."""


def _run_chunk(config: dict[str, Any], policy: Any, seeds: list[int], n_envs: int, videos: int
               ) -> tuple[str, list[Any]]:
    """One batch of trials in a Ray worker (what :func:`sim2real.evaluation.simulated.run_episodes` runs); returns
    (node name, episodes)."""
    import torch

    from sim2real.env_factory import make_env_fn
    from sim2real.evaluation.simulated import run_episodes
    from sim2real.ray_backend.cluster import node_name

    torch.set_num_threads(1)
    make_env = lambda rank: make_env_fn(config, rank)()  # noqa: E731 - as evaluation.run builds them
    return node_name(), run_episodes(make_env, policy, seeds, n_envs, videos)


@dataclass
class _Job:
    result: Any  # ConditionResult whose episodes[label] is filled in
    label: str
    refs: list[Any]
    on_episode: Callable[[Any], None] | None


class RayEpisodes:
    """Submits the simulated conditions' chunks as soon as they are known; :meth:`collect` fills the results."""

    def __init__(self, address: str | None, n_envs: int) -> None:
        import os

        from sim2real.ray_backend.cluster import connect, import_ray

        self.connection = connect(address, num_cpus=os.cpu_count() or 1)  # first: it decides how Ray is imported
        ray = import_ray()
        self.task = ray.remote(num_cpus=CPUS_PER_TASK, max_retries=3, scheduling_strategy="SPREAD")(_run_chunk)
        self.n_envs = n_envs
        self.jobs: list[_Job] = []
        self.shipped: dict[int, Any] = {}
        self.nodes: dict[str, int] = {}  # node name -> chunks it ran

    def submit(self, result: Any, label: str, config: dict[str, Any], policy: Any, seeds: list[int], videos: int,
               on_episode: Callable[[Any], None] | None = None) -> None:
        """Start the chunks of one (condition, policy): trials ``seeds``, ``n_envs`` per chunk, in order."""
        import ray

        if id(policy) not in self.shipped:
            self.shipped[id(policy)] = ray.put(policy)
        config_ref = ray.put(config)
        refs = [self.task.remote(config_ref, self.shipped[id(policy)], seeds[start:start + self.n_envs],
                                 self.n_envs, max(0, videos - start))
                for start in range(0, len(seeds), self.n_envs)]
        self.jobs.append(_Job(result, label, refs, on_episode))

    def collect(self) -> None:
        """Wait for every chunk; episodes land in their condition's result in trial order (progress callbacks are
        called as chunks finish). A Param or texture set that fails when the env is wrapped is a UserError."""
        import ray

        try:
            for job in self.jobs:
                episodes = []
                for ref in job.refs:
                    try:
                        node, chunk = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        cause = getattr(err, "cause", None)
                        if isinstance(cause, (ValueError, UserError)):
                            raise UserError(f"{job.result.name}: {cause}") from None
                        raise
                    for episode in chunk:
                        if job.on_episode is not None:
                            job.on_episode(episode)
                    episodes += chunk
                    self.nodes[node] = self.nodes.get(node, 0) + 1
                job.result.episodes[job.label] = episodes
        finally:
            self.connection.release()
        print("ray: evaluation chunks per node: " + ", ".join(f"{n} {c}" for n, c in sorted(self.nodes.items())),
              flush=True)
