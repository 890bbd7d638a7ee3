"""``sim2real train``: stable-baselines3 training driven by a resolved launch file.

Run directory layout::

    RUN_DIR/launch.yaml          resolved launch file (what ran, every default filled in)
    RUN_DIR/versions.json        package versions
    RUN_DIR/tb/                  TensorBoard logs
    RUN_DIR/checkpoints/LATEST   name of the newest complete checkpoint directory (written atomically)
    RUN_DIR/checkpoints/step-N/  model.zip (+ replay_buffer.npz/.json for off-policy) + launch.yaml + versions.json
                                 + state.json, manifest.json last (:mod:`sim2real.checkpoints`)
    RUN_DIR/evaluations.jsonl    one line per periodic evaluation
    RUN_DIR/final/model.zip      the model at the end of the budget
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from sim2real.checkpoints import (
    checkpoint_step, newest_checkpoint, package_versions, resume_point, run_model_path, write_checkpoint,
)
from sim2real.env_factory import make_batched_vec_env, make_env_fn
from sim2real.errors import UserError
from sim2real.io import append_jsonl, atomic_write_json
from sim2real.launch import dump
from sim2real.replay_buffers import resume_replay_buffer, save_replay_buffer
from sim2real.sb3_safe_load import build_model, load_sb3_model
from sim2real.vec_normalize import load_normalizer, restore_statistics, save_statistics


def make_vec_env(config: dict[str, Any], n_envs: int, seed_offset: int = 0):
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if config["env"].get("simulator") == "batched" and n_envs == config["n_envs"]:  # vehicles of the numpy model
        return make_batched_vec_env(config, seed_offset)
    if config.get("backend") == "ray" and n_envs == config["n_envs"]:  # the training envs, in Ray actors
        from sim2real.ray_backend.vec_env import ray_vec_env

        return ray_vec_env(config, seed_offset)
    fns = [make_env_fn(config, rank, seed_offset) for rank in range(n_envs)]
    vec = SubprocVecEnv(fns) if n_envs > 1 else DummyVecEnv(fns)
    vec.seed(config["seed"] + seed_offset)
    return vec


# --- evaluation ------------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    episodes: int
    success_rate: float
    mean_return: float
    std_return: float

    def as_dict(self) -> dict[str, float]:
        return {"episodes": self.episodes, "success_rate": self.success_rate,
                "mean_return": self.mean_return, "std_return": self.std_return}


def evaluate(model, env: gym.Env, episodes: int, seed: int,
             progress: Callable[[int, int, str], None] | None = None,
             normalize: Callable[[Any], Any] | None = None) -> EvalResult:
    """Run ``episodes`` deterministic episodes; success is ``info["is_success"]`` at the last step. ``progress``
    gets (episodes done, episodes, successes so far) after each episode; ``normalize`` maps each observation to
    what the model acts on (``normalize.obs``)."""
    returns, successes = [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs if normalize is None else normalize(obs), deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        successes.append(bool(info.get("is_success", False)))
        if progress is not None:
            progress(episode + 1, episodes, f"{sum(successes)}/{episode + 1} succeeded")
    return EvalResult(episodes, float(np.mean(successes)), float(np.mean(returns)), float(np.std(returns)))


# --- checkpoints ------------------------------------------------------------------------------------------------
latest_checkpoint = newest_checkpoint  # the run's newest complete checkpoint folder (the name callers use)


def save_checkpoint(model, run_dir: str, config: dict[str, Any], keep: int = 2, curriculum=None) -> str:
    """Checkpoint ``model`` at its step (:func:`sim2real.checkpoints.write_checkpoint`: complete before published):
    model.zip, the replay buffer as arrays (off-policy), launch.yaml, versions.json, state.json, curriculum.json."""
    def fill(folder: str) -> None:
        _save_normalization(model, folder)
        model.save(os.path.join(folder, "model.zip"))
        if getattr(model, "replay_buffer", None) is not None:
            save_replay_buffer(model.replay_buffer, folder)
        dump(config, os.path.join(folder, "launch.yaml"))
        atomic_write_json(os.path.join(folder, "versions.json"), package_versions())
        atomic_write_json(os.path.join(folder, "state.json"), {"num_timesteps": int(model.num_timesteps)})
        if curriculum is not None:
            curriculum.save(folder)

    return write_checkpoint(run_dir, model.num_timesteps, fill, keep)


def _save_normalization(model, folder: str) -> None:
    """The model's VecNormalize statistics (``normalize``) as JSON in ``folder``; nothing without one."""
    vec = model.get_vec_normalize_env()
    if vec is not None:
        save_statistics(vec, folder)


