"""Curriculum files of a run: teacher state in each checkpoint, and the JSON-lines history of range changes.

``RUN_DIR/checkpoints/step-N/curriculum.json``  teacher ``state_dict()`` + ``timesteps`` (atomic write)
``RUN_DIR/curriculum_history.jsonl``            one line per event: ``start`` (all ranges), ``range`` (one param's
                                                new range, from the teacher), ``resume`` (after a restart)
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from randomizers.curricula.base import Teacher

STATE_FILE = "curriculum.json"
HISTORY_FILE = "curriculum_history.jsonl"


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_state(teacher: Teacher, directory: str, timesteps: int) -> str:
    """Write ``directory/curriculum.json`` atomically; returns its path."""
    path = os.path.join(directory, STATE_FILE)
    _atomic_write(path, json.dumps({"timesteps": int(timesteps), "state": teacher.state_dict()}) + "\n")
    return path


def load_state(teacher: Teacher, directory: str) -> int | None:
    """Restore ``teacher`` from ``directory/curriculum.json``; returns the saved timesteps, None if no file."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    teacher.load_state_dict(data["state"])
    return int(data["timesteps"])


def latest_checkpoint_dir(run_dir: str) -> str | None:
    """``RUN_DIR/checkpoints/<LATEST>`` if the pointer exists."""
    pointer = os.path.join(run_dir, "checkpoints", "LATEST")
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as handle:
        path = os.path.join(run_dir, "checkpoints", handle.read().strip())
    return path if os.path.isdir(path) else None


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None, so every line is strict JSON (entropy is -inf at the start)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(_finite(record), sort_keys=True, allow_nan=False) + "\n"


def append_history(path: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Append records as JSON lines, flushed to disk."""
    records = list(records)
    if not records:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(_line(record))
        handle.flush()
        os.fsync(handle.fileno())


def read_history(path: str) -> list[dict[str, Any]]:
    """All records of a history file (a torn last line from a crash is skipped)."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def truncate_history(path: str, timesteps: int) -> None:
    """Drop records after ``timesteps`` (they belong to a run segment a resume replays)."""
    if os.path.isfile(path):
        kept = [r for r in read_history(path) if int(r.get("timesteps", 0)) <= timesteps]
        _atomic_write(path, "".join(_line(r) for r in kept))


def start_record(teacher: Teacher, timesteps: int, event: str = "start") -> dict[str, Any]:
    return {"event": event, "timesteps": int(timesteps), "teacher": teacher.name, "ranges": teacher.ranges(),
            "entropy_npd": teacher.entropy(), "episodes": teacher.episodes}


class CurriculumHistory:
    """``RUN_DIR/curriculum_history.jsonl`` of one run, the same for every trainer (SB3 callback, RL² trials).

    :meth:`begin` writes the ``start`` record of a run from step 0 (a stale file from an earlier attempt is
    dropped) or, for a resumed run, drops the records past the checkpoint and writes ``resume``; :meth:`record`
    appends range changes (:meth:`Teacher.pop_events`) stamped with the env steps done so far.
    """

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, HISTORY_FILE)

    def begin(self, teacher: Teacher, timesteps: int, resumed: bool) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        if resumed:
            truncate_history(self.path, timesteps)
        elif timesteps == 0 and os.path.isfile(self.path):
            os.unlink(self.path)
        append_history(self.path, [start_record(teacher, timesteps, "resume" if resumed else "start")])

    def record(self, events: Iterable[Mapping[str, Any]], timesteps: int) -> None:
        append_history(self.path, [{"event": "range", "timesteps": int(timesteps), **e} for e in events])
