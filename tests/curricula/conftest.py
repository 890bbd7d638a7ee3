"""Small spaces shared by the curriculum tests."""
from __future__ import annotations

import pytest

from randomizers.params import Param, ParamSpace


@pytest.fixture
def space() -> ParamSpace:
    """Two ADR-able dims (a scale factor and an additive offset) and a categorical param."""
    return ParamSpace([
        Param("dynamics.mass", apply="scale", range=(0.8, 1.05), hard_limits=(0.5, 1.1)),
        Param("dynamics.offset", nominal=0.0, range=(-0.1, 0.1), hard_limits=(-1.0, 1.0)),
        Param("visual.color", distribution="categorical", choices=("red", "blue")),
    ])


@pytest.fixture
def unit_square() -> ParamSpace:
    return ParamSpace([Param("a.x", nominal=0.5, range=(0.0, 1.0)), Param("a.y", nominal=0.5, range=(0.0, 1.0))])


@pytest.fixture
def poet_checkpoint_interrupted(monkeypatch) -> list[int]:
    """POET's second checkpoint write dies half-way (every file staged, no manifest, then KeyboardInterrupt); the
    steps of the attempted writes are appended to the returned list. Undo with ``monkeypatch.undo()``."""
    import os

    import sim2real.poet_train as poet_train
    from sim2real.checkpoints import CHECKPOINTS, STAGING_PREFIX

    real_write, calls = poet_train.write_checkpoint, []

    def killed_mid_write(run, step, fill, keep=2):
        calls.append(step)
        if len(calls) == 1:
            return real_write(run, step, fill, keep)
        staging = os.path.join(run, CHECKPOINTS, STAGING_PREFIX + f"step-{step}")
        os.makedirs(staging)
        fill(staging)  # every file written, the manifest not: the checkpoint is incomplete
        raise KeyboardInterrupt

    monkeypatch.setattr(poet_train, "write_checkpoint", killed_mid_write)
    return calls
