"""Errors a user can cause in the ``policies`` package.

``policies`` may not import :mod:`sim2real`, so these subclass ``ValueError``; the CLI turns them
into a one-line ``sim2real.errors.UserError``.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A config field is missing, unknown or out of range; the message names the field and what is allowed."""


class PolicyFileError(ValueError):
    """A policy file cannot be loaded safely (wrong format, pickled objects, missing keys)."""
