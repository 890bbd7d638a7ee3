"""Checkpoint directories of a ``sim2real train`` run: written so that a kill -9 at any moment loses no run.

Layout under ``RUN_DIR/checkpoints/``::

    step-N/manifest.json   written LAST: every other file of the checkpoint with its size in bytes
    step-N/...             model.zip, replay buffer, launch.yaml, versions.json, state.json, curriculum.json
    LATEST                 name of the newest complete checkpoint (a hint for people and the curriculum store;
                           the newest complete ``step-N`` is what counts)

A checkpoint is *complete* when its manifest parses and every file it lists is there with its size. A
checkpoint is written into ``.staging-step-N``, the manifest last; only then is it published: an existing
``step-N`` (a rewrite at the same step) is moved aside to ``.retired-step-N`` (never deleted before the new one
is complete), the staging folder is renamed to ``step-N``, LATEST is replaced, and the retired folder and the
checkpoints beyond ``keep`` are deleted. :func:`recover` (run before a resume) finishes an interrupted publish
whose staging folder is complete, deletes every other leftover and points LATEST at the newest complete one.

Checkpoints written before manifests existed count as complete when their fixed files are all there.
"""
from __future__ import annotations

import json
import os
import re
import platform
import shutil
from importlib import metadata
from typing import Any, Callable

from policies.run_files import drop_jsonl_after, drop_tensorboard_after, remove_temp_files

from sim2real.io import atomic_write_json, atomic_write_text

CHECKPOINTS = "checkpoints"
LATEST = "LATEST"
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
RETIRED_PREFIX = ".retired-"
LEGACY_FILES = ("model.zip", "launch.yaml", "versions.json", "state.json")
EVALUATIONS = "evaluations.jsonl"
TENSORBOARD = "tb"
FINAL_TEMP = os.path.join("final", ".model.tmp.zip")
_STEP_NAME = re.compile(r"step-(\d+)")


def checkpoint_name(step: int) -> str:
    return f"step-{int(step)}"


def checkpoint_step(path: str) -> int | None:
    """The step ``N`` of a ``step-N`` folder (None for any other name)."""
    match = _STEP_NAME.fullmatch(os.path.basename(os.path.normpath(path)))
    return int(match.group(1)) if match else None


def is_complete(path: str) -> bool:
    """True when the checkpoint folder holds every file its manifest lists, with the listed sizes."""
    manifest = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest):
        return _is_complete_legacy(path)
    try:
        with open(manifest, encoding="utf-8") as handle:
            files = json.load(handle)["files"]
        return all(os.path.getsize(os.path.join(path, name)) == int(size) for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _is_complete_legacy(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, name)) for name in LEGACY_FILES)


