"""How a deployment ends when something fails: an exception described in one line, the exit codes of
``sim2real deploy``, and a shutdown that releases every device even when one of them fails."""
from __future__ import annotations

import os
import textwrap
import traceback
from typing import Callable

# The exit codes of ``sim2real deploy`` (also printed by ``sim2real deploy --help``).
EXIT_DONE = 0
EXIT_USER_ERROR = 2
EXIT_TRIPPED = 3
EXIT_ESTOP = 4
EXIT_FAULT = 5
EXIT_STOP_FAILED = 6
EXIT_CODES = {
    EXIT_DONE: "all episodes done",
    EXIT_USER_ERROR: "a mistake in the flags or files, found before connecting (one line, nothing moved)",
    EXIT_TRIPPED: "safe-stopped by the watchdog, a lost link, the flight envelope, or home/start not reached",
    EXIT_ESTOP: "safe-stopped by the e-stop (Ctrl-C, SIGTERM, q/space/Esc, --stop-file)",
    EXIT_FAULT: "safe-stopped by a fault: the policy gave a non-finite action, or the policy, task, driver, camera "
                "or log raised an error (the log's event record names it)",
    EXIT_STOP_FAILED: "the safe stop itself failed (driver or link dead): check the robot by hand",
}
FAULT_KINDS = ("policy", "error")  # stop kinds that mean the software, not the robot or its link, failed
_REASON_CHARS = 300  # a fault's one-line reason is cut here; the log keeps the whole traceback
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LOOP_FILES = ("loop.py", "arm.py", "multirotor.py")  # the deployment loop's own frames, skipped to name the culprit


def exit_code(stopped: dict | None) -> int:
    """The exit code of a deployment that ended with ``stopped`` (the loop's stop record; None: all done)."""
    if stopped is None:
        return EXIT_DONE
    if stopped.get("safe_stop_error") is not None:
        return EXIT_STOP_FAILED
    if stopped["kind"] == "estop":
        return EXIT_ESTOP
    return EXIT_FAULT if stopped["kind"] in FAULT_KINDS else EXIT_TRIPPED


def exit_codes_help(width: int = 79) -> str:
    """The exit codes, one per (wrapped) line, for ``--help``."""
    return "exit codes:\n" + "\n".join(textwrap.fill(text, width, initial_indent=f"  {code}  ", subsequent_indent="     ")
                                       for code, text in EXIT_CODES.items())


def describe(err: BaseException) -> str:
    """``Type: message`` on one line, cut to a readable length."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 1] + "…"


def _place(frame: traceback.FrameSummary) -> str:
    path = os.path.abspath(frame.filename)
    path = os.path.relpath(path, _ROOT) if path.startswith(_ROOT + os.sep) else path.split("site-packages/")[-1]
    return f"{path}:{frame.lineno} {frame.name}"


def culprit(err: BaseException) -> str:
    """Where the loop handed control to the code that raised: ``file:line function`` of the first frame past the
    deployment loop's own (the policy's ``act``, the task's method, the driver's call), or the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "unknown place"
    inside = [i for i, f in enumerate(frames) if os.path.basename(f.filename) in _LOOP_FILES
              and os.path.dirname(os.path.abspath(f.filename)) == os.path.dirname(os.path.abspath(__file__))]
    index = min(inside[-1] + 1, len(frames) - 1) if inside else len(frames) - 1
    return _place(frames[index])


def fault_reason(err: BaseException) -> tuple[str, str]:
    """(one-line reason naming the error and where it came from, the whole traceback)."""
    return f"{describe(err)} (raised in {culprit(err)})", "".join(traceback.format_exception(err)).rstrip()


def release(*closers: Callable[[], None] | None) -> list[str]:
    """Call each closer (log close, camera and robot disconnect) even when an earlier one raises; returns what
    failed, one line each."""
    problems = []
    for close in closers:
        if close is None:
            continue
        try:
            close()
        except Exception as err:  # one dead device must not keep the others open
            problems.append(f"{getattr(close, '__qualname__', close)}: {describe(err)}")
    return problems
