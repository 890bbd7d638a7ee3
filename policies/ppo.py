"""Recurrent PPO for RL², readable top to bottom (in the spirit of CleanRL's ``ppo.py``).

Differences from episodic recurrent PPO (e.g. sb3-contrib's RecurrentPPO):

* The hidden state is reset only at *trial* starts; inner-episode ends are an input flag.
* GAE runs across inner-episode ends; only trial ends stop bootstrapping. A trial cut short
  (truncated) is bootstrapped with the value of its last observation.
* Truncated BPTT: the rollout (T steps × N envs) is cut into sequences of ``seq_len`` steps, each
  started from the hidden state recorded during the rollout; trial starts inside a sequence zero
  the state (masks), so no gradient crosses a trial boundary.
* Observation and reward-input normalisation live in the model (buffers, exported with it) and are
  updated after each PPO update, so a rollout and its update see the same statistics.

Entry point: :func:`train_rl2`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policies.actor_critic import RecurrentActorCritic
from policies.checkpoint import atomic_torch_save, atomic_write_text, model_from_checkpoint, safe_load
from policies.config import RL2Config
from policies.errors import ConfigError, PolicyFileError
from policies.normalization import ReturnScaler
from policies.run_files import drop_jsonl_after, drop_tensorboard_after, remove_temp_files
from policies.spaces import PolicySpec, first_prev_action, make_spec, prev_action_input, raw_to_env_action
from policies.trial import TrialWrapper, find_trial_wrapper
from policies.subproc import pipeline_blocks
from policies.vec import SyncTrialVecEnv, TrialStep, TrialVecEnv

CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "snapshots"
PROGRESS = "progress.jsonl"


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, trial_ends: torch.Tensor, last_values: torch.Tensor,
                gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a (T, N) rollout.

    ``trial_ends[t]`` is 1 where a trial ended at step t (no bootstrap from step t+1); inner-episode
    ends are deliberately *not* an argument. ``last_values`` (N,) is V of the observation after the
    rollout. Returns (advantages, returns), both (T, N).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    gae = torch.zeros_like(last_values)
    next_value = last_values
    for t in reversed(range(T)):
        nonterminal = 1.0 - trial_ends[t]
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        gae = delta + gamma * lam * nonterminal * gae
        adv[t] = gae
        next_value = values[t]
    return adv, adv + values


@dataclass
class Rollout:
    """Storage for one iteration; leading dims (T, N)."""

    obs: dict[str, torch.Tensor]
    prev_action: torch.Tensor
    prev_reward: torch.Tensor
    prev_done: torch.Tensor
    starts: torch.Tensor
    raw_actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    trial_ends: torch.Tensor
    seq_states: torch.Tensor  # (T / seq_len, S, N, H): state before each sequence's first step
    keep: torch.Tensor | None = None  # (T, N) 1 where a step may be trained on (None: every step)


@dataclass
class TrialTrace:
    """One finished trial as the critic saw it, for curricula that score levels by the value loss (PLR).

    ``rewards`` are the training rewards (scaled like the critic's targets when ``normalize_reward``), ``values``
    the critic's estimates at each step, ``last_value`` V of the observation after a truncated trial (0 when it
    ended); ``gamma`` and ``gae_lambda`` are the trainer's.
    """

    rewards: list[float]
    values: list[float]
    last_value: float
    gamma: float
    gae_lambda: float


class TrialHook(Protocol):
    """What :func:`train_rl2` calls on a trial curriculum (e.g. ``randomizers.curricula.trials.TrialCurriculum``).

    ``start`` gets the env steps already done (non-zero on resume); ``trial_finished`` gets a :class:`TrialTrace`
    when ``needs_value_signals``; ``training_flags`` says per env whether its running trial may be trained on
    (robust PLR evaluates new levels without training on them); ``end_iteration`` follows every rollout and update.
    """

    needs_value_signals: bool

    def start(self, reset: Callable[[], Any], num_envs: int | None = None, timesteps: int = 0) -> Any: ...

    def trial_finished(self, env_index: int, trial_return: float, trace: TrialTrace | None = None) -> None: ...

    def training_flags(self) -> list[bool]: ...

    def end_iteration(self, timesteps: int) -> None: ...

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    """What :func:`train_rl2` returns: checkpoint path, steps done, wall time (s), last stats."""

    checkpoint: Path
    global_step: int
    wall_time_s: float
    stats: dict[str, float]


class _Carry:
    """Per-env RL² inputs and hidden state carried between steps and iterations."""

    def __init__(self, model: RecurrentActorCritic, n: int) -> None:
        self.action_spec = model.spec.action
        self.state = model.initial_state(n)
        self.prev_action = first_prev_action(n, self.action_spec)
        self.prev_reward = torch.zeros(n)
        self.prev_done = torch.zeros(n)
        self.start = torch.ones(n)
        self.trace_rewards: list[list[float]] = [[] for _ in range(n)]  # the running trials (for TrialTrace)
        self.trace_values: list[list[float]] = [[] for _ in range(n)]

    def advance(self, raw: torch.Tensor, reward: torch.Tensor, episode_done: torch.Tensor,
                trial_end: torch.Tensor, envs: slice = slice(None)) -> None:
        """Carry one step of the envs ``envs`` (the rows of the other arguments) to the next step's inputs."""
        keep = (1.0 - trial_end).unsqueeze(-1)
        self.prev_action[envs] = prev_action_input(raw, self.action_spec) * keep + \
            first_prev_action(len(trial_end), self.action_spec) * (1.0 - keep)
        self.prev_reward[envs] = reward * keep.squeeze(-1)
        self.prev_done[envs] = episode_done * keep.squeeze(-1)
        self.start[envs] = trial_end