def newest_checkpoint(run_dir: str) -> str | None:
    """The complete ``step-N`` folder with the largest N (None if there is none). Reads only."""
    root = os.path.join(run_dir, CHECKPOINTS)
    for _, name in sorted(_step_folders(root), reverse=True):
        if is_complete(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def _step_folders(root: str) -> list[tuple[int, str]]:
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        step = checkpoint_step(name)
        if step is not None and os.path.isdir(os.path.join(root, name)):
            found.append((step, name))
    return found


def write_checkpoint(run_dir: str, step: int, fill: Callable[[str], None], keep: int = 2) -> str:
    """Write a checkpoint for ``step``: ``fill(folder)`` writes its files, then it is made complete and published.

    Returns the published ``step-N`` path. The previous complete checkpoints stay until this one is complete.
    """
    root = os.path.join(run_dir, CHECKPOINTS)
    name = checkpoint_name(step)
    staging = os.path.join(root, STAGING_PREFIX + name)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    fill(staging)
    _write_manifest(staging, step)
    return _publish(root, name, keep)


def _write_manifest(folder: str, step: int) -> None:
    files = {}
    for directory, _, names in os.walk(folder):
        for file_name in names:
            path = os.path.join(directory, file_name)
            files[os.path.relpath(path, folder)] = os.path.getsize(path)
    files.pop(MANIFEST, None)
    atomic_write_json(os.path.join(folder, MANIFEST), {"step": int(step), "files": files})


def _publish(root: str, name: str, keep: int) -> str:
    """Move the complete ``.staging-<name>`` into place as ``<name>``, point LATEST at it, prune."""
    final, retired = os.path.join(root, name), os.path.join(root, RETIRED_PREFIX + name)
    if os.path.exists(final):
        shutil.rmtree(retired, ignore_errors=True)
        os.rename(final, retired)
    os.rename(os.path.join(root, STAGING_PREFIX + name), final)
    _point_latest(root, name)
    shutil.rmtree(retired, ignore_errors=True)
    _prune(root, keep)
    return final


def _point_latest(root: str, name: str) -> None:
    pointer = os.path.join(root, LATEST)
    if _read_latest(pointer) != name:
        atomic_write_text(pointer, name + "\n")


def _read_latest(pointer: str) -> str | None:
    try:
        with open(pointer, encoding="utf-8") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _prune(root: str, keep: int) -> None:
    """Delete all but the ``keep`` newest complete checkpoints (and any incomplete ``step-N`` folder)."""
    kept = 0
    for _, name in sorted(_step_folders(root), reverse=True):
        path = os.path.join(root, name)
        if is_complete(path) and kept < keep:
            kept += 1
        else:
            shutil.rmtree(path, ignore_errors=True)


def recover(run_dir: str, keep: int = 2) -> str | None:
    """Bring a run's checkpoints back to a clean state after a crash; returns the newest complete checkpoint.

    A complete staging folder (killed while publishing) is published; incomplete staging folders, retired
    folders, incomplete ``step-N`` folders and temp files of atomic writes are deleted; LATEST names the newest
    complete checkpoint. A clean run is left byte-for-byte untouched.
    """
    root = os.path.join(run_dir, CHECKPOINTS)
    if os.path.isdir(root):
        for staging in sorted(os.listdir(root)):
            path = os.path.join(root, staging)
            if staging.startswith(STAGING_PREFIX) and os.path.isdir(path) and os.path.isfile(
                    os.path.join(path, MANIFEST)) and is_complete(path):
                _publish(root, staging[len(STAGING_PREFIX):], keep)
        remove_temp_files(root, [STAGING_PREFIX + "*", RETIRED_PREFIX + "*", ".tmp-*"])
        for _, name in _step_folders(root):
            if not is_complete(os.path.join(root, name)):
                shutil.rmtree(os.path.join(root, name))
    remove_temp_files(run_dir, [".tmp-*", FINAL_TEMP])
    newest = newest_checkpoint(run_dir)
    if newest is not None:
        _point_latest(root, os.path.basename(newest))
    elif os.path.exists(os.path.join(root, LATEST)):
        os.unlink(os.path.join(root, LATEST))
    return newest


def rewind_logs(run_dir: str, step: int) -> None:
    """Drop ``evaluations.jsonl`` lines and TensorBoard points past ``step`` (those at ``step`` stay)."""
    drop_jsonl_after(os.path.join(run_dir, EVALUATIONS), step, key="timesteps")
    drop_tensorboard_after(os.path.join(run_dir, TENSORBOARD), step)


def clear_logs(run_dir: str) -> None:
    """Delete the logs of a run that starts over (no complete checkpoint): TensorBoard, evaluations, curriculum
    history. The fresh start writes them again from step 0."""
    from randomizers.curricula.store import HISTORY_FILE

    shutil.rmtree(os.path.join(run_dir, TENSORBOARD), ignore_errors=True)
    for name in (EVALUATIONS, HISTORY_FILE):
        if os.path.isfile(os.path.join(run_dir, name)):
            os.unlink(os.path.join(run_dir, name))


def run_model_path(run_dir: str) -> tuple[dict[str, Any], str]:
    """(resolved config, model path) of an SB3 run; prefers ``final/model.zip`` over the newest checkpoint."""
    from sim2real.errors import UserError
    from sim2real.launch import resolve

    launch = os.path.join(run_dir, "launch.yaml")
    if not os.path.isdir(run_dir) or not os.path.isfile(launch):
        raise UserError(f"{run_dir}: not a run directory (no launch.yaml)")
    config = resolve(launch)
    final = os.path.join(run_dir, "final", "model.zip")
    checkpoint = newest_checkpoint(run_dir)
    path = final if os.path.isfile(final) else (os.path.join(checkpoint, "model.zip") if checkpoint else None)
    if path is None:
        raise UserError(f"{run_dir}: no model (neither final/model.zip nor a checkpoint)")
    return config, path


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on (written as the run's ``versions.json``)."""
    names = ("sim2real", "numpy", "pybullet", "gymnasium", "stable-baselines3", "torch")
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def resume_point(run_dir: str) -> str | None:
    """Recover a killed run's files (:func:`recover`) and rewind its logs to the checkpoint
    it continues from; without a complete checkpoint the run starts over (its logs are cleared)."""
    checkpoint = recover(run_dir)
    if checkpoint is None:
        print(f"{run_dir} has no complete checkpoint yet: training it from the start", flush=True)
        clear_logs(run_dir)
    else:
        rewind_logs(run_dir, checkpoint_step(checkpoint) or 0)
    return checkpoint


__all__ = ["CHECKPOINTS", "LATEST", "MANIFEST", "checkpoint_name", "checkpoint_step", "is_complete",
           "newest_checkpoint", "write_checkpoint", "recover", "rewind_logs", "clear_logs",
           "run_model_path", "package_versions", "resume_point"]
