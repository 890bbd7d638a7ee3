"""Shared test settings: single-threaded torch and headless, seeded runs."""
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture
def threaded_emulator(tmp_path):
    """Factory ``threaded_emulator(build, **faults)``: the emulator ``build(profile_path)`` made from a reality
    profile (YAML file) with these ``faults``, serving in a thread of this process; all are stopped after the test."""
    import yaml

    running = []

    def start(build, **faults):
        path = tmp_path / f"reality-{len(running)}.yaml"
        path.write_text(yaml.safe_dump({"faults": faults}))
        emulator = build(str(path))
        running.append((emulator, emulator.start_thread()))
        return emulator

    yield start
    for emulator, thread in running:
        emulator.stop()
        thread.join(timeout=5)