def _observation_normalizer(model) -> Callable[[Any], Any] | None:
    """What periodic evaluation applies to an observation: the training VecNormalize's current statistics."""
    vec = model.get_vec_normalize_env()
    return vec.normalize_obs if vec is not None and vec.norm_obs else None


def _curriculum_callback(config: dict[str, Any], env, model, run_dir: str):
    """The launch file's curriculum as an SB3 callback (None without one); it resumes itself from LATEST."""
    if config.get("curriculum") is None:
        return None
    from randomizers.curricula import build_teacher
    from randomizers.curricula.sb3 import CurriculumCallback
    from randomizers.params import ParamSpace

    space = ParamSpace.from_dict(env.env_method("get_randomization_space", indices=[0])[0])
    try:
        teacher = build_teacher({"name": config["curriculum"], **(config.get("curriculum_options") or {})},
                                space, config["n_envs"], config["seed"])
        callback = CurriculumCallback(teacher, run_dir=run_dir)
        callback.check(model, env)
    except ValueError as err:
        raise UserError(f"curriculum: {err}") from None
    return callback


def _training_callback(config: dict[str, Any], run_dir: str, eval_env: gym.Env, curriculum=None):
    from stable_baselines3.common.callbacks import BaseCallback

    class PeriodicEvalAndCheckpoint(BaseCallback):
        """Evaluates every ``eval.every_steps`` and checkpoints every ``checkpoint.every_steps`` env steps."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = self.next_ckpt = 0

        def _on_training_start(self) -> None:
            done = self.model.num_timesteps
            self.next_eval = (done // config["eval"]["every_steps"] + 1) * config["eval"]["every_steps"]
            self.next_ckpt = (done // config["checkpoint"]["every_steps"] + 1) * config["checkpoint"]["every_steps"]

        def _on_step(self) -> bool:
            steps = self.model.num_timesteps
            if steps >= self.next_eval:
                self.next_eval += config["eval"]["every_steps"]
                result = evaluate(self.model, eval_env, config["eval"]["episodes"], config["seed"] + 10_000,
                                  normalize=_observation_normalizer(self.model))
                record = {"timesteps": steps, "wall_time_s": time.time(), **result.as_dict()}
                append_jsonl(os.path.join(run_dir, "evaluations.jsonl"), record)
                self.logger.record("eval/success_rate", result.success_rate)
                self.logger.record("eval/mean_return", result.mean_return)
                print(f"[{steps:>8d} steps] eval success {result.success_rate:.0%}  return {result.mean_return:.2f}",
                      flush=True)
            if steps >= self.next_ckpt:
                self.next_ckpt += config["checkpoint"]["every_steps"]
                if steps < config["budget"]["total_timesteps"]:  # train() checkpoints the end of the budget
                    save_checkpoint(self.model, run_dir, config, curriculum=curriculum)
            return True

    return PeriodicEvalAndCheckpoint()


def new_run_dir(config: dict[str, Any]) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(config["output_dir"], f"{config['name']}-{stamp}-s{config['seed']}")
    path, suffix = base, 1
    while os.path.exists(path):
        suffix += 1
        path = f"{base}-{suffix}"
    return path


def _learn_from_demonstrations(model, config: dict[str, Any]) -> None:
    """``algo.demonstrations`` scripted episodes into the replay buffer, then ``algo.bc_steps`` of cloning."""
    from sim2real.demonstrations import add_demonstrations, clone_actor

    algo = config["algo"]
    demos = add_demonstrations(model, config, algo["demonstrations"])
    print(f"replay buffer seeded with {algo['demonstrations']} scripted episodes (their success "
          f"{demos.success_rate:.0%})", flush=True)
    if algo.get("bc_steps"):
        loss = clone_actor(model, demos, algo["bc_steps"], algo["batch_size"], config["seed"])
        print(f"actor cloned from them in {algo['bc_steps']} steps (last loss {loss:.4f})", flush=True)


def train(config: dict[str, Any], run_dir: str | None = None, resume: bool = False,
          progress: bool | None = None) -> str:
    """Train per ``config``; with ``resume`` continue ``run_dir`` from its newest checkpoint. Returns the run dir."""
    import torch

    torch.set_num_threads(1)
    run_dir = run_dir or new_run_dir(config)
    os.makedirs(run_dir, exist_ok=True)
    if not resume:
        dump(config, os.path.join(run_dir, "launch.yaml"))
        atomic_write_json(os.path.join(run_dir, "versions.json"), package_versions())
    if config.get("curriculum") == "poet":  # several agents: POET's own driver
        from sim2real.poet_train import train_poet

        return train_poet(config, run_dir, resume, progress)
    if config["policy"] == "rl2":
        return _train_rl2(config, run_dir, resume, progress)
    if resume and _finished(config, run_dir):
        print(f"{run_dir} already finished its budget of {config['budget']['total_timesteps']} steps; "
              f"nothing to do", flush=True)
        return run_dir
    checkpoint = resume_point(run_dir) if resume else None
    from sim2real.vec_normalize import wrap

    env = wrap(make_vec_env(config, config["n_envs"]), config)
    eval_env = make_env_fn(config, rank=0, seed_offset=100_000)()
    try:
        tb_dir = os.path.join(run_dir, "tb")
        if checkpoint is not None:
            model = load_sb3_model(config, os.path.join(checkpoint, "model.zip"), env, tensorboard_log=tb_dir)
            if model.get_vec_normalize_env() is not None:
                restore_statistics(model.get_vec_normalize_env(), checkpoint)
            resume_replay_buffer(model, checkpoint, config["algo"].get("learning_starts", 0))
            print(f"resuming {run_dir} from {os.path.basename(checkpoint)}", flush=True)
        else:
            model = build_model(config, env, tb_dir)
            if config["algo"].get("demonstrations"):
                _learn_from_demonstrations(model, config)
        curriculum = _curriculum_callback(config, env, model, run_dir)
        callback = _training_callback(config, run_dir, eval_env, curriculum)
        if curriculum is not None:  # first, so its state is current when a checkpoint is written
            from stable_baselines3.common.callbacks import CallbackList

            callback = CallbackList([curriculum, callback])
        remaining = config["budget"]["total_timesteps"] - model.num_timesteps
        if remaining > 0:
            show = sys.stdout.isatty() if progress is None else progress
            model.learn(remaining, callback=callback, reset_num_timesteps=checkpoint is None, tb_log_name="train",
                        progress_bar=show)
        if checkpoint_step(newest_checkpoint(run_dir) or "") != model.num_timesteps:
            save_checkpoint(model, run_dir, config, curriculum=curriculum)
        os.makedirs(os.path.join(run_dir, "final"), exist_ok=True)
        _save_normalization(model, os.path.join(run_dir, "final"))  # before the model: a model has its statistics
        model.save(os.path.join(run_dir, "final", ".model.tmp.zip"))
        os.replace(os.path.join(run_dir, "final", ".model.tmp.zip"), os.path.join(run_dir, "final", "model.zip"))
    finally:
        env.close()
        eval_env.close()
    return run_dir


def _finished(config: dict[str, Any], run_dir: str) -> bool:
    """True when the run has its final model and a checkpoint at the end of its budget (reads only)."""
    newest = newest_checkpoint(run_dir)
    return os.path.isfile(os.path.join(run_dir, "final", "model.zip")) and newest is not None \
        and (checkpoint_step(newest) or 0) >= config["budget"]["total_timesteps"]


RL2_CHECKPOINT = "checkpoint.pt"


def _trial_curriculum(config: dict[str, Any], run_dir: str):
    """Factory of the launch file's curriculum for RL² trials (one sampled world per trial); it writes
    ``RUN_DIR/curriculum_history.jsonl`` as the SB3 path does."""
    from randomizers.curricula import build_teacher
    from randomizers.curricula.store import CurriculumHistory
    from randomizers.curricula.trials import TrialCurriculum, setter_for
    from randomizers.params import ParamSpace

    def build(vec_env) -> TrialCurriculum:
        space = ParamSpace.from_dict(vec_env.env_method("get_randomization_space", indices=[0])[0])
        options = {"name": config["curriculum"], **(config.get("curriculum_options") or {})}
        try:
            teacher = build_teacher(options, space, config["n_envs"], config["seed"])
        except ValueError as err:
            raise UserError(f"curriculum: {err}") from None
        return TrialCurriculum(teacher, setter_for(vec_env), CurriculumHistory(run_dir))

    return build


def rl2_status(stats: dict[str, float]) -> str:
    """The RL² trainer's last iteration in a few words: mean trial return, episode success rate, steps/s."""
    parts = [f"trial return {stats['trial_return_mean']:.2f}"] if "trial_return_mean" in stats else []
    if "episode_success_rate" in stats:
        parts.append(f"success {stats['episode_success_rate']:.0%}")
    return ", ".join(parts + [f"{stats.get('steps_per_s', 0.0):.0f} steps/s"])


