"""``sim2real curriculum plot``: draws a history written by a teacher; user mistakes are one-line errors."""
from __future__ import annotations

import os

from randomizers.curricula import ADRTeacher
from randomizers.curricula.store import HISTORY_FILE, append_history, start_record
from randomizers.params import ParamSpace
from sim2real.cli import main
from sim2real.commands.curriculum import series


def test_plot_from_history(tmp_path, space: ParamSpace, capsys) -> None:
    adr = ADRTeacher(space, p_b=1.0, buffer_size=2, seed=0)
    path = str(tmp_path / HISTORY_FILE)
    append_history(path, [start_record(adr, 0)])
    for k in range(200):
        task = adr.sample()
        adr.update(task, 0.0, True)
        append_history(path, [{"event": "range", "timesteps": 10 * k, **e} for e in adr.pop_events()])
    ranges, entropy = series([__import__("json").loads(line) for line in open(path)])
    assert ranges["dynamics.mass"][0] == (0.0, 1.0, 1.0)
    assert ranges["dynamics.mass"][-1][1:] == tuple(adr.ranges()["dynamics.mass"])
    assert entropy[-1][1] == adr.entropy()
    out = tmp_path / "ranges.png"
    assert main(["curriculum", "plot", str(tmp_path), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_user_errors(tmp_path, capsys) -> None:
    assert main(["curriculum", "plot", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["curriculum", "plot", str(tmp_path)]) == 2
    assert HISTORY_FILE in capsys.readouterr().err
    (tmp_path / HISTORY_FILE).write_text("")
    assert main(["curriculum", "plot", str(tmp_path)]) == 2
    assert "no start record" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "curriculum_ranges.png")
