"""Checked command-line values: argparse ``type=`` functions shared by every flag of one kind, and the one
writable-location check every output (flag or launch-file ``output_dir``) goes through.

A bad value becomes argparse's one-line error naming the flag (``argument --rate-hz: ...``), exit code 2, before
anything is opened, loaded or written.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile

from sim2real.errors import UserError

SEED_MAX = 2**31 - 1  # the launch file's ``seed`` range, numpy's legacy seeding range


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (rates, periods, latencies)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (0 where the flag documents it as "off")."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: steps, episodes)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (optional counts: videos)."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**31 - 1]."""
    value = int(_number(text, int))
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {SEED_MAX}], got {text!r}")
    return value


def unwritable_reason(path: str, directory: bool) -> str | None:
    """Why ``path`` cannot be created or written as a directory (``directory``) or a file; None when it can.

    Checks what exists: the path itself (a directory where a file is wanted, or the reverse) and its nearest
    existing ancestor, which must be a directory this process can create a file in (probed with a temporary file
    that is removed at once, so the answer is right for root, read-only mounts and /proc alike)."""
    target = os.path.abspath(path)
    if os.path.lexists(target) and not os.path.islink(target):
        if directory and not os.path.isdir(target):
            return "exists and is not a directory"
        if not directory and os.path.isdir(target):
            return "is a directory"
    ancestor = target if directory and os.path.isdir(target) else os.path.dirname(target)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        return f"{ancestor} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as err:
        return f"cannot write in {ancestor} ({err.strerror or err})"
    return None


def check_writable(path: str, what: str, directory: bool) -> str:
    """``path`` unchanged, or a :class:`UserError` naming ``what`` (the flag or launch field) and why."""
    reason = unwritable_reason(path, directory)
    if reason is not None:
        raise UserError(f"{what} {path}: {reason}")
    return path


def _output(directory: bool):
    def check(text: str) -> str:
        reason = unwritable_reason(text, directory)
        if reason is not None:
            raise argparse.ArgumentTypeError(f"{text}: {reason}")
        return text

    check.__name__ = "output_dir" if directory else "output_file"
    return check


output_file = _output(directory=False)
"""A file this process can create or append to (its folders are created as needed)."""
output_dir = _output(directory=True)
"""A directory this process can create or write in."""
