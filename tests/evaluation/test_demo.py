"""A smoke version of ``make demo`` (tiny budgets): train, evaluate the state policy on four conditions incl. the
emulator (held-out textures "n/a": it sees no image), the shipped camera pipeline on training vs held-out textures,
and one overview page."""
from __future__ import annotations

import json
import re

from sim2real.cli import main


def _table(printed: list[str], heading: str) -> list[str]:
    start = next(i for i, line in enumerate(printed) if line.startswith(heading)) + 1
    end = next(i for i in range(start, len(printed)) if not printed[i].strip())
    return printed[start:end]


def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--timesteps", "200", "--episodes", "2", "--emulated-episodes", "1", "--videos", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    html_line = [line for line in printed if line.startswith("HTML report: ")]
    assert len(html_line) == 1 and html_line[0].split()[2] == str(out / "demo.html")
    state = _table(printed, "State policy")
    assert state[0].startswith("condition") and [r.split()[0] for r in state[1:]] == [
        "train", "heldout-textures", "heldout-dynamics", "emulated"]
    assert "n/a (policy does not see images)" in state[2] and "%" not in state[2]  # not a 0 gap
    camera = _table(printed, "Camera pipeline")
    assert [r.split()[0] for r in camera[1:]] == ["train", "heldout-textures"]
    assert "localization error" in camera[0] and "%" in camera[2]  # a measured gap

    report = json.loads((out / "report" / "report.json").read_text())
    assert report["condition_order"] == ["train", "heldout-textures", "heldout-dynamics", "emulated"]
    textures = report["conditions"]["heldout-textures"]
    assert textures["not_applicable"] == "policy does not see images" and not textures["episodes"]
    assert "gap" in report["conditions"]["heldout-dynamics"]["metrics"]["success"]
    assert len(report["conditions"]["emulated"]["episodes"]["run"]) == 1
    page = (out / "report" / "report.html").read_text()
    assert "n/a (policy does not see images)" in page
    refs = re.findall(r"(?:src|href)='([^']+)'", page)
    assert refs and all((out / "report" / r).is_file() for r in refs)
    logs = report["conditions"]["emulated"]["facts"]["run"]["logs"]
    assert f"<code>{logs}</code>" in page and "safety interventions" in page  # the emulated facts, not only in .md
    assert (out / "report" / "emulated" / "run" / "deploy_log_000.jsonl").is_file()

    seen = json.loads((out / "camera-report" / "report.json").read_text())["conditions"]
    for name in ("train", "heldout-textures"):
        assert seen[name]["not_applicable"] is None and len(seen[name]["episodes"]["so101_reach_vision"]) == 2
        assert seen[name]["metrics"]["localization_error"]["mean"]["n"] == 2  # the perception really ran
    assert "gap" in seen["heldout-textures"]["metrics"]["success"]

    overview = (out / "demo.html").read_text()
    assert overview.count("<table>") == 2 and "n/a (policy does not see images)" in overview
    links = re.findall(r"href='([^']+)'", overview)
    assert sorted(links) == ["camera-report/report.html", "report/report.html"]
    assert all((out / link).is_file() for link in links)
