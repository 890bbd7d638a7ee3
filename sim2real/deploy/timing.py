"""Keeping a deployment loop on time on a busy computer (figures: BENCHMARKS.md, "Deploy loop timing under load"):
the watchdog's default limits, and a scheduling-priority hint.

While the timed loop runs, :func:`raised_priority` raises the loop thread's scheduling priority where the OS permits
it — ``nice`` (nice −10: a ~9.5x larger CFS share than a default thread) or ``fifo`` (SCHED_FIFO, real time) — and
puts it back afterwards. Without the permission (no CAP_SYS_NICE, an RLIMIT_NICE of 0) nothing changes and the loop
runs as before: a hint, never a requirement. Meant for a companion computer driving real hardware; an emulator on
the same CPU is starved by it (the servo SDKs busy-poll for the reply the emulator must compute).
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Iterator

STALE_PERIODS = 2.5  # the watchdog's default state-age limit, control periods
OVERRUN_PERIODS = 3.0  # its default step-lateness limit, control periods: holds on a loaded 2-core machine (steps
# started at most ~3 periods late at a load average of ~9), while a loop frozen for more than 4 periods trips
PRIORITIES = ("none", "nice", "fifo")
NICE = -10  # the loop thread's nice value with priority "nice"
FIFO = 10  # its SCHED_FIFO priority with "fifo" (1..99; low: kernel threads and IRQ handlers stay above it)


def _raise(priority: str, thread: int) -> tuple[str, Callable[[], None] | None]:
    """(what was obtained, how to undo it); ``"unchanged"`` when not permitted."""
    try:
        if priority == "nice":
            before = os.getpriority(os.PRIO_PROCESS, thread)
            if before > NICE:
                os.setpriority(os.PRIO_PROCESS, thread, NICE)  # Linux: PRIO_PROCESS with a thread id is per thread
                return f"nice {NICE}", lambda: os.setpriority(os.PRIO_PROCESS, thread, before)
        elif priority == "fifo":
            policy, param = os.sched_getscheduler(thread), os.sched_getparam(thread)
            os.sched_setscheduler(thread, os.SCHED_FIFO, os.sched_param(FIFO))
            return f"SCHED_FIFO {FIFO}", lambda: os.sched_setscheduler(thread, policy, param)
    except (OSError, AttributeError):  # not permitted here (or not Linux): run as before
        pass
    return "unchanged", None


@contextlib.contextmanager
def raised_priority(priority: str = "none") -> Iterator[str]:
    """The calling thread at ``priority`` (one of :data:`PRIORITIES`) until the block ends; yields what was
    obtained (e.g. ``"nice -10"``, ``"unchanged"``) for the log."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
    obtained, undo = _raise(priority, threading.get_native_id()) if priority != "none" else ("unchanged", None)
    try:
        yield obtained
    finally:
        if undo is not None:
            with contextlib.suppress(OSError):
                undo()