class _Buffer:
    """Rollout tensors of shape (T, N, ...), allocated at their first write (dtype and trailing shape from it)."""

    def __init__(self, steps: int, num_envs: int) -> None:
        self.shape = (steps, num_envs)
        self.data: dict[str, torch.Tensor] = {}

    def put(self, key: str, t: int, envs: slice, value: torch.Tensor) -> None:
        if key not in self.data:
            self.data[key] = torch.zeros((*self.shape, *value.shape[1:]), dtype=value.dtype)
        self.data[key][t, envs] = value


class _Stepper:
    """Steps a vec env's stages: with ``step_async``/``step_wait`` (and ``stages``) the stages step while the trainer
    computes the other stages' actions; any other :class:`~policies.vec.TrialVecEnv` is one stage stepped at once."""

    def __init__(self, env: TrialVecEnv) -> None:
        self.env = env
        self.pipelined = all(hasattr(env, name) for name in ("stages", "step_async", "step_wait"))
        self.stages: list[range] = list(getattr(env, "stages")) if self.pipelined else [range(env.num_envs)]
        self.done: TrialStep | None = None

    def stage_of(self, block: range) -> int:
        for s, stage in enumerate(self.stages):
            if block.start in stage:
                if block.stop > stage.stop:
                    raise ValueError(f"envs {block.start}-{block.stop - 1} straddle two stages of the vec env")
                return s
        raise ValueError(f"env {block.start} is in no stage of the vec env")

    def send(self, s: int, action: torch.Tensor) -> None:
        """Start stage ``s`` stepping ``action`` (its rows)."""
        if self.pipelined:
            self.env.step_async(s, action)  # type: ignore[attr-defined]
        else:
            self.done = self.env.step(action)

    def wait(self, s: int) -> TrialStep:
        """Stage ``s``'s step (rows in env order)."""
        if self.pipelined:
            return self.env.step_wait(s)  # type: ignore[attr-defined]
        assert self.done is not None
        done, self.done = self.done, None
        return done


