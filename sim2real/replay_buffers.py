"""Off-policy replay buffers in a checkpoint as data: ``replay_buffer.npz`` (arrays) + ``replay_buffer.json``.

SB3's own ``save_replay_buffer`` pickles the buffer object, and loading a pickle runs whatever code it names.
Here a buffer is written as its arrays (``numpy.savez``, read back with ``allow_pickle=False``) and a small JSON
file (class, write position, fill flag, shapes). Restoring fills the buffer of a model built from the launch file
in place, so the file only ever supplies numbers, and each array must have the shape and dtype that buffer expects.

Covered: SB3's ``ReplayBuffer``, ``DictReplayBuffer`` (one array per observation key) and ``HerReplayBuffer``
(plus its episode bookkeeping ``ep_start``, ``ep_length``, ``_current_ep_start``). A HER buffer that copies info
dicts (``copy_info_dict=True``) holds Python objects and is refused. Only the filled rows are written.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
import zipfile
from typing import Any

import numpy as np

from sim2real.errors import UserError
from sim2real.io import atomic_write_json

ARRAYS_FILE = "replay_buffer.npz"
META_FILE = "replay_buffer.json"
LEGACY_PICKLE = "replay_buffer.pkl"  # written by older versions; never loaded
FORMAT = "sim2real-replay-buffer"
VERSION = 1
_TRANSITIONS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
_HER_EPISODES = ("ep_start", "ep_length")  # per row, like the transitions
_HER_CURRENT = "_current_ep_start"  # one entry per env


def save_replay_buffer(buffer: Any, directory: str) -> None:
    """Write ``buffer``'s filled rows and its position into ``directory`` (npz first, JSON last)."""
    if getattr(buffer, "copy_info_dict", False):
        raise ValueError("replay buffer: a HerReplayBuffer with copy_info_dict=True holds Python objects; "
                         "it cannot be saved as arrays")
    rows = _filled_rows(buffer)
    arrays = {name: array[:rows] for name, array in _row_arrays(buffer).items()}
    if _is_her(buffer):
        arrays[_HER_CURRENT] = buffer._current_ep_start
    with open(os.path.join(directory, ARRAYS_FILE), "wb") as handle:
        np.savez(handle, **arrays)
    atomic_write_json(os.path.join(directory, META_FILE), {
        "format": FORMAT, "version": VERSION, "class": type(buffer).__name__, "pos": int(buffer.pos),
        "full": bool(buffer.full), "rows": rows, "buffer_size": int(buffer.buffer_size), "n_envs": int(buffer.n_envs),
        "arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()}})


def load_replay_buffer(buffer: Any, directory: str) -> None:
    """Fill ``buffer`` (freshly built for the same launch file) from ``directory``; UserError if they differ.

    Nothing is unpickled: arrays are read with ``allow_pickle=False``.
    """
    meta_path, arrays_path = os.path.join(directory, META_FILE), os.path.join(directory, ARRAYS_FILE)
    meta = _read_meta(meta_path)
    if meta["class"] != type(buffer).__name__ or meta["buffer_size"] != buffer.buffer_size \
            or meta["n_envs"] != buffer.n_envs:
        raise UserError(f"{meta_path}: a {meta['class']} of {meta['buffer_size']} x {meta['n_envs']} rows, but the "
                        f"launch file builds a {type(buffer).__name__} of {buffer.buffer_size} x {buffer.n_envs}")
    rows = int(meta["rows"])
    targets = {name: array[:rows] for name, array in _row_arrays(buffer).items()}
    if _is_her(buffer):
        targets[_HER_CURRENT] = buffer._current_ep_start
    try:
        with np.load(arrays_path, allow_pickle=False) as saved:
            missing = sorted(set(targets) - set(saved.files))
            if missing:
                raise UserError(f"{arrays_path}: no array {missing[0]!r}")
            for name, target in targets.items():
                array = saved[name]
                if array.shape != target.shape or array.dtype != target.dtype:
                    raise UserError(f"{arrays_path}: {name} is {array.dtype}{list(array.shape)}, the buffer needs "
                                    f"{target.dtype}{list(target.shape)}")
                target[...] = array
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise UserError(f"{arrays_path}: not a replay buffer written by sim2real ({err})") from None
    buffer.pos, buffer.full = int(meta["pos"]), bool(meta["full"])


def resume_replay_buffer(model: Any, checkpoint: str, learning_starts: int) -> None:
    """Restore an off-policy ``model``'s replay buffer from a checkpoint folder it was just loaded from.

    A HER buffer's last, unfinished episodes are closed (the envs restart with fresh episodes, as SB3 does on
    load). A checkpoint of an older version holds ``replay_buffer.pkl``: it is never unpickled; one warning line
    says so, and the empty buffer refills for ``learning_starts`` steps before updates resume.
    """
    buffer = getattr(model, "replay_buffer", None)
    if buffer is None:
        return
    if os.path.isfile(os.path.join(checkpoint, META_FILE)):
        load_replay_buffer(buffer, checkpoint)
        if _is_her(buffer):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SB3's multi-line note that it does exactly this
                buffer.truncate_last_trajectory()
        return
    legacy = os.path.join(checkpoint, LEGACY_PICKLE)
    reason = f"{legacy}: pickled replay buffer ignored (pickles are never loaded)" if os.path.isfile(legacy) \
        else f"{checkpoint}: no replay buffer"
    print(f"warning: {reason}; the buffer refills for {learning_starts} steps before updates resume",
          file=sys.stderr, flush=True)
    model.learning_starts = int(model.num_timesteps) + int(learning_starts)


def _read_meta(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"format {meta.get('format')!r} version {meta.get('version')!r}")
        for key in ("class", "pos", "full", "rows", "buffer_size", "n_envs"):
            if key not in meta:
                raise ValueError(f"no {key!r}")
        return meta
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"{path}: not a replay buffer description written by sim2real ({err})") from None


def _is_her(buffer: Any) -> bool:
    from stable_baselines3 import HerReplayBuffer

    return isinstance(buffer, HerReplayBuffer)


def _filled_rows(buffer: Any) -> int:
    """Rows holding data: all once the buffer wrapped; with ``optimize_memory_usage`` the next observation of
    the newest transition sits one row past ``pos``."""
    if buffer.full:
        return int(buffer.buffer_size)
    return min(int(buffer.pos) + int(bool(getattr(buffer, "optimize_memory_usage", False))), buffer.buffer_size)


def _row_arrays(buffer: Any) -> dict[str, np.ndarray]:
    """The buffer's per-row arrays by name (``observations/<key>`` for Dict observations)."""
    out: dict[str, np.ndarray] = {}
    for name in _TRANSITIONS + (_HER_EPISODES if _is_her(buffer) else ()):
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            out.update({f"{name}/{key}": array for key, array in value.items()})
        elif value is not None:  # next_observations is None with optimize_memory_usage
            out[name] = value
    return out


__all__ = ["ARRAYS_FILE", "META_FILE", "LEGACY_PICKLE", "save_replay_buffer", "load_replay_buffer",
           "resume_replay_buffer"]
