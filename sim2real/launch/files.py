"""Where launch files and reality profiles are: a path that exists, or a name of one shipped with the package.

The repository's top-level ``launch/`` folder is the one copy; a wheel ships it as ``sim2real/launch_files/`` (see
pyproject's package-dir), an editable install or a source checkout reads it in place.
"""
from __future__ import annotations

import os
from pathlib import Path

from sim2real.errors import UserError

SUFFIX = ".yaml"


def shipped_dir() -> Path:
    """The folder of the shipped launch files (``realities/`` inside it holds the reality profiles)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "launch_files"
    if installed.is_dir():
        return installed
    checkout = package.parent
    if (checkout / "launch").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "launch"
    raise RuntimeError(f"no launch files beside {package}: the installation is incomplete")


def launch_names() -> list[str]:
    """Names of the shipped launch files (``so101_reach``, ...), sorted."""
    return _names(shipped_dir())


def reality_names() -> list[str]:
    """Names of the shipped reality profiles (``lab``, ...), sorted."""
    return _names(shipped_dir() / "realities")


def find_launch_file(name_or_path: str) -> str:
    """``name_or_path`` if it is a file or a path, else the shipped launch file of that name (``so101_reach`` or
    ``so101_reach.yaml``); an unknown name is a one-line :class:`UserError` listing the shipped ones."""
    return _find(name_or_path, shipped_dir(), "launch file")


def find_reality(name_or_path: str) -> str:
    """``name_or_path`` if it is a file or a path, else the shipped reality profile of that name (``lab``); like
    :func:`find_launch_file`."""
    return _find(name_or_path, shipped_dir() / "realities", "reality profile")


def _names(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob(f"*{SUFFIX}") if path.is_file())


def _find(text: str, folder: Path, kind: str) -> str:
    bare = text and "/" not in text and os.sep not in text
    if os.path.isfile(text) or not bare:
        return text  # a path: its reader reports a missing or unreadable file in its own words
    name = text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text
    candidate = folder / f"{name}{SUFFIX}"
    if candidate.is_file():
        return str(candidate)
    raise UserError(f"{kind} {text!r} not found: no such file, and the shipped {kind}s are "
                    f"{', '.join(_names(folder)) or 'none'}")
