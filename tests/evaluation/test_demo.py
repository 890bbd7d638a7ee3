"""A smoke version of ``make demo`` (tiny budgets): train, evaluate on four conditions incl. the emulator, report."""
from __future__ import annotations

import json
import re

from sim2real.cli import main


def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--timesteps", "200", "--episodes", "2", "--emulated-episodes", "1", "--videos", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    html_line = [line for line in printed if line.startswith("HTML report: ")]
    assert len(html_line) == 1
    html = html_line[0].split()[2]
    assert html.endswith("report.html") and (out / "report" / "report.html").is_file()
    table = printed[printed.index(html_line[0]) - 5:printed.index(html_line[0])]
    assert table[0].startswith("condition") and [r.split()[0] for r in table[1:]] == [
        "train", "heldout-textures", "heldout-dynamics", "emulated"]
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["condition_order"] == ["train", "heldout-textures", "heldout-dynamics", "emulated"]
    assert len(report["conditions"]["emulated"]["episodes"]["run"]) == 1
    refs = re.findall(r"(?:src|href)='([^']+)'", (out / "report" / "report.html").read_text())
    assert refs and all((out / "report" / r).is_file() for r in refs)
    logs = report["conditions"]["emulated"]["facts"]["run"]["logs"]
    page = (out / "report" / "report.html").read_text()
    assert f"<code>{logs}</code>" in page and "safety interventions" in page  # the emulated facts, not only in .md
    assert (out / "report" / "emulated" / "run" / "deploy_log_000.jsonl").is_file()
