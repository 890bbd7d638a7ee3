"""``sim2real train`` with ``curriculum: poet``: POET's own training driver (several agents, one per niche).

Why a driver of its own: the SB3 callback and the RL² trial hook drive *one* model over a vec env, while POET
(:mod:`randomizers.curricula.poet`) trains one agent per active environment and moves agents between
environments. :func:`sim2real.train.train` hands a launch file whose ``curriculum`` is ``poet`` to
:func:`train_poet`; ``curriculum_options`` are :class:`~randomizers.curricula.poet.PoetTeacher`'s options.

Agents: ``policy: mlp`` — an SB3 model per niche held in memory, with its own DummyVecEnv (``n_envs`` envs, in this
process) pinned to the niche's environment (``set_randomization_values``; the Params POET does not move stay
randomized) — with ``env.simulator: batched`` the launch file's ``n_envs`` vehicles of the batched quadrotor model
instead, and every score of such an agent is ``eval_episodes`` vehicles of that model flown at once; ``policy: rl2``
— an RL² run folder per niche (``RUN_DIR/poet_agents/niche-K/checkpoint.pt``) trained in chunks by
:func:`policies.ppo.train_rl2` (whole rollout batches, so a chunk may pass its share). A transferred or newborn
agent gets a copy of the source agent's weights (SB3: the policy's actor/critic/target tensors and SAC's entropy
coefficient; its own replay buffer and optimizer moments stay; RL²: the whole training checkpoint).
``curriculum_options.root_agent`` (this driver's option, not the teacher's): a model.zip / checkpoint.pt the root
niche's agent starts from instead of fresh weights (its earlier steps are not counted). ``budget.total_timesteps``
counts training env steps of all agents together; evaluation episodes are extra and counted in the state
(``evaluation_episodes``).

Run directory::

    RUN_DIR/checkpoints/step-N/    curriculum.json (POET state), agents/niche-K/ (model.zip + replay buffer, or
                                   checkpoint.pt), launch.yaml, versions.json, state.json, manifest.json last
    RUN_DIR/curriculum_history.jsonl  start/resume, generation, admit, reject, retire, solved, transfer events
    RUN_DIR/final/poet.json        population, archive, solved environments, the frontier niche
    RUN_DIR/final/model.zip        (mlp) / RUN_DIR/checkpoint.pt (rl2): the frontier niche's agent, so
                                   ``sim2real eval RUN_DIR`` loads it

A checkpoint is written (:func:`sim2real.checkpoints.write_checkpoint`: complete before it is published) after
the generation in which ``checkpoint.every_steps`` was crossed and at the end; ``--resume`` (also after kill -9)
continues from the newest complete one, with the teacher state and every agent written together in it.
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Protocol

import numpy as np

from randomizers.curricula.poet import PoetTeacher
from sim2real.checkpoints import checkpoint_step, newest_checkpoint, write_checkpoint
from sim2real.env_factory import make_env_fn
from sim2real.errors import UserError
from sim2real.io import atomic_write_json

AGENTS = "agents"
ROOT_AGENT = "root_agent"  # curriculum option of this driver (not the teacher's): the root niche's first weights
RL2_WORK = "poet_agents"
EVAL_SEED_OFFSET = 300_000


class Agent(Protocol):
    steps: int

    def train(self, steps: int) -> None: ...
    def policy(self) -> Any: ...  # a sim2real.agents.BatchPolicy
    def snapshot(self) -> Any: ...
    def load_snapshot(self, snapshot: Any) -> None: ...
    def save(self, folder: str) -> None: ...
    def close(self) -> None: ...


class PinnedEnv:
    """A picklable env factory: the launch file's env with ``values`` pinned for every episode."""

    def __init__(self, config: dict[str, Any], values: dict[str, Any], rank: int, seed_offset: int = 0) -> None:
        self.build, self.values = make_env_fn(config, rank, seed_offset), dict(values)

    def __call__(self):
        env = self.build()
        env.get_wrapper_attr("set_randomization_values")(self.values)
        return env


