"""Stable-baselines3 models from a launch file, and loading their ``model.zip`` without running code from it.

An SB3 ``model.zip`` holds ``data`` (JSON) and ``*.pth`` tensor files. Values SB3 cannot write as JSON (the policy
class, the spaces, schedules, numpy arrays, deques) are stored in ``data`` as cloudpickle payloads under a
``:serialized:`` key, and SB3's own ``load`` unpickles them: a shared model file could run any code. Here every
such entry is replaced through SB3's ``custom_objects`` before SB3 reads it, so cloudpickle never runs: by the value
the launch file gives (policy class, spaces, schedules, train frequency, replay buffer class) or by None (run-time
state such as the last observation, which training rebuilds). Every ``.pth`` must hold tensors only: it is read
with ``torch.load(weights_only=True)`` (as SB3 2.9 also does) and refused otherwise.
"""
from __future__ import annotations

import json
import pickle
import zipfile
from typing import Any

import gymnasium as gym

from sim2real.errors import UserError

SERIALIZED = ":serialized:"  # SB3's marker of a cloudpickle payload in a model zip's ``data``
ALWAYS_REBUILT = ("policy_class", "observation_space", "action_space")  # a model needs them; JSON cannot hold them
# The tensor entries SB3 2.9 writes for PPO, SAC and TD3 (SB3 looks each name up as an attribute path of the model)
TENSOR_ENTRIES = frozenset(f"{name}.pth" for name in ("policy", "policy.optimizer", "actor.optimizer",
                                                      "critic.optimizer", "ent_coef_optimizer", "pytorch_variables"))


def algo_class(name: str) -> type:
    """The stable-baselines3 class of a launch file's ``algo.name`` (:data:`sim2real.launch.schema.ALGOS`)."""
    import stable_baselines3

    return getattr(stable_baselines3, name.upper())


TOOLKIT_KEYS = ("name", "her", "her_n_sampled_goal", "net_arch", "demonstrations", "bc_steps", "kwargs")


def algorithm_arguments(config: dict[str, Any], observation_space: gym.Space) -> dict[str, Any]:
    """Keyword arguments of the algorithm's constructor from the resolved launch file: every ``algo`` key that is
    not the toolkit's own (:data:`TOOLKIT_KEYS`; the others are SB3 arguments of the same name), the replay
    buffer of an off-policy algorithm, then ``algo.kwargs`` as given."""
    from sim2real.launch.schema import OFF_POLICY

    algo = config["algo"]
    out = {key: value for key, value in algo.items() if key not in TOOLKIT_KEYS}
    if algo["name"] in OFF_POLICY:
        out.update(replay_buffer_settings(config, observation_space))
    out.update(algo.get("kwargs") or {})
    return out


def is_goal_space(space: gym.Space) -> bool:
    """A goal-conditioned Dict observation space (``achieved_goal`` and ``desired_goal``): what HER needs."""
    return isinstance(space, gym.spaces.Dict) and {"achieved_goal", "desired_goal"} <= set(space.spaces)


def policy_settings(config: dict[str, Any], observation_space: gym.Space) -> tuple[Any, dict[str, Any]]:
    """(policy alias or class, policy_kwargs) of the launch file's model for ``observation_space``."""
    kwargs: dict[str, Any] = {"net_arch": list(config["algo"]["net_arch"])}
    if config.get("asymmetric_critic"):  # validated: PPO on camera observations plus the privileged `state`
        from sim2real.envs.privileged import STATE_KEY
        from sim2real.sb3_asymmetric import AsymmetricActorCriticPolicy

        return AsymmetricActorCriticPolicy, {**kwargs, "critic_keys": (STATE_KEY,)}
    return ("MultiInputPolicy" if isinstance(observation_space, gym.spaces.Dict) else "MlpPolicy"), kwargs


def replay_buffer_settings(config: dict[str, Any], observation_space: gym.Space) -> dict[str, Any]:
    """``replay_buffer_class``/``replay_buffer_kwargs`` of an off-policy launch file: HER on goal tasks when
    ``algo.her``, SB3's default buffer (class None) otherwise."""
    algo = config["algo"]
    if algo.get("her") and is_goal_space(observation_space):
        from stable_baselines3 import HerReplayBuffer

        return {"replay_buffer_class": HerReplayBuffer,
                "replay_buffer_kwargs": {"n_sampled_goal": algo["her_n_sampled_goal"],
                                         "goal_selection_strategy": "future"}}
    return {"replay_buffer_class": None}


def rebuilt_entries(config: dict[str, Any], env: gym.Env) -> dict[str, Any]:
    """The model-zip ``data`` entries a model needs, rebuilt from the launch file and ``env`` (spaces)."""
    algo = config["algo"]
    policy, policy_kwargs = policy_settings(config, env.observation_space)
    if isinstance(policy, str):  # an alias such as "MlpPolicy": the class SB3 would resolve it to
        policy = algo_class(algo["name"]).policy_aliases[policy]
    from sim2real.launch.schema import ON_POLICY

    entries: dict[str, Any] = {"clip_range_vf": None, "action_noise": None,
                               **algorithm_arguments(config, env.observation_space),
                               "policy_class": policy, "policy_kwargs": policy_kwargs,
                               "observation_space": env.observation_space, "action_space": env.action_space,
                               "lr_schedule": algo["learning_rate"]}
    if algo["name"] in ON_POLICY:
        entries.update(rollout_buffer_class=None, rollout_buffer_kwargs={})
    return entries


