"""Load, override and validate launch files; every user mistake becomes one :class:`UserError` line."""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Iterable

import yaml

from sim2real.errors import UserError
from sim2real.launch.files import find_launch_file
from sim2real.launch.schema import SCHEMA, Field, defaults
from sim2real.user_files import read_yaml_mapping


def read_yaml(path: str) -> dict[str, Any]:
    """Parse a YAML mapping from ``path``, a file or the name of a shipped launch file (missing file, bad YAML, too
    deep or non-mapping → UserError)."""
    path = find_launch_file(path)
    if not os.path.isfile(path):
        raise UserError(f"launch file not found: {path}")
    return read_yaml_mapping(path, "launch file")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``algo.learning_rate=1e-3`` → (["algo", "learning_rate"], 0.001); values are parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"override {text!r} must look like key.subkey=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise UserError(f"override {key}: value nested too deeply") from None
    return key.split("."), value


def merge(base: dict[str, Any], update: dict[str, Any], schema: dict[str, Any] = SCHEMA, prefix: str = "") -> None:
    """Deep-merge ``update`` into ``base`` in place, refusing keys the schema does not know."""
    for key, value in update.items():
        if key not in base and isinstance(schema.get(key), Field):
            base[key] = None
        path = f"{prefix}{key}"
        if not isinstance(key, str) or key not in schema:
            allowed = ", ".join(schema)
            raise UserError(f"unknown key {path!r} (allowed here: {allowed})")
        spec = schema[key]
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise UserError(f"{path}: expected a mapping with keys {', '.join(spec)}, got {_show(value)}")
            merge(base[key], value, spec, f"{path}.")
        elif spec.kind is dict and isinstance(base[key], dict) and isinstance(value, dict):
            base[key] = _deep_update(base[key], value)  # free-form sections (rl2, curriculum_options) merge too
        else:
            base[key] = value


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _deep_update(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_number(path: str, value: Any, spec: Field) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{path}: must be a finite number, got {value}")
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise UserError(f"{path}: {value} is out of range [{spec.low}, {spec.high}]")


def _coerce(path: str, value: Any, spec: Field) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise UserError(f"{path}: a value is required ({spec.help})")
    kind = spec.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{path}: expected {kind.__name__}, got {_show(value)} ({spec.help})")
    if kind in (int, float):
        _check_number(path, value, spec)
    if kind is list and spec.item_kind is not None:
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, spec.item_kind) or isinstance(item, bool):
                raise UserError(f"{item_path}: expected {spec.item_kind.__name__}, got {_show(item)}")
            if spec.item_kind in (int, float):
                _check_number(item_path, item, spec)
    choices = spec.allowed_choices()
    if choices is not None and value not in choices:
        raise UserError(f"{path}: {_show(value)} is not allowed (choose from: {', '.join(map(str, choices))})")
    return value


def validate(config: dict[str, Any], explicit: set[str], schema: dict[str, Any] = SCHEMA, prefix: str = "",
             overridden: frozenset[str] | set[str] = frozenset()) -> None:
    """Type-, range- and choice-check every value in place; ``explicit`` holds the dotted keys the user set,
    ``overridden`` those set by command-line overrides (a subset)."""
    if prefix == "" and isinstance(config.get("algo", {}).get("name"), str):
        config["algo"]["name"] = config["algo"]["name"].lower()  # SAC, PPO as SB3 spells them
    for key, spec in schema.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict):
            validate(config[key], explicit, spec, f"{path}.")
        else:
            config[key] = _coerce(path, config[key], spec)
    if prefix == "":
        from sim2real.envs import control_modes

        allowed = control_modes(config["env"]["id"])
        if config["env"]["control_mode"] not in (None, *allowed):
            raise UserError(f"env.control_mode: {config['env']['control_mode']!r} is not a mode of "
                            f"{config['env']['id']} (choose from: {', '.join(allowed)})")
        config["env"]["control_mode"] = config["env"]["control_mode"] or allowed[0]  # resolved: what runs
        _check_name(config["name"])
        from sim2real.ray_backend.launch import check_backend

        check_backend(config, explicit)  # before n_envs is used
        from sim2real.launch.simulator import check_simulator

        check_simulator(config, explicit)
        from sim2real.ray_backend.launch import check_backend

        check_backend(config, explicit)  # before n_envs is used
        _check_policy(config, explicit)
        _check_privileged_critic(config)
        _check_demonstrations(config)
        _check_curriculum_options(config)
        from sim2real.launch.randomizers import validate_randomizers

        if config["policy"] == "rl2":
            given = sorted(k for k in explicit if k.startswith("normalize."))
            if given:
                raise UserError(f"{given[0]}: applies to policy: mlp (RL² normalizes with rl2.normalize_obs and "
                                "rl2.normalize_reward)")
            del config["algo"]  # the resolved experiment lists only what runs
            del config["normalize"]
            validate_randomizers(config)
            _check_visual_randomizers(config)
            return
        _check_algo_keys(config, explicit, overridden)
        _check_learning_starts(config)
        validate_randomizers(config)
        _check_visual_randomizers(config)  # after the entries' own checks, which say more about a bad entry