def _rows(step: TrialStep, rows: slice) -> TrialStep:
    """The envs ``rows`` of a batched step."""
    success = step.episode_success
    return TrialStep({k: v[rows] for k, v in step.obs.items()}, step.reward[rows], step.episode_done[rows],
                     step.trial_terminated[rows], step.trial_truncated[rows],
                     None if step.final_obs is None else {k: v[rows] for k, v in step.final_obs.items()},
                     None if success is None else success[rows])


def collect(model: RecurrentActorCritic, env: TrialVecEnv, obs: dict[str, torch.Tensor], carry: _Carry,
            cfg: RL2Config, scaler: ReturnScaler | None,
            trial_returns: list[float], running: torch.Tensor,
            hook: TrialHook | None = None,
            episode_outcomes: list[bool] | None = None) -> tuple[Rollout, dict[str, torch.Tensor]]:
    """Run ``cfg.rollout_steps`` steps in every env; returns the rollout and the next observation.

    ``running`` (N,) accumulates raw trial returns; finished trials are appended to ``trial_returns`` and reported
    to ``hook`` (with their :class:`TrialTrace` when it needs value signals; its training flags fill
    ``Rollout.keep``), and the success of every finished episode goes to ``episode_outcomes`` (when the envs report
    ``is_success``).

    The envs are handled in the blocks of :func:`~policies.subproc.pipeline_blocks` (two halves), block after block
    and step after step: the learner's work for one block (the previous step's results, then the next actions) runs
    while a vec env with stages (:class:`~policies.subproc.SubprocTrialVecEnv`, 2+ workers) steps the other. The
    order of every computation is the same with any vec env, so results do not depend on the worker count.
    """
    T, N, L = cfg.rollout_steps, env.num_envs, cfg.seq_len
    head = model.actor_head
    traced = hook is not None and bool(getattr(hook, "needs_value_signals", False))
    buf = _Buffer(T, N)
    seq_states = torch.zeros(T // L, *carry.state.shape)
    stepper = _Stepper(env)
    blocks = [slice(b.start, b.stop) for b in pipeline_blocks(N)]
    stage_of = [stepper.stage_of(range(b.start, b.stop)) for b in blocks]
    first_in_stage = [b == 0 or stage_of[b - 1] != stage_of[b] for b in range(len(blocks))]
    last_in_stage = [b == len(blocks) - 1 or stage_of[b + 1] != stage_of[b] for b in range(len(blocks))]
    obs = {k: v.clone() for k, v in obs.items()}  # rows are replaced block by block
    actions: torch.Tensor | None = None  # (N, ...) env actions of the step being computed
    stage_step: TrialStep | None = None

    def act(b: int, t: int) -> None:
        """Block ``b``'s policy step ``t``: forward, sample, record; its stage is sent when all its blocks are."""
        nonlocal actions
        envs = blocks[b]
        if t % L == 0:
            seq_states[t // L][:, envs] = carry.state[:, envs]
        state = carry.state[:, envs] * (1.0 - carry.start[envs]).view(1, -1, 1)
        block_obs = {k: v[envs] for k, v in obs.items()}
        params, value, carry.state[:, envs] = model.step(block_obs, carry.prev_action[envs],
                                                         carry.prev_reward[envs], carry.prev_done[envs], state)
        raw = head.sample(params)
        if hook is not None:
            buf.put("keep", t, envs, torch.tensor(hook.training_flags(), dtype=torch.float32)[envs])
        for key, val in block_obs.items():
            buf.put("obs/" + key, t, envs, val)
        for key, val in (("pa", carry.prev_action[envs]), ("pr", carry.prev_reward[envs]),
                         ("pd", carry.prev_done[envs]), ("st", carry.start[envs]), ("raw", raw), ("params", params),
                         ("v", value)):
            buf.put(key, t, envs, val)
        action = raw_to_env_action(raw, model.spec.action)
        if actions is None:
            actions = torch.zeros((N, *action.shape[1:]), dtype=action.dtype)
        actions[envs] = action
        if last_in_stage[b]:
            stage = stepper.stages[stage_of[b]]
            stepper.send(stage_of[b], actions[stage.start:stage.stop])

    def record(b: int, t: int, step: TrialStep) -> None:
        """Block ``b``'s env step ``t`` (``step``: its rows): rewards, trial ends, hooks, next inputs."""
        envs = blocks[b]
        first = envs.start
        raw = buf.data["raw"][t, envs]
        trial_end = torch.maximum(step.trial_terminated, step.trial_truncated)
        reward = step.reward.float()
        train_r = scaler(reward, trial_end, envs) if scaler is not None else reward.clone()
        value = buf.data["v"][t, envs]
        if traced:
            for j in range(len(reward)):
                carry.trace_rewards[first + j].append(float(train_r[j]))
                carry.trace_values[first + j].append(float(value[j]))
        v_final = torch.zeros(len(reward))
        if step.final_obs is not None and bool(step.trial_truncated.any()):
            _, v_final, _ = model.step(step.final_obs, prev_action_input(raw, carry.action_spec), reward,
                                       step.episode_done, carry.state[:, envs])
            train_r = train_r + cfg.gamma * v_final * step.trial_truncated
        buf.put("r", t, envs, train_r)
        buf.put("end", t, envs, trial_end)
        running[envs] += reward
        if episode_outcomes is not None and step.episode_success is not None:
            ended = step.episode_done.bool() | trial_end.bool()
            episode_outcomes.extend(bool(s) for s in step.episode_success[ended].tolist())
        for j in torch.nonzero(trial_end).flatten().tolist():
            i = first + j
            trial_returns.append(float(running[i]))
            if hook is not None:
                trace = TrialTrace(carry.trace_rewards[i], carry.trace_values[i],
                                   float(v_final[j] * step.trial_truncated[j]), cfg.gamma, cfg.gae_lambda) \
                    if traced else None
                hook.trial_finished(i, float(running[i]), trace=trace)
                carry.trace_rewards[i], carry.trace_values[i] = [], []
            running[i] = 0.0
        carry.advance(raw, reward, step.episode_done, trial_end, envs)
        for key, val in step.obs.items():
            obs[key][envs] = val

    with torch.no_grad():
        for b in range(len(blocks)):
            act(b, 0)
        for t in range(T):
            for b, envs in enumerate(blocks):
                stage = stepper.stages[stage_of[b]]
                if first_in_stage[b]:
                    stage_step = stepper.wait(stage_of[b])
                assert stage_step is not None
                whole = len(stage) == envs.stop - envs.start
                record(b, t, stage_step if whole else _rows(stage_step, slice(envs.start - stage.start,
                                                                                  envs.stop - stage.start)))
                if t + 1 < T:
                    act(b, t + 1)
    data = buf.data
    rollout = Rollout(
        obs={k: data["obs/" + k] for k in obs}, prev_action=data["pa"], prev_reward=data["pr"],
        prev_done=data["pd"], starts=data["st"], raw_actions=data["raw"],
        logp=head.log_prob(data["params"], data["raw"]), values=data["v"],
        rewards=data["r"], trial_ends=data["end"], seq_states=seq_states, keep=_keep_mask(data.get("keep")))
    return rollout, obs


def _keep_mask(flags: torch.Tensor | None) -> torch.Tensor | None:
    """(T, N) training mask from per-step flags; None when every step may be trained on, or none may (then the
    rollout is kept whole rather than skipping the update, as the SB3 curriculum callback does)."""
    if flags is None:
        return None
    return None if bool(flags.all()) or not bool(flags.any()) else flags


def _sequences(x: torch.Tensor, L: int) -> torch.Tensor:
    """(T, N, ...) → (L, T/L · N, ...): sequence j = chunk j // N of env j % N."""
    T, N = x.shape[:2]
    return x.reshape(T // L, L, N, *x.shape[2:]).transpose(0, 1).reshape(L, (T // L) * N, *x.shape[2:])


def ppo_update(model: RecurrentActorCritic, optimizer: torch.optim.Optimizer, ro: Rollout, adv: torch.Tensor,
               returns: torch.Tensor, cfg: RL2Config, gen: torch.Generator,
               train_actor: bool = True) -> dict[str, float]:
    """PPO epochs over minibatches of whole BPTT sequences; returns mean losses and diagnostics.

    With ``train_actor`` False only the value loss is optimised, and only in the critic's own parameters (critic
    warm-up: the actor, including layers it shares with the critic, does not change).
    """
    L = cfg.seq_len
    seq = {
        "pa": _sequences(ro.prev_action, L), "pr": _sequences(ro.prev_reward, L),
        "pd": _sequences(ro.prev_done, L), "st": _sequences(ro.starts, L), "raw": _sequences(ro.raw_actions, L),
        "logp": _sequences(ro.logp, L), "v": _sequences(ro.values, L), "adv": _sequences(adv, L),
        "ret": _sequences(returns, L),
    }
    keep = None if ro.keep is None else _sequences(ro.keep, L)
    obs = {k: _sequences(v, L) for k, v in ro.obs.items()}
    states = ro.seq_states.permute(1, 0, 2, 3).reshape(ro.seq_states.shape[1], -1, ro.seq_states.shape[-1])
    n_seq = seq["st"].shape[1]
    mb = n_seq // cfg.num_minibatches
    log: dict[str, list[float]] = {k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")}
    frozen: list[nn.Parameter] = []  # parameters whose gradients are dropped (the critic warm-up's non-critic ones)
    if not train_actor:
        critic_own = {id(p) for p in model.critic_only_parameters()}
        frozen = [p for p in model.parameters() if id(p) not in critic_own]
    for _ in range(cfg.epochs):
        perm = torch.randperm(n_seq, generator=gen)
        kls = []
        for start in range(0, n_seq, mb):
            idx = perm[start:start + mb]
            m = None if keep is None else keep[:, idx]
            if m is not None and not bool(m.any()):
                continue  # only steps of trials that are evaluated, not trained on

            def avg(x: torch.Tensor) -> torch.Tensor:
                return x.mean() if m is None else (x * m).sum() / m.sum()

            params, values, _ = model.unroll({k: v[:, idx] for k, v in obs.items()}, seq["pa"][:, idx],
                                             seq["pr"][:, idx], seq["pd"][:, idx], states[:, idx], seq["st"][:, idx])
            logp = model.actor_head.log_prob(params, seq["raw"][:, idx])
            log_ratio = logp - seq["logp"][:, idx]
            ratio = log_ratio.exp()
            a = seq["adv"][:, idx]
            if cfg.normalize_advantages:
                mu = avg(a)
                std = a.std() if m is None else ((a - mu).pow(2) * m).sum().div((m.sum() - 1).clamp(min=1)).sqrt()
                a = (a - mu) / (std + 1e-8)
            pg_loss = avg(torch.maximum(-a * ratio, -a * ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)))
            ret, old_v = seq["ret"][:, idx], seq["v"][:, idx]
            v_loss = (values - ret).pow(2)
            if cfg.clip_value:
                v_clip = old_v + (values - old_v).clamp(-cfg.clip_range, cfg.clip_range)
                v_loss = torch.maximum(v_loss, (v_clip - ret).pow(2))
            v_loss = 0.5 * avg(v_loss)
            entropy = avg(model.actor_head.entropy(params))
            loss = cfg.vf_coef * v_loss + ((pg_loss - cfg.ent_coef * entropy) if train_actor else 0.0)
            optimizer.zero_grad()
            loss.backward()
            for param in frozen:
                param.grad = None
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                kl = avg((ratio - 1) - log_ratio).item()
            kls.append(kl)
            for k, v in (("policy_loss", pg_loss.item()), ("value_loss", v_loss.item()), ("entropy", entropy.item()),
                         ("approx_kl", kl), ("clipfrac", avg(((ratio - 1).abs() > cfg.clip_range).float()).item())):
                log[k].append(v)
        if cfg.target_kl > 0 and kls and float(np.mean(kls)) > cfg.target_kl:
            break
    out = {k: float(np.mean(v)) for k, v in log.items()}
    var_ret = returns.var()
    out["explained_variance"] = float(1 - (returns - ro.values).var() / var_ret) if var_ret > 0 else float("nan")
    return out


def make_vec_env(cfg: RL2Config, env_fns: Sequence[Callable[[], gym.Env]]) -> TrialVecEnv:
    """Vectorize env factories, adding a :class:`TrialWrapper` (K = ``episodes_per_trial``) where missing: in this
    process (``cfg.workers`` 0) or in ``cfg.workers`` worker processes
    (:class:`~policies.subproc.SubprocTrialVecEnv`)."""

    def wrap(fn: Callable[[], gym.Env]) -> Callable[[], gym.Env]:
        def make() -> gym.Env:
            env = fn()
            return env if find_trial_wrapper(env) is not None else TrialWrapper(env, cfg.episodes_per_trial)
        return make

    if cfg.workers:
        from policies.subproc import SubprocTrialVecEnv

        return SubprocTrialVecEnv([wrap(fn) for fn in env_fns], min(cfg.workers, len(env_fns)))
    return SyncTrialVecEnv([wrap(fn) for fn in env_fns])


def _check_resume(saved: Mapping[str, Any], cfg: RL2Config) -> None:
    a = RL2Config.from_dict(saved).to_dict()  # fills keys added since the checkpoint was written with defaults
    b = cfg.to_dict()
    for key in ("total_steps", "init_from", "snapshot_every", "workers"):  # a resumed run may change these
        a.pop(key, None)
        b.pop(key, None)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        raise ConfigError(f"{diff[0]}: differs from the checkpoint being resumed; use a new run_dir or the same value")


def _load_initial_weights(model: RecurrentActorCritic, spec: PolicySpec, cfg: RL2Config) -> None:
    """Copy ``cfg.init_from``'s weights into ``model``; :class:`ConfigError` when network or spaces differ."""
    try:
        trained, saved_cfg = model_from_checkpoint(safe_load(cfg.init_from))
    except PolicyFileError as err:
        raise ConfigError(f"init_from: {err}") from None
    if trained.spec != spec:
        raise ConfigError(f"init_from: {cfg.init_from} was trained with other observation/action spaces "
                          f"({_describe_spec(trained.spec)}; this run: {_describe_spec(spec)})")
    saved = saved_cfg.network
    diff = [f.name for f in fields(saved) if getattr(saved, f.name) != getattr(cfg.network, f.name)]
    if diff:
        raise ConfigError(f"init_from: {cfg.init_from} has network.{diff[0]} = {getattr(saved, diff[0])!r}, "
                          f"this run {getattr(cfg.network, diff[0])!r}")
    model.load_state_dict(trained.state_dict())


def _describe_spec(spec: PolicySpec) -> str:
    parts = ", ".join(f"{p.key}{list(p.shape)}" for p in spec.obs_parts)
    kind = "discrete" if spec.action.discrete else "box"
    return f"observations {parts}, {kind} actions of size {spec.action.n}"


def _rewind_run_files(run_dir: Path, global_step: int) -> None:
    """On resume, drop what a killed run wrote after its last checkpoint (progress lines and TensorBoard points
    past ``global_step``: they are re-run) and the temp files of the writes it was killed in."""
    drop_jsonl_after(run_dir / PROGRESS, global_step, key="global_step")
    drop_tensorboard_after(run_dir / "tb", global_step)
    remove_temp_files(run_dir, [f".{CHECKPOINT}.*", ".config.json.*", f".{PROGRESS}.*"])
    if (run_dir / SNAPSHOTS).is_dir():
        remove_temp_files(run_dir / SNAPSHOTS, [".step_*.pt.*"])


def train_rl2(config: RL2Config | Mapping[str, Any], env_fns: Sequence[Callable[[], gym.Env]] | None,
              run_dir: str | Path, *, vec_env: TrialVecEnv | None = None, resume: bool = True,
              on_iteration: Callable[[dict[str, float]], None] | None = None,
              tensorboard: bool = True,
              curriculum: Callable[[TrialVecEnv], TrialHook] | None = None) -> TrainResult:
    """Train an RL² policy with recurrent PPO.

    Args:
        config: an :class:`RL2Config` or a launch-file mapping (validated by ``RL2Config.from_dict``).
        env_fns: gymnasium env factories (one per parallel env; ``config.num_envs`` is then ignored);
            each env is wrapped in a :class:`TrialWrapper` unless it already has one.
        run_dir: where ``checkpoint.pt`` (atomic, every ``checkpoint_every`` iterations and at the end),
            ``config.json``, ``progress.jsonl`` and TensorBoard events go.
        vec_env: alternative to ``env_fns``: any :class:`~policies.vec.TrialVecEnv` (e.g. the torch
            bandit env, or :class:`~policies.vec.SB3TrialVecEnv`).
        resume: continue from ``run_dir/checkpoint.pt`` if present (envs restart with fresh trials; progress lines,
            TensorBoard points past its step and temp files of interrupted writes are dropped first); a finished
            run returns at once and writes nothing; without a checkpoint the run starts over from step 0.
        on_iteration: called after every iteration with the logged stats (for progress displays).
        tensorboard: write TensorBoard scalars.
        curriculum: builds a :class:`TrialHook` for the vec env; it pins each trial's randomization values,
            hears every finished trial's return, and its state travels in the checkpoint.
    """
    cfg = config if isinstance(config, RL2Config) else RL2Config.from_dict(config)
    if (env_fns is None) == (vec_env is None):
        raise ConfigError("env: pass exactly one of env_fns or vec_env")
    env = vec_env if vec_env is not None else make_vec_env(cfg, env_fns or [])
    try:
        hook = curriculum(env) if curriculum is not None else None
        cfg.validate(num_envs=env.num_envs)
    except BaseException:
        if vec_env is None:
            env.close()  # worker processes too
        raise
    cfg = replace(cfg, num_envs=env.num_envs)
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    gen = torch.Generator().manual_seed(cfg.seed)
    run_dir = Path(run_dir)

    spec = make_spec(env.observation_space, env.action_space, cfg.network.squash)
    model = RecurrentActorCritic(spec, cfg.network)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=1e-5)
    scaler = ReturnScaler(env.num_envs, cfg.gamma) if cfg.normalize_reward else None
    iteration, global_step, wall_prev = 0, 0, 0.0
    ckpt_path = run_dir / CHECKPOINT
    batch = cfg.rollout_steps * env.num_envs
    num_iterations = math.ceil(cfg.total_steps / batch)
    if resume and ckpt_path.exists():
        data = safe_load(ckpt_path)
        _check_resume(data["config"], cfg)
        iteration, global_step, wall_prev = int(data["iteration"]), int(data["global_step"]), float(data["wall_time_s"])
        _rewind_run_files(run_dir, global_step)
        if iteration >= num_iterations:  # a finished run: nothing to do, nothing rewritten
            if vec_env is None:
                env.close()
            return TrainResult(ckpt_path, global_step, wall_prev, {})
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
        if scaler is not None and "return_scaler" in data:
            scaler.load_state_dict(data["return_scaler"])
        gen.manual_seed(cfg.seed + iteration)
        if hook is not None and "curriculum" in data:
            hook.load_state_dict(data["curriculum"])
    else:
        if resume:  # no checkpoint yet (e.g. killed before its first one): the run starts over
            _rewind_run_files(run_dir, 0)
        if cfg.init_from:
            _load_initial_weights(model, spec, cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(cfg.to_dict(), indent=2), run_dir / "config.json")
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / "tb"))

    reset = lambda: env.reset(seed=cfg.seed + iteration)  # noqa: E731
    obs = hook.start(reset, num_envs=env.num_envs, timesteps=global_step) if hook is not None else reset()
    carry = _Carry(model, env.num_envs)
    running = torch.zeros(env.num_envs)
    t0, start_step = time.perf_counter(), global_step
    stats: dict[str, float] = {}

    def save() -> None:
        atomic_torch_save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": cfg.to_dict(),
            "spec": spec.to_dict(), "iteration": iteration, "global_step": global_step,
            "wall_time_s": wall_prev + time.perf_counter() - t0,
            **({"return_scaler": scaler.state_dict()} if scaler is not None else {}),
            **({"curriculum": hook.state_dict()} if hook is not None else {})}, ckpt_path)

    try:
        while iteration < num_iterations:
            if cfg.anneal_lr:
                for group in optimizer.param_groups:
                    group["lr"] = cfg.learning_rate * (1.0 - iteration / num_iterations)
            trial_returns: list[float] = []
            outcomes: list[bool] = []
            model.eval()
            ro, obs = collect(model, env, obs, carry, cfg, scaler, trial_returns, running, hook, outcomes)
            with torch.no_grad():
                state = carry.state * (1.0 - carry.start).view(1, -1, 1)
                _, last_v, _ = model.step(obs, carry.prev_action, carry.prev_reward, carry.prev_done, state)
            adv, returns = compute_gae(ro.rewards, ro.values, ro.trial_ends, last_v, cfg.gamma, cfg.gae_lambda)
            model.train()
            train_actor = global_step >= cfg.critic_warmup_steps
            stats = ppo_update(model, optimizer, ro, adv, returns, cfg, gen, train_actor=train_actor)
            if cfg.normalize_obs and train_actor:  # the normalisers feed the actor too
                rows = slice(None) if ro.keep is None else ro.keep.reshape(-1).bool()  # the trained-on steps
                model.update_normalizers({k: v.reshape(-1, *v.shape[2:])[rows] for k, v in ro.obs.items()},
                                         ro.prev_reward.reshape(-1)[rows])
            iteration += 1
            global_step += batch
            elapsed = time.perf_counter() - t0
            stats.update(iteration=iteration, global_step=global_step, wall_time_s=wall_prev + elapsed,
                         lr=optimizer.param_groups[0]["lr"], steps_per_s=(global_step - start_step) / max(elapsed, 1e-9))
            if hook is not None:
                hook.end_iteration(global_step)
                if ro.keep is not None:
                    stats["curriculum/excluded_steps"] = float((ro.keep == 0).sum())
                stats.update({k: v for k, v in hook.metrics().items() if math.isfinite(v)})
            if trial_returns:
                stats["trial_return_mean"] = float(np.mean(trial_returns))
                stats["trials"] = len(trial_returns)
            if outcomes:
                stats["episode_success_rate"] = float(np.mean(outcomes))
            if iteration % cfg.log_every == 0 or iteration == num_iterations:
                if writer is not None:
                    for k, v in stats.items():
                        writer.add_scalar(f"rl2/{k}", v, global_step)
                with open(run_dir / PROGRESS, "a", encoding="utf-8") as f:
                    f.write(json.dumps(stats) + "\n")
            if iteration % cfg.checkpoint_every == 0 or iteration == num_iterations:
                save()
            if cfg.snapshot_every and iteration % cfg.snapshot_every == 0:
                atomic_torch_save({"model": model.state_dict(), "config": cfg.to_dict(), "spec": spec.to_dict(),
                                   "global_step": global_step}, run_dir / SNAPSHOTS / f"step_{global_step:012d}.pt")
            if on_iteration is not None:
                on_iteration(stats)
    finally:
        if writer is not None:
            writer.close()
        if vec_env is None:
            env.close()
    return TrainResult(ckpt_path, global_step, wall_prev + time.perf_counter() - t0, stats)