class Sb3Agent:
    """One SB3 model (``algo`` of the launch file) training in its niche's environment."""

    def __init__(self, config: dict[str, Any], values: dict[str, Any], rank: int, folder: str | None = None,
                 init: str | None = None) -> None:
        from stable_baselines3.common.vec_env import DummyVecEnv

        from sim2real.replay_buffers import resume_replay_buffer
        from sim2real.sb3_safe_load import load_sb3_model
        from sim2real.sb3_safe_load import build_model

        if is_batched(config):  # the launch file's n_envs vehicles of the numpy model, the niche's values pinned
            self.env = pinned_batched_env(config, values, rank * 100)
        else:
            self.env = DummyVecEnv([PinnedEnv(config, values, rank * 100 + i) for i in range(config["n_envs"])])
        if folder is None and init is not None:  # a given model's weights, counted from step 0 here
            self.model = load_sb3_model(config, init, self.env)
            self.model.num_timesteps = 0
        elif folder is None:
            self.model = build_model({**config, "seed": config["seed"] + rank}, self.env, None)
        else:
            self.model = load_sb3_model(config, os.path.join(folder, "model.zip"), self.env)
            resume_replay_buffer(self.model, folder, config["algo"].get("learning_starts", 0))

    @property
    def steps(self) -> int:
        return int(self.model.num_timesteps)

    def train(self, steps: int) -> None:
        self.model.learn(steps, reset_num_timesteps=False, progress_bar=False)

    def policy(self) -> Any:
        from sim2real.agents import Sb3Policy

        return Sb3Policy(self.model)

    def snapshot(self) -> dict[str, Any]:
        out = {"policy": {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}}
        if getattr(self.model, "log_ent_coef", None) is not None:
            out["log_ent_coef"] = self.model.log_ent_coef.detach().clone()
        return out

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        import torch

        self.model.policy.load_state_dict(snapshot["policy"])
        if "log_ent_coef" in snapshot and getattr(self.model, "log_ent_coef", None) is not None:
            with torch.no_grad():
                self.model.log_ent_coef.copy_(snapshot["log_ent_coef"])

    def save(self, folder: str) -> None:
        from sim2real.replay_buffers import save_replay_buffer

        os.makedirs(folder, exist_ok=True)
        self.model.save(os.path.join(folder, "model.zip"))
        if getattr(self.model, "replay_buffer", None) is not None:
            save_replay_buffer(self.model.replay_buffer, folder)

    def close(self) -> None:
        self.env.close()


