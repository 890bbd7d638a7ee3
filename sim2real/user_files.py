"""Reading the files users write (launch files and reality profiles in YAML, goal lists in JSON): every way a file
can be unusable is one :class:`UserError` line naming the file."""
from __future__ import annotations

import json
from typing import Any

import yaml

from sim2real.errors import UserError

MAX_DEPTH = 32  # nesting levels of mappings/lists; real files use fewer than 8


def _depth(value: Any) -> int:
    """How deeply ``value`` nests mappings and lists (a scalar: 0), without recursion; stops past
    :data:`MAX_DEPTH` (YAML aliases can build cycles) and visits a container shared through aliases again only when
    it is reached deeper."""
    deepest, todo, reached = 0, [(value, 1)], {}
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None or reached.get(id(item), 0) >= level:
            continue
        reached[id(item)] = level
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        todo.extend((child, level + 1) for child in children)
    return deepest


def _unreadable(path: str, what: str, err: OSError | UnicodeDecodeError) -> UserError:
    if isinstance(err, UnicodeDecodeError):
        return UserError(f"{path}: cannot read {what}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                         f"{err.start})")
    return UserError(f"{path}: cannot read {what} ({err.strerror or err})")


def read_json(path: str, what: str) -> Any:
    """The JSON value in ``path``; ``what`` names the kind of file in errors (unreadable, not UTF-8, not JSON,
    nested deeper than :data:`MAX_DEPTH`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: {what} is not JSON ({err.msg}, line {err.lineno})") from None
    except RecursionError:
        raise UserError(f"{path}: invalid {what}: nested deeper than {MAX_DEPTH} levels") from None
    except (OSError, UnicodeDecodeError) as err:
        raise _unreadable(path, what, err) from None
    if _depth(data) > MAX_DEPTH:
        raise UserError(f"{path}: invalid {what}: nested deeper than {MAX_DEPTH} levels")
    return data


def read_yaml_mapping(path: str, what: str) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (empty file: ``{}``); ``what`` names the kind of file in errors.

    Unreadable or non-UTF-8 files, bad YAML, nesting deeper than :data:`MAX_DEPTH` (which would otherwise exhaust
    Python's recursion limit in the parser or in validation) and anything but a mapping are user errors."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())  # one line, always
        raise UserError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise UserError(f"{path}: invalid {what}: nested deeper than {MAX_DEPTH} levels") from None
    except (OSError, UnicodeDecodeError) as err:
        raise _unreadable(path, what, err) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {what} must be a mapping of keys to values, got {type(data).__name__}")
    if _depth(data) > MAX_DEPTH:
        raise UserError(f"{path}: invalid {what}: nested deeper than {MAX_DEPTH} levels")
    return data
