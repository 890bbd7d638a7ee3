"""The deployment log: one JSON object per line (meta, step, event, episode, summary), flushed line by line so a
crash keeps everything written before it; ``read_log`` tolerates a torn last line."""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.round(value.astype(float), 6).tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class DeploymentLog:
    """Append-only JSON-lines log at ``path``."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._handle = open(path, "w", encoding="utf-8", buffering=1)

    def write(self, record_type: str, /, **fields: Any) -> None:
        self._handle.write(json.dumps({"type": record_type, **_plain(fields)}) + "\n")

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()


def read_log(path: str) -> list[dict[str, Any]]:
    """All complete records of a log."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # torn final line of a crashed run
    return records
