"""The one loader: what a policy path is, and the :class:`~sim2real.agents.BatchPolicy` that runs it.

=========================================  ============================================================
path                                        kind
=========================================  ============================================================
folder with ``pipeline.json``               vision pipeline (perception + its state policy, loaded here)
folder with ``policy.json``                 RL² export (``sim2real export``; ``policy.pt`` weights)
``*.pt`` file                               RL² checkpoint (tensors only)
run folder with ``checkpoint.pt``           RL² run (``policy: rl2``)
run folder with a model zip                 stable-baselines3 run (``final/model.zip`` or newest checkpoint)
``*.zip`` file                              stable-baselines3 model
=========================================  ============================================================

Nothing is unpickled (RL² weights: ``torch.load(weights_only=True)``; SB3 zips: :mod:`sim2real.sb3_safe_load`),
nothing is imported from training. An SB3 model needs its observation and action spaces, which its zip holds only
as pickles: they are read from the launch file's simulated environment, built once (no vectorization, no model)
and closed again. RL² policies need no environment.
"""
from __future__ import annotations

import os
from typing import Any

from sim2real.agents import BatchPolicy, OneEnv, RecurrentPolicy, Sb3Policy
from sim2real.checkpoints import run_model_path
from sim2real.errors import UserError

RL2_CHECKPOINT = "checkpoint.pt"  # the RL² trainer's tensors-only checkpoint in a run folder
KINDS = ("vision pipeline", "RL² export", "RL² checkpoint", "RL² run", "SB3 run", "SB3 model")


def policy_kind(path: str) -> str:
    """Which of :data:`KINDS` ``path`` is; a :class:`UserError` naming what was expected when it is none."""
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "pipeline.json")):
            return "vision pipeline"
        if os.path.isfile(os.path.join(path, "policy.json")):
            return "RL² export"
        if os.path.isfile(os.path.join(path, RL2_CHECKPOINT)):
            return "RL² run"
        if os.path.isfile(os.path.join(path, "launch.yaml")):
            return "SB3 run"
    elif os.path.isfile(path):
        if path.endswith(".pt"):
            return "RL² checkpoint"
        if path.endswith(".zip"):
            return "SB3 model"
    raise UserError(f"{path}: not a policy: give a run directory, an SB3 model .zip, an RL² .pt checkpoint, an RL² "
                    "export folder (policy.json) or a vision pipeline folder (pipeline.json)")


def load_batch_policy(path: str, config: dict[str, Any] | None) -> tuple[BatchPolicy, dict[str, Any]]:
    """(policy, resolved launch config) for any path of :data:`KINDS`. ``config`` is a ``--launch`` file (resolved):
    needed where the policy records none, refused when it runs another env than the policy was trained on."""
    kind = policy_kind(path)
    if kind == "vision pipeline":
        from sim2real.vision.pipeline import load_pipeline

        return load_pipeline(path, config, load_state_policy)
    if kind.startswith("RL²"):
        return _load_rl2(path, kind, config)
    return load_state_policy(path, config)


def load_state_policy(path: str, config: dict[str, Any] | None) -> tuple[Sb3Policy, dict[str, Any]]:
    """An SB3 run directory or model zip (what a vision pipeline hands its perceived state to)."""
    from sim2real.launch import recorded_launch, resolve, same_env

    if os.path.isdir(path):
        if resolve(os.path.join(path, "launch.yaml"))["policy"] == "rl2":
            raise UserError(f"{path}: an RL² run without {RL2_CHECKPOINT} (its training has not written one yet)")
        run_config, model_path = run_model_path(path)
        config = same_env(path, run_config, config)
    elif path.endswith(".zip") and os.path.isfile(path):
        recorded = recorded_launch(path)
        if recorded is None and config is None:
            raise UserError(f"{path}: a model file needs --launch (the launch file it was trained with)")
        config = same_env(path, resolve(recorded), config) if recorded is not None else config
        model_path = path
    else:
        raise UserError(f"{path}: not a stable-baselines3 run directory or model .zip")
    assert config is not None
    _check_algo(model_path, config)
    from sim2real.vec_normalize import load_normalizer

    normalize = load_normalizer(model_path, config)  # before the model: a missing statistics file is one line
    return Sb3Policy(_sb3_model(config, model_path), normalize), config


def _sb3_model(config: dict[str, Any], model_path: str) -> Any:
    """The SB3 model of ``model_path`` bound to the launch file's simulated env (its spaces; HER models keep a
    reference), which is closed again: the model only acts."""
    from sim2real.env_factory import make_env_fn
    from sim2real.sb3_safe_load import load_sb3_model

    env = make_env_fn(config, rank=0)()
    try:
        return load_sb3_model(config, model_path, env)
    finally:
        env.close()


def _check_algo(model_path: str, config: dict[str, Any]) -> None:
    """A one-line error when the model zip was trained by another algorithm than the launch file's ``algo.name``
    (read from the policy class module the zip records as text, e.g. ``stable_baselines3.sac.policies``)."""
    from sim2real.launch.schema import ALGOS
    from sim2real.sb3_safe_load import algo_class, read_model_data

    policy_class = read_model_data(model_path).get("policy_class")
    module = policy_class.get("__module__", "") if isinstance(policy_class, dict) else ""
    # the algorithms whose policies live in that module (DDPG uses TD3's policy classes)
    trained = [name for name in ALGOS if module == algo_class(name).policy_aliases["MlpPolicy"].__module__]
    mlp = config["policy"] == "mlp"
    if trained and not (mlp and config["algo"]["name"] in trained):
        given = f"algo.name {config['algo']['name']}" if mlp else f"policy {config['policy']}"
        raise UserError(f"--launch: {given}, but {model_path} is a stable-baselines3 {' or '.join(trained)} model")


def rl2_weights(path: str, kind: str) -> str:
    """The file or folder :meth:`policies.runner.PolicyRunner.load` reads for an RL² path of ``kind``."""
    return os.path.join(path, RL2_CHECKPOINT) if kind == "RL² run" else path


def _load_rl2(path: str, kind: str, config: dict[str, Any] | None) -> tuple[RecurrentPolicy, dict[str, Any]]:
    """An RL² run, checkpoint or export: its recorded launch file (the run's, or ``launch.yaml`` beside the file or
    in the export folder), else ``--launch``; trials of the launch file's ``rl2.episodes_per_trial`` episodes."""
    from policies.config import RL2Config
    from policies.errors import PolicyFileError
    from policies.runner import PolicyRunner
    from sim2real.launch import resolve, same_env

    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    recorded = os.path.join(folder, "launch.yaml")
    if os.path.isfile(recorded):
        config = same_env(path, resolve(recorded), config)
    elif config is None:
        raise UserError(f"{path}: an RL² {kind.split()[1]} without a launch.yaml beside it needs --launch (which task "
                        "and robot it drives)")
    weights = rl2_weights(path, kind)
    episodes = int((config.get("rl2") or {}).get("episodes_per_trial", RL2Config.episodes_per_trial))
    try:  # the first runner is loaded now: a bad file is refused here, in one line
        return RecurrentPolicy(lambda: PolicyRunner.load(weights, deterministic=True), episodes), config
    except PolicyFileError as err:
        raise UserError(str(err)) from None


def load_policy(path: str, config: dict[str, Any] | None) -> tuple[OneEnv, dict[str, Any]]:
    """:func:`load_batch_policy` in the single-environment form a deployment drives."""
    policy, config = load_batch_policy(path, config)
    return OneEnv(policy), config
