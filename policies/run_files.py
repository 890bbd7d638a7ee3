"""Putting a training run's files back in step with the checkpoint it resumes from.

A run killed after its last checkpoint leaves log lines and TensorBoard points for steps the resumed run
will take again, and temp files of the atomic writes it was in the middle of. Both trainers (the SB3
``sim2real train`` and :func:`policies.ppo.train_rl2`) call these before they continue:

- :func:`drop_jsonl_after` — JSON-lines logs keep the lines at or before the checkpoint step;
- :func:`drop_tensorboard_after` — event files keep the events at or before the checkpoint step (dropped
  from the files, not hidden with a purge marker, so every reader sees the same history);
- :func:`remove_temp_files` — leftovers of interrupted writes.

Every function leaves a file untouched (same bytes, same mtime) when it has nothing to drop.
"""
from __future__ import annotations

import glob
import json
import math
import os
import shutil
from pathlib import Path

from policies.checkpoint import atomic_write_bytes, atomic_write_text

EVENTS_GLOB = "events.out.tfevents.*"
_RECORD_FRAMING = 16  # bytes around each TFRecord payload: length (8), its CRC (4), payload CRC (4)


def drop_jsonl_after(path: str | os.PathLike, step: int, key: str) -> int:
    """Drop the lines of a JSON-lines log whose ``key`` is past ``step``; returns how many were dropped.

    A line cut short by a crash (or without ``key``) counts as past every step and is dropped too.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if _logged_step(line, key) <= step]
    if len(kept) < len(lines):
        atomic_write_text("".join(line + "\n" for line in kept), path)
    return len(lines) - len(kept)


def _logged_step(line: str, key: str) -> float:
    try:
        return float(json.loads(line)[key])
    except (ValueError, KeyError, TypeError):
        return math.inf


def drop_tensorboard_after(directory: str | os.PathLike, step: int) -> int:
    """Drop TensorBoard events with a step past ``step`` from every event file under ``directory``.

    A torn last record (a crash mid-write) goes too. Returns how many events were dropped.
    """
    from tensorboard.compat.proto.event_pb2 import Event

    dropped = 0
    remove_temp_files(directory, ["." + EVENTS_GLOB], recursive=True)
    for path in sorted(glob.glob(os.path.join(glob.escape(str(directory)), "**", EVENTS_GLOB), recursive=True)):
        records = _read_records(path)
        kept = [record for record in records if Event.FromString(record).step <= step]
        if sum(len(r) + _RECORD_FRAMING for r in kept) != os.path.getsize(path):
            atomic_write_bytes(b"".join(_framed(record) for record in kept), path)
        dropped += len(records) - len(kept)
    return dropped


def _read_records(path: str) -> list[bytes]:
    """The complete records of a TFRecord file, in order (reading stops at a torn or corrupt record)."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader

    return list(RawEventFileLoader(path).Load())


def _framed(record: bytes) -> bytes:
    import io

    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    RecordWriter(buffer).write(record)
    return buffer.getvalue()


def remove_temp_files(directory: str | os.PathLike, patterns: list[str], recursive: bool = False) -> list[str]:
    """Delete files and folders matching the glob ``patterns`` in ``directory`` (and below, if ``recursive``).

    Only for leftovers of interrupted writes: patterns must name temp files, never a run's results.
    Returns the paths removed.
    """
    removed = []
    base = glob.escape(str(directory))
    for pattern in patterns:
        full = os.path.join(base, "**", pattern) if recursive else os.path.join(base, pattern)
        for path in sorted(glob.glob(full, recursive=recursive)):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
    return removed


__all__ = ["drop_jsonl_after", "drop_tensorboard_after", "remove_temp_files"]