def _train_rl2(config: dict[str, Any], run_dir: str, resume: bool, progress: bool | None = None) -> str:
    """``policy: rl2``: recurrent PPO (:func:`policies.ppo.train_rl2`) on the launch file's (randomized) envs.

    Each worker env becomes a :class:`policies.trial.TrialWrapper` of ``rl2.episodes_per_trial`` episodes; the
    randomizers resample only at trial starts. The run keeps ``checkpoint.pt`` (atomic) and ``progress.jsonl``.
    A bar (steps, trial return, success, ETA) shows progress when ``progress`` (default: on a terminal), else one
    line every ``eval.every_steps`` steps.
    """
    from sim2real.progress import progress_bars
    from policies.config import RL2Config
    from policies.errors import ConfigError
    from policies.ppo import train_rl2
    from policies.subproc import EnvWorkerError

    from sim2real.launch.loader import rl2_settings

    if resume and os.path.isfile(os.path.join(run_dir, RL2_CHECKPOINT)):
        print(f"resuming {run_dir} from {RL2_CHECKPOINT}", flush=True)
    elif resume:
        print(f"{run_dir} has no {RL2_CHECKPOINT} yet: training it from the start", flush=True)
    log_every = max(1, config["eval"]["every_steps"])
    next_log = [log_every]

    env_fns = [make_env_fn(config, rank) for rank in range(config["n_envs"])]
    with progress_bars(progress) as bars:
        bar = bars.add("RL² training", total=config["budget"]["total_timesteps"])

        def report(stats: dict[str, float]) -> None:
            bars.update(bar, completed=stats["global_step"], status=rl2_status(stats))
            if stats["global_step"] >= next_log[0] and "trial_return_mean" in stats:
                next_log[0] += log_every
                bars.line(f"[{int(stats['global_step']):>8d} steps] {rl2_status(stats)}")

        vec_env = None
        episodes = RL2Config.from_dict(rl2_settings(config)).episodes_per_trial
        if config.get("backend") == "ray":  # trial envs in Ray actors
            from sim2real.ray_backend.trial_vec_env import ray_trial_vec_env

            vec_env, env_fns = ray_trial_vec_env(config, episodes), None
        elif config["env"].get("simulator") == "batched":  # n_envs vehicles of the numpy model, trials per vehicle
            from policies.vec import SB3TrialVecEnv

            vec_env, env_fns = SB3TrialVecEnv(make_batched_vec_env(config, 0, episodes)), None
        try:
            train_rl2(rl2_settings(config), env_fns, run_dir, vec_env=vec_env, resume=resume, on_iteration=report,
                      curriculum=_trial_curriculum(config, run_dir) if config.get("curriculum") else None)
        except ConfigError as err:
            raise UserError(f"rl2: {err}") from None
        except EnvWorkerError as err:
            raise UserError(f"{'ray' if vec_env else 'rl2.workers'}: {str(err).splitlines()[0]}") from None
        finally:
            if vec_env is not None:
                vec_env.close()
    return run_dir


def load_model(config: dict[str, Any], path: str, env: gym.Env):
    """Load a trained SB3 model bound to ``env`` (HER models need one); nothing in the file is unpickled
    (:func:`sim2real.sb3_safe_load.load_sb3_model`)."""
    return load_sb3_model(config, path, env)


def evaluate_run(run_dir: str, episodes: int, seed: int | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> EvalResult:
    config, path = run_model_path(run_dir)
    env = make_env_fn(config, rank=0, seed_offset=200_000)()
    try:
        model = load_model(config, path, env)
        result = evaluate(model, env, episodes, config["seed"] + 200_000 if seed is None else seed, progress,
                          load_normalizer(path, config))
    finally:
        env.close()
    atomic_write_json(os.path.join(run_dir, "eval.json"), result.as_dict())
    return result


def summarize(path: str) -> list[dict[str, Any]]:
    """The evaluation history of a run (``evaluations.jsonl``)."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
