"""``sim2real eval POLICY --conditions ...``: determinism, user errors, complete reports."""
from __future__ import annotations

import json
import os
import re

import pytest

from sim2real.cli import main


def _eval(run, out, *extra):
    return main(["eval", run, "--conditions", "train,heldout-dynamics", "--episodes", "3", "--n-envs", "2",
                 "--videos", "1", "--out", str(out), *extra])


def test_eval_is_deterministic_under_a_seed(tiny_run, tmp_path):
    assert _eval(tiny_run, tmp_path / "a", "--seed", "7") == 0
    assert _eval(tiny_run, tmp_path / "b", "--seed", "7") == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert a["conditions"] == b["conditions"]
    eps = a["conditions"]["heldout-dynamics"]["episodes"]["run"]
    assert [e["seed"] for e in eps] == [7, 8, 9]
    assert _eval(tiny_run, tmp_path / "c", "--seed", "8") == 0
    c = json.loads((tmp_path / "c" / "report.json").read_text())
    assert c["conditions"]["train"]["episodes"] != a["conditions"]["train"]["episodes"]


def test_report_files_are_complete_and_html_references_only_existing_files(tiny_run, tmp_path):
    out = tmp_path / "r"
    assert _eval(tiny_run, out) == 0
    for name in ("report.json", "report.md", "report.html", "metrics.png", "final_distance.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    for cond in ("train", "heldout-dynamics"):
        metrics = report["conditions"][cond]["metrics"]
        for metric in ("success", "return", "final_distance"):
            est = metrics[metric]["mean"]
            assert est["ci_low"] <= est["value"] <= est["ci_high"] and est["n"] == 3
    assert "gap" in report["conditions"]["heldout-dynamics"]["metrics"]["success"]
    html = (out / "report.html").read_text()
    refs = re.findall(r"(?:src|href)='([^']+)'", html)
    assert any(r.endswith(".webm") for r in refs) and any(r.endswith(".png") for r in refs)
    for ref in refs:
        assert (out / ref).is_file() and (out / ref).stat().st_size > 0, ref
    wide = report["conditions"]["heldout-dynamics"]["facts"]["dynamics_ranges"]["dynamics.actuator.strength"]
    assert wide[0] < 0.85 and wide[1] > 1.15  # wider than the training range [0.85, 1.15]


def test_empty_texture_directory_is_a_clear_error(tiny_run, tmp_path, capsys):
    empty = tmp_path / "photos"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code = main(["eval", tiny_run, "--conditions", "heldout-textures", "--textures", str(empty), "--episodes", "1",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds no .png/.jpg/.jpeg images" in err[0]


def test_unreadable_texture_file_is_a_clear_error(tiny_run, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "table.png").write_bytes(b"not a png at all")
    code = main(["eval", tiny_run, "--conditions", "train,heldout-textures", "--textures", str(photos),
                 "--episodes", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "table.png" in err[0]
    assert not (tmp_path / "o" / "report.json").exists()  # refused before any episode ran


def test_emulated_refuses_robots_the_emulator_cannot_stand_in_for():
    from sim2real.errors import UserError
    from sim2real.evaluation.emulated import check_emulatable
    from sim2real.launch import resolve

    with pytest.raises(UserError, match="SO-101 arm for the reach and push tasks only"):
        check_emulatable(resolve("launch/panda_reach_dr.yaml"))


def test_unknown_condition_is_a_user_error(tiny_run, capsys):
    assert main(["eval", tiny_run, "--conditions", "train,mars"]) == 2
    assert "mars" in capsys.readouterr().err


def test_plain_eval_of_a_run_still_works(tiny_run, capsys):
    assert main(["eval", tiny_run, "--episodes", "2"]) == 0
    assert "success rate" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(tiny_run, "eval.json"))


def test_emulated_takes_camera_policies():
    from sim2real.evaluation.emulated import check_emulatable
    from sim2real.launch import resolve

    check_emulatable(resolve("launch/so101_reach_vision.yaml"))  # a HAL camera renders the emulated arm's scene