def _check_algo_keys(config: dict[str, Any], explicit: set[str], overridden: frozenset[str] | set[str]) -> None:
    """Keep the ``algo`` keys and ``algo.kwargs`` that apply to ``algo.name``. A key set where the algorithm is
    chosen is a mistake; when ``algo.name`` was switched by an override, the launch file's keys that do not apply
    to the new algorithm are dropped with one note on stderr (``train launch/panda_reach.yaml algo.name=ppo``)."""
    algo = config["algo"]["name"]
    switched = "algo.name" in overridden
    dropped = []
    for key, spec in SCHEMA["algo"].items():
        if algo in spec.algos:
            continue
        if f"algo.{key}" in explicit:
            if not switched or f"algo.{key}" in overridden:
                raise UserError(f"algo.{key} does not apply to {algo} (it applies to: {', '.join(spec.algos)})")
            dropped.append(f"algo.{key}")
        del config["algo"][key]  # the resolved experiment lists only what the algorithm uses
    kwargs = config["algo"]["kwargs"]
    if kwargs:
        accepted, owned = _constructor_arguments(algo)
        for key in list(kwargs):
            if not isinstance(key, str) or key not in accepted:
                if switched and isinstance(key, str) and f"algo.kwargs.{key}" not in overridden \
                        and "algo.kwargs" not in overridden:
                    dropped.append(f"algo.kwargs.{key}")
                    del kwargs[key]
                    continue
                raise UserError(f"algo.kwargs.{key}: not an argument of stable-baselines3 {algo.upper()} "
                                f"(algo.kwargs may set: {', '.join(sorted(set(accepted) - set(owned)))})")
            if key in owned:
                raise UserError(f"algo.kwargs.{key}: {owned[key]}")
    if dropped:
        print(f"sim2real: note: algo.name={algo} (override): dropped {', '.join(dropped)} from the launch file "
              f"(they do not apply to {algo})", file=sys.stderr, flush=True)


