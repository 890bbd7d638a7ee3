"""Atomic checkpoint files and safe loading (``torch.load(..., weights_only=True)`` only).

A checkpoint is a dict of tensors and plain data: ``model`` (state dict), ``config`` (RL2Config as a
dict), ``spec`` (PolicySpec as a dict) and, for training checkpoints, ``optimizer``, ``return_scaler``,
``iteration``, ``global_step``, ``wall_time_s``.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import torch

from policies.actor_critic import RecurrentActorCritic
from policies.config import RL2Config
from policies.errors import ConfigError, PolicyFileError
from policies.spaces import PolicySpec


def _atomic_write(path: str | os.PathLike, mode: str, write: Callable[[IO[Any]], None]) -> None:
    """Call ``write`` on a temp file in ``path``'s folder, fsync, then ``os.replace`` it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that survives a crash: the file is either the old or the new checkpoint."""
    _atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write text atomically (temp file + ``os.replace``)."""
    _atomic_write(path, "w", lambda f: f.write(text))


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write bytes atomically (temp file + ``os.replace``)."""
    _atomic_write(path, "wb", lambda f: f.write(data))


def safe_load(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects; raise :class:`PolicyFileError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"policy file: {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyFileError(
            f"policy file: {path} is not a tensors-only checkpoint and was refused (no unpickling of "
            f"arbitrary objects): {first}") from None
    if not isinstance(data, dict) or not {"model", "config", "spec"} <= set(data):
        raise PolicyFileError(f"policy file: {path} lacks the keys model, config and spec")
    return data


def model_from_checkpoint(data: dict[str, Any]) -> tuple[RecurrentActorCritic, RL2Config]:
    """Rebuild the actor-critic (eval mode) and its config from :func:`safe_load`'s dict."""
    try:
        cfg = RL2Config.from_dict(data["config"])
        spec = PolicySpec.from_dict(data["spec"])
    except (ConfigError, KeyError, TypeError) as err:
        raise PolicyFileError(f"policy file: bad config or spec: {err}") from None
    model = RecurrentActorCritic(spec, cfg.network)
    try:
        model.load_state_dict(data["model"])
    except (RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyFileError(f"policy file: weights do not fit its config and spec: {first}") from None
    model.eval()
    return model, cfg


def load_policy(path: str | os.PathLike) -> tuple[RecurrentActorCritic, RL2Config]:
    """Safe-load a checkpoint file and rebuild its model."""
    return model_from_checkpoint(safe_load(path))


__all__ = ["atomic_torch_save", "atomic_write_text", "atomic_write_bytes", "safe_load", "model_from_checkpoint",
           "load_policy"]