class Rl2Agent:
    """One RL² run folder (``workdir``) trained in chunks; its ``checkpoint.pt`` is the agent."""

    def __init__(self, config: dict[str, Any], values: dict[str, Any], rank: int, workdir: str,
                 folder: str | None = None) -> None:
        self.config, self.values, self.rank, self.dir = config, dict(values), rank, workdir
        shutil.rmtree(workdir, ignore_errors=True)  # what a killed attempt trained after the checkpoint
        os.makedirs(workdir)
        if folder is not None:
            self.load_snapshot(_read_bytes(os.path.join(folder, "checkpoint.pt")))
        self.steps = self._saved_steps()

    @property
    def path(self) -> str:
        return os.path.join(self.dir, "checkpoint.pt")

    def _saved_steps(self) -> int:
        from policies.checkpoint import safe_load

        return int(safe_load(self.path)["global_step"]) if os.path.isfile(self.path) else 0

    def train(self, steps: int) -> None:
        from policies.ppo import train_rl2
        from sim2real.launch.loader import rl2_settings

        settings = {**rl2_settings(self.config), "total_steps": self.steps + steps}
        fns = [PinnedEnv(self.config, self.values, self.rank * 100 + i) for i in range(self.config["n_envs"])]
        self.steps = int(train_rl2(settings, fns, self.dir, resume=True, tensorboard=False).global_step)

    def policy(self) -> Any:
        from policies.config import RL2Config
        from policies.runner import PolicyRunner
        from sim2real.agents import RecurrentPolicy

        path = self.path
        episodes = int((self.config.get("rl2") or {}).get("episodes_per_trial", RL2Config.episodes_per_trial))
        return RecurrentPolicy(lambda: PolicyRunner.load(path, deterministic=True), episodes)

    def snapshot(self) -> bytes:
        return _read_bytes(self.path)

    def load_snapshot(self, snapshot: bytes) -> None:
        from policies.checkpoint import atomic_write_bytes

        atomic_write_bytes(snapshot, self.path)
        self.steps = self._saved_steps()

    def save(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(self.path, os.path.join(folder, "checkpoint.pt"))

    def close(self) -> None:
        return None


def is_batched(config: dict[str, Any]) -> bool:
    """Whether the launch file trains on the batched quadrotor model (``env.simulator: batched``)."""
    return (config.get("env") or {}).get("simulator") == "batched"


def pinned_batched_env(config: dict[str, Any], values: dict[str, Any], seed_offset: int, n: int | None = None):
    """The launch file's batched quadrotor VecEnv (``n`` vehicles, default ``n_envs``) with ``values`` pinned for
    every vehicle (the other Params drawn from their ranges), reset."""
    from sim2real.env_factory import make_batched_vec_env

    env = make_batched_vec_env(config if n is None else {**config, "n_envs": int(n)}, seed_offset)
    try:
        env.env_method("set_randomization_values", values)
    except ValueError as err:
        raise UserError(f"curriculum: {err}") from None
    env.reset()
    return env


def batched_successes(config: dict[str, Any], model: Any, values: dict[str, Any], episodes: int,
                      seed_offset: int) -> list[bool]:
    """Success of each of ``episodes`` vehicles of the batched model in environment ``values`` over its first
    episode, ``model`` (an SB3 model) acting deterministically; the vehicles' draws come from ``seed`` +
    ``seed_offset``, so every model scored with the same offset meets the same starts."""
    env = pinned_batched_env(config, values, seed_offset, episodes)
    obs = env.reset()
    done = np.zeros(episodes, dtype=bool)
    success = np.zeros(episodes, dtype=bool)
    while not done.all():
        actions, _ = model.predict(obs, deterministic=True)
        obs, _rewards, dones, infos = env.step(actions)
        for i in np.flatnonzero(dones & ~done):
            done[i], success[i] = True, bool(infos[i].get("is_success", False))
    return success.tolist()


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


class PoetRun:
    """The POET loop over one run directory (see the module docstring)."""

    def __init__(self, config: dict[str, Any], run_dir: str, teacher: PoetTeacher) -> None:
        self.config, self.run_dir, self.teacher = config, run_dir, teacher
        self.agents: dict[int, Agent] = {}
        self.steps = 0

    # -- agents ---------------------------------------------------------------------------------------------
    def make_agent(self, niche: int, folder: str | None = None, init: str | None = None) -> Agent:
        """Niche ``niche``'s agent: fresh, from checkpoint ``folder``, or starting from the weights of ``init`` (an
        SB3 model.zip or an RL² checkpoint.pt, the root's ``root_agent`` option)."""
        values = self.teacher.values_of(niche)
        if self.config["policy"] == "rl2":
            workdir = os.path.join(self.run_dir, RL2_WORK, f"niche-{niche}")
            agent = Rl2Agent(self.config, values, niche, workdir, folder)
            if init is not None:
                agent.load_snapshot(_read_bytes(init))
            return agent
        return Sb3Agent(self.config, values, niche, folder, init)

    def evaluate(self, agent: Agent, values: dict[str, Any]) -> float:
        """Success rate of ``agent`` over ``eval_episodes`` seeded trials in environment ``values`` (the same
        seeds for every agent within a generation, so scores on one environment pair up)."""
        from sim2real.evaluation.simulated import run_episodes

        base = self.config["seed"] + EVAL_SEED_OFFSET + 1000 * self.teacher.generation
        if isinstance(agent, Sb3Agent) and is_batched(self.config):  # all episodes at once on the numpy model
            return float(np.mean(batched_successes(self.config, agent.model, values, self.teacher.eval_episodes,
                                                   EVAL_SEED_OFFSET + 1000 * self.teacher.generation)))
        seeds = [base + k for k in range(self.teacher.eval_episodes)]
        env = PinnedEnv(self.config, values, 0, EVAL_SEED_OFFSET)
        episodes = run_episodes(lambda _i: env(), agent.policy(), seeds, n_envs=1)
        return float(np.mean([e.success for e in episodes]))

    # -- one generation -------------------------------------------------------------------------------------
    def generation(self, budget: int) -> None:
        t = self.teacher
        active = t.active
        share, extra = divmod(max(budget - self.steps, len(active)), len(active))  # the last generation: the rest
        for i, niche in enumerate(active):
            before = self.agents[niche.id].steps
            self.agents[niche.id].train(min(t.steps_per_generation, share + (i < extra)))
            self.steps += self.agents[niche.id].steps - before
        t.record_scores({n.id: self.evaluate(self.agents[n.id], t.values_of(n.id)) for n in active})
        if t.is_transfer_generation():
            scores = {(env, agent): self.evaluate(self.agents[agent], t.values_of(env))
                      for env, agent in t.transfer_pairs()}
            moves = t.transfers(scores)
            sources = {agent: self.agents[agent].snapshot() for _, agent in moves}  # before any copy lands
            for env, agent in moves:
                self.agents[env].load_snapshot(sources[agent])
        if t.is_reproduction_generation():
            candidates = t.propose()
            scores = []
            for cand in candidates:
                values = {n: int(v) if t.space[n].integer else v for n, v in cand.values.items()}
                scores.append(self.evaluate(self.agents[cand.parent], values))
            for result in t.admit(candidates, scores):
                if result.niche >= 0:
                    agent = self.make_agent(result.niche)
                    agent.load_snapshot(self.agents[result.candidate.parent].snapshot())
                    self.agents[result.niche] = agent
            for niche in t.archive:
                if niche.id in self.agents:
                    self.agents.pop(niche.id).close()
        t.end_generation()

    # -- files ----------------------------------------------------------------------------------------------
    def checkpoint(self) -> str:
        from randomizers.curricula.store import save_state
        from sim2real.launch import dump
        from sim2real.checkpoints import package_versions

        def fill(folder: str) -> None:
            save_state(self.teacher, folder, self.steps)
            for nid, agent in self.agents.items():
                agent.save(os.path.join(folder, AGENTS, f"niche-{nid}"))
            dump(self.config, os.path.join(folder, "launch.yaml"))
            atomic_write_json(os.path.join(folder, "versions.json"), package_versions())
            atomic_write_json(os.path.join(folder, "state.json"), {
                "num_timesteps": self.steps, "generation": self.teacher.generation,
                "agent_steps": {str(n): a.steps for n, a in self.agents.items()}})

        return write_checkpoint(self.run_dir, self.steps, fill)

    def restore(self, checkpoint: str) -> None:
        from randomizers.curricula.store import load_state

        try:
            self.steps = int(load_state(self.teacher, checkpoint) or 0)
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{checkpoint}: POET state does not fit this launch file: {err}") from None
        for niche in self.teacher.active:
            self.agents[niche.id] = self.make_agent(niche.id, os.path.join(checkpoint, AGENTS, f"niche-{niche.id}"))

    def write_final(self) -> None:
        t = self.teacher
        frontier = t.frontier()
        atomic_write_json(os.path.join(self.run_dir, "final", "poet.json"), {
            "timesteps": self.steps, "generations": t.generation, "evaluation_episodes": t.evaluation_episodes,
            "frontier": {"niche": frontier.id, "values": frontier.values, "score": frontier.score},
            "population": [_niche_record(n) for n in t.active], "archive": [_niche_record(n) for n in t.archive],
            "solved": t.solved})
        agent = self.agents[frontier.id]
        if isinstance(agent, Sb3Agent):
            tmp = os.path.join(self.run_dir, "final", ".model.tmp.zip")
            agent.model.save(tmp)
            os.replace(tmp, os.path.join(self.run_dir, "final", "model.zip"))
        else:
            from policies.checkpoint import atomic_write_bytes

            atomic_write_bytes(agent.snapshot(), os.path.join(self.run_dir, "checkpoint.pt"))

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()


def _niche_record(niche: Any) -> dict[str, Any]:
    return {"id": niche.id, "values": niche.values, "score": niche.score, "parent": niche.parent,
            "born": niche.born, "retired": niche.retired, "solved_at": niche.solved_at}


def root_agent(config: dict[str, Any]) -> str | None:
    """The ``curriculum_options.root_agent`` path (None when not given); a missing file is a UserError."""
    path = (config.get("curriculum_options") or {}).get(ROOT_AGENT)
    if path is None:
        return None
    if not isinstance(path, str) or not os.path.isfile(path):
        raise UserError(f"curriculum option '{ROOT_AGENT}': {path!r} is not a file (an SB3 model.zip, or an RL² "
                        f"checkpoint.pt with policy: rl2)")
    return path


def build_poet_teacher(config: dict[str, Any]) -> PoetTeacher:
    """The launch file's POET teacher over the ParamSpace its randomizers declare."""
    from randomizers.curricula import build_teacher
    from randomizers.params import ParamSpace

    env = make_env_fn(config, 0)()
    try:
        space = ParamSpace.from_dict(env.get_wrapper_attr("get_randomization_space")())
    finally:
        env.close()
    try:
        options = {k: v for k, v in (config.get("curriculum_options") or {}).items() if k != ROOT_AGENT}
        teacher = build_teacher({"name": "poet", **options}, space, config["n_envs"], config["seed"])
    except ValueError as err:
        raise UserError(f"curriculum: {err}") from None
    assert isinstance(teacher, PoetTeacher)
    return teacher


def train_poet(config: dict[str, Any], run_dir: str, resume: bool = False, progress: bool | None = None) -> str:
    """Run POET per ``config`` in ``run_dir`` (``resume``: from its newest complete checkpoint). Returns run_dir."""
    import torch

    from randomizers.curricula.store import CurriculumHistory
    from sim2real.progress import progress_bars
    from sim2real.checkpoints import resume_point

    torch.set_num_threads(1)
    total = int(config["budget"]["total_timesteps"])
    root = root_agent(config)
    run = PoetRun(config, run_dir, build_poet_teacher(config))
    checkpoint = resume_point(run_dir) if resume else None
    if checkpoint is not None:
        print(f"resuming {run_dir} from {os.path.basename(checkpoint)}", flush=True)
    history = CurriculumHistory(run_dir)
    try:
        if checkpoint is not None:
            run.restore(checkpoint)
        else:
            run.agents[0] = run.make_agent(0, init=root)
        history.begin(run.teacher, run.steps, resumed=checkpoint is not None)
        every = int(config["checkpoint"]["every_steps"])
        next_ckpt = (run.steps // every + 1) * every
        with progress_bars(progress) as bars:
            bar = bars.add("POET", total=total)
            while run.steps < total:
                run.generation(total)
                history.record(run.teacher.pop_events(), run.steps)
                status = (f"generation {run.teacher.generation}, {len(run.teacher.active)} niches, "
                          f"{len(run.teacher.solved)} solved")
                bars.update(bar, completed=run.steps, status=status)
                bars.line(f"[{run.steps:>8d} steps] {status}")
                if run.steps >= next_ckpt and run.steps < total:
                    next_ckpt = (run.steps // every + 1) * every
                    run.checkpoint()
        if checkpoint_step(newest_checkpoint(run_dir) or "") != run.steps:
            run.checkpoint()
        run.write_final()
    finally:
        run.close()
    return run_dir
