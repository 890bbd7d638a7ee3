"""Stopping an emulator child process: the one place that does it."""
from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM ``process`` and wait up to ``timeout_s`` seconds; SIGKILL it if it does not exit by then."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