def carries_payload(value: Any) -> bool:
    """A ``data`` entry holding a cloudpickle payload, at its top (SB3 would unpickle it) or nested (SB3 would hand
    it on as a dict where it expects a class, e.g. inside ``policy_kwargs``)."""
    if isinstance(value, dict):
        return SERIALIZED in value or any(carries_payload(item) for item in value.values())
    return isinstance(value, list) and any(carries_payload(item) for item in value)


def safe_custom_objects(data: dict[str, Any], rebuilt: dict[str, Any]) -> dict[str, Any]:
    """SB3 ``custom_objects`` replacing every entry of ``data`` that carries a cloudpickle payload (rebuilt value,
    else None) and the entries in :data:`ALWAYS_REBUILT`."""
    return {key: rebuilt.get(key) for key, value in data.items() if carries_payload(value) or key in ALWAYS_REBUILT}


def read_model_data(path: str) -> dict[str, Any]:
    """The ``data`` JSON of an SB3 model zip, after checking that every ``.pth`` in it holds tensors only.

    Raises :class:`UserError` naming the file and the reason when it is not a model zip or carries pickled objects.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "data" not in names:
                raise UserError(f"{path}: not a stable-baselines3 model (no 'data' entry)")
            for name in names:
                if name.endswith(".pth") and name not in TENSOR_ENTRIES:
                    raise UserError(f"{path}: its entry {name} is refused: a model zip holds only "
                                    f"{', '.join(sorted(TENSOR_ENTRIES))}")
                if name.endswith(".pth"):
                    _check_tensors_only(path, archive, name)
            data = json.loads(archive.read("data").decode("utf-8"))
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{path}: not a readable stable-baselines3 model zip ({err})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UserError(f"{path}: its 'data' entry is not valid JSON ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: its 'data' entry is not a JSON object")
    return data


def _check_tensors_only(path: str, archive: zipfile.ZipFile, name: str) -> None:
    """Refuse ``name`` unless ``torch.load(weights_only=True)`` reads it (tensors, numbers, containers only)."""
    import io

    import torch

    try:
        torch.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as err:
        raise UserError(f"{path}: {name} is refused: it holds objects other than tensors ({type(err).__name__} "
                        "under torch.load(weights_only=True))") from None


def load_sb3_model(config: dict[str, Any], path: str, env: gym.Env, **kwargs: Any) -> Any:
    """The launch file's SB3 model with the weights (and optimizer state, step count) of ``path``, bound to ``env``.

    No cloudpickle payload of the file is ever unpickled (see the module docstring); ``kwargs`` go to SB3's ``load``
    (e.g. ``tensorboard_log``). A file that does not fit the launch file's model is one :class:`UserError` line.
    """
    data = read_model_data(path)
    cls = algo_class(config["algo"]["name"])
    env = cls._wrap_env(env)  # as SB3's load wraps it (a VecEnv; images channel-first): the spaces the model has
    _check_declared_shapes(path, data, env)
    custom_objects = safe_custom_objects(data, rebuilt_entries(config, env))
    try:
        return cls.load(path, env=env, device=config["device"], custom_objects=custom_objects, **kwargs)
    except (KeyError, ValueError, RuntimeError, AssertionError, TypeError) as err:  # another model, odd values
        raise UserError(f"{path}: not a {config['algo']['name'].upper()} model for {config['env']['id']} "
                        f"({_first_line(err)})") from None


def _check_declared_shapes(path: str, data: dict[str, Any], env: gym.Env) -> None:
    """Refuse a model whose ``data`` describes Box spaces of other shapes than ``env``'s (SB3 writes each space's
    ``_shape`` as plain JSON beside its payload; the payload itself is never read)."""
    for key in ("observation_space", "action_space"):
        declared = data.get(key)
        shape = declared.get("_shape") if isinstance(declared, dict) else None
        wanted = getattr(env, key).shape
        if isinstance(shape, list) and wanted is not None and tuple(shape) != tuple(wanted):
            raise UserError(f"{path}: its {key.replace('_', ' ')} has shape {tuple(shape)}, and this env's has "
                            f"{tuple(wanted)}")


def _first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when empty), at most ``limit`` characters."""
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:limit]


def build_model(config: dict[str, Any], env, tensorboard_dir: str | None):
    """Instantiate the launch file's algorithm on ``env`` (:func:`sim2real.sb3_safe_load.algorithm_arguments`:
    its ``algo`` keys, the replay buffer, ``algo.kwargs``); SB3 refusing a value is one :class:`UserError`."""
    name = config["algo"]["name"]
    policy, policy_kwargs = policy_settings(config, env.observation_space)
    arguments = algorithm_arguments(config, env.observation_space)
    try:
        return algo_class(name)(policy, env, policy_kwargs=policy_kwargs, tensorboard_log=tensorboard_dir,
                                seed=config["seed"], device=config["device"], verbose=0, **arguments)
    except (TypeError, ValueError, AssertionError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"algo: stable-baselines3 {name.upper()} refused these settings ({text[:200]}); "
                        f"algo.kwargs: {config['algo'].get('kwargs') or 'none'}") from None