def _constructor_arguments(algo: str) -> tuple[set[str], dict[str, str]]:
    """(keyword arguments of the SB3 class of ``algo``, those the launch file sets elsewhere → where)."""
    import inspect

    from sim2real.sb3_safe_load import algo_class

    accepted = {name for name, p in inspect.signature(algo_class(algo).__init__).parameters.items()
                if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    owned = {key: f"set algo.{key} instead" for key, spec in SCHEMA["algo"].items()
             if key in accepted and algo in spec.algos}
    owned.update({"seed": "set seed instead", "device": "set device instead", "env": "the launch file's env is used",
                  "policy": "chosen from the observations (set algo.net_arch, asymmetric_critic)",
                  "policy_kwargs": "set algo.net_arch instead", "tensorboard_log": "written to RUN_DIR/tb",
                  "verbose": "progress is shown by the toolkit", "_init_setup_model": "always set up"})
    owned.update({key: "needs a Python object, which a launch file cannot hold" for key in
                  ("replay_buffer_class", "replay_buffer_kwargs", "rollout_buffer_class", "rollout_buffer_kwargs",
                   "action_noise")})
    return accepted, owned


def _check_name(name: str) -> None:
    """``name`` names the run directory inside ``output_dir``: a plain name, never a path that leads elsewhere."""
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise UserError(f"name: {_show(name)} is not a plain name (no '/', '\\' or leading '.'): it names the run "
                        "directory inside output_dir")


def _check_curriculum_options(config: dict[str, Any]) -> None:
    """``curriculum_options`` configure a curriculum: without ``curriculum`` nothing would read them."""
    if config["curriculum_options"] is not None and config["curriculum"] is None:
        raise UserError("curriculum_options: set without a curriculum (set curriculum: uniform, schedule, adr, "
                        "alp_gmm, plr or robust_plr, or remove them)")


def _check_visual_randomizers(config: dict[str, Any]) -> None:
    """A ``visual`` randomizer changes only what cameras see: with ``env.obs_mode: state`` no policy would see it
    (that it needs an arm scene is checked with the entries, in
    :func:`sim2real.launch.randomizers.validate_randomizers`)."""
    if config["env"]["obs_mode"] == "rgb":
        return
    for index, entry in enumerate(config["randomizers"]):
        if isinstance(entry, dict) and entry.get("group") == "visual" and entry.get("enabled", True) is not False:
            raise UserError(f"randomizers[{index}] (visual): changes only camera images, and env.obs_mode is "
                            f"{config['env']['obs_mode']} (use obs_mode: rgb, or remove the entry)")


def _check_learning_starts(config: dict[str, Any]) -> None:
    """Off-policy training must update the policy within the budget, and with HER (goal-conditioned arm envs with
    state observations, :func:`sim2real.envs.arm_env.make_arm_env`) only once an episode has finished: the replay
    buffer samples finished episodes only, and all ``n_envs`` finish their first one together at
    ``env.max_episode_steps``."""
    algo = config["algo"]
    if "learning_starts" not in algo:
        return
    from sim2real.envs import ARM_ENVS

    starts, budget = algo["learning_starts"], config["budget"]["total_timesteps"]
    if starts >= budget and not algo.get("bc_steps"):
        raise UserError(f"algo.learning_starts: {starts} is not below budget.total_timesteps {budget}: training "
                        "would never update the policy")
    her = algo.get("her") and config["env"]["id"] in ARM_ENVS and config["env"]["obs_mode"] == "state"
    needed = config["n_envs"] * (config["env"]["max_episode_steps"] - 1)
    if her and starts < needed:
        raise UserError(f"algo.learning_starts: {starts} is too early for HER: it learns from finished episodes, and "
                        f"the first end after n_envs {config['n_envs']} x env.max_episode_steps "
                        f"{config['env']['max_episode_steps']} steps (set at least {needed})")


def rl2_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The RL² trainer's settings: the ``rl2`` section plus budget, seed and env count from the launch file (and
    ``network.critic_keys``: ``state`` with ``asymmetric_critic``, ``world`` with ``critic_sees_world``)."""
    settings = {**(config.get("rl2") or {}), "total_steps": config["budget"]["total_timesteps"],
                "seed": config["seed"], "num_envs": config["n_envs"]}
    critic_keys = (["state"] if config.get("asymmetric_critic") else []) + \
        (["world"] if config.get("critic_sees_world") else [])
    if critic_keys:
        settings["network"] = {**(settings.get("network") or {}), "critic_keys": critic_keys}
    return settings


def _check_privileged_critic(config: dict[str, Any]) -> None:
    """What a critic's privileged inputs need: ``critic_sees_world`` an RL² policy and randomizers,
    ``asymmetric_critic`` camera observations of an arm env and a trainer that has an asymmetric critic."""
    network = (config.get("rl2") or {}).get("network")
    if isinstance(network, dict) and "critic_keys" in network:
        raise UserError("rl2.network.critic_keys: set asymmetric_critic: true (the critic sees `state`) or "
                        "critic_sees_world: true (it sees `world`) instead")
    if config["critic_sees_world"] and (config["policy"] != "rl2" or not config.get("randomizers")):
        raise UserError("critic_sees_world: needs policy: rl2 and randomizers (the critic sees their sampled values)")
    if not config["asymmetric_critic"]:
        return
    from sim2real.envs import ARM_ENVS

    if config["env"]["obs_mode"] != "rgb" or config["env"]["id"] not in ARM_ENVS:
        raise UserError(f"asymmetric_critic: needs an arm env with env.obs_mode: rgb (the actor sees image + proprio, "
                        f"the critic the true state); got {config['env']['id']} with {config['env']['obs_mode']}")
    if config["policy"] == "mlp" and config["algo"]["name"] != "ppo":
        raise UserError(f"asymmetric_critic: with policy: mlp it needs algo.name: ppo (got {config['algo']['name']})")


def _check_demonstrations(config: dict[str, Any]) -> None:
    """``algo.demonstrations`` needs a task with a scripted controller, end-effector control and state observations."""
    from sim2real.envs import ARM_ENVS
    from sim2real.tasks.scripted import SCRIPTED_TASKS

    if config["policy"] != "mlp":
        return
    if config["algo"].get("bc_steps") and not config["algo"].get("demonstrations"):
        raise UserError("algo.bc_steps: behavior cloning needs demonstrations to clone (set algo.demonstrations)")
    if not config["algo"].get("demonstrations"):
        return
    env = config["env"]
    if env["id"] not in ARM_ENVS or ARM_ENVS[env["id"]][1] not in SCRIPTED_TASKS or env["control_mode"] != "ee" \
            or env["obs_mode"] != "state":
        raise UserError(f"algo.demonstrations: the scripted controllers drive arm {'/'.join(SCRIPTED_TASKS)} tasks with "
                        f"control_mode ee and obs_mode state; got {env['id']} ({env['control_mode']}, "
                        f"{env['obs_mode']})")


def _check_policy(config: dict[str, Any], explicit: set[str]) -> None:
    """``algo.*`` belongs to ``policy: mlp`` and ``rl2`` to ``policy: rl2``; RL² settings are validated here."""
    if config["policy"] == "mlp":
        if config.get("rl2") is not None:
            raise UserError("rl2: only used with policy: rl2 (this launch file says policy: mlp)")
        return
    given = sorted(k for k in explicit if k.startswith("algo."))
    if given:
        raise UserError(f"{given[0]}: algo settings apply to policy: mlp; RL² settings go under rl2:")
    from policies.config import RL2Config
    from policies.errors import ConfigError

    for key in ("total_steps", "seed", "num_envs"):
        if key in (config.get("rl2") or {}):
            where = {"total_steps": "budget.total_timesteps", "seed": "seed", "num_envs": "n_envs"}[key]
            raise UserError(f"rl2.{key}: set {where} instead (one place for each setting)")
    try:
        RL2Config.from_dict(rl2_settings(config)).validate(num_envs=config["n_envs"])
    except ConfigError as err:
        raise UserError(f"rl2: {err}") from None
    teacher = config.get("curriculum")
    score = (config.get("curriculum_options") or {}).get("score", "positive_value_loss")
    if teacher in ("plr", "robust_plr") and score == "success":
        raise UserError(f"curriculum_options.score: with policy: rl2 the {teacher} curriculum scores whole trials by "
                        "their value loss; use positive_value_loss, l1_value_loss or max_mc")
    if teacher in ("plr", "robust_plr") and score == "max_mc" and (config.get("rl2") or {}).get(
            "normalize_reward", True):
        raise UserError("curriculum_options.score: max_mc compares trial returns with value estimates, which "
                        "rl2.normalize_reward scales; set rl2.normalize_reward: false or use positive_value_loss")
    if teacher in ("adr", "alp_gmm") and (config.get("curriculum_options") or {}).get("metric") != "return":
        raise UserError(f"curriculum_options.metric: with policy: rl2 the {teacher} curriculum sees trial returns; "
                        "set metric: return (and t_high/t_low in return units for adr)")


def _dotted_keys(data: dict[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in data.items():
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}{key}.")


def resolve(path: str | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults ← launch file (if any) ← dotted overrides, validated. Returns the resolved experiment."""
    config = defaults()
    explicit: set[str] = set()
    overridden: set[str] = set()
    if path is not None:
        data = read_yaml(path)
        merge(config, data)
        explicit.update(_dotted_keys(data))
    for text in overrides:
        keys, value = parse_override(text)
        nested: dict[str, Any] = {}
        cursor = nested
        for part in keys[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[keys[-1]] = value
        merge(config, nested)
        explicit.add(".".join(keys))
        overridden.update(_dotted_keys(nested))
    validate(config, explicit, overridden=overridden)
    return config


ENV_IDENTITY = ("id", "obs_mode", "control_mode")  # what a trained policy is bound to: robot + task, inputs, actions


def recorded_launch(model_path: str) -> str | None:
    """The launch file recorded beside an SB3 model file: ``launch.yaml`` in its folder (checkpoints, zoo folders)
    or, for ``RUN/final/model.zip``, the run's; None when there is none."""
    folder = os.path.dirname(os.path.abspath(model_path))
    candidates = [folder] + ([os.path.dirname(folder)] if os.path.basename(folder) == "final" else [])
    return next((os.path.join(c, "launch.yaml") for c in candidates if os.path.isfile(os.path.join(c, "launch.yaml"))),
                None)


def same_env(policy: str, trained: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """``given`` (a ``--launch`` file, resolved) or, without one, ``trained`` (the policy's recorded launch file); a
    :class:`UserError` when ``given`` runs another env than the policy was trained on (robot and task, observation
    or control mode): its scores would describe nothing."""
    if given is None:
        return trained
    differ = [key for key in ENV_IDENTITY if trained["env"][key] != given["env"][key]]
    if differ:
        def show(config: dict[str, Any]) -> str:
            return ", ".join(f"env.{key} {config['env'][key]}" for key in differ)

        raise UserError(f"--launch: {show(given)}, but {policy} was trained with {show(trained)}")
    return given


def dump(config: dict[str, Any], path: str) -> None:
    """Write a resolved launch file atomically."""
    from sim2real.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
