"""Errors a user can cause (bad launch files, flags, ports, files).

The CLI prints a ``UserError`` as one line and exits with its ``exit_code``; every other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake in user input, reported as one line without a traceback."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
