"""``sim2real sysid``: bad input is one line on stderr with a non-zero exit code, never a traceback; the fit command
end to end on a short excitation log (profile, ranges, fitted launch file, report)."""
from __future__ import annotations

import os
import sys

import pytest
import yaml

from sim2real.cli import main
from sim2real.emulators.reality import load_reality
from sim2real.launch import resolve

sys.path.insert(0, os.path.dirname(__file__))
from test_arm_sysid import TRUTH, excite  # noqa: E402
from sim2real.sysid.excitation_arm import Excitation  # noqa: E402


def run_cli(capsys, *arguments: str) -> tuple[int, str]:
    try:
        code = main(["sysid", *arguments])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "excitation.jsonl")
    excite(path, Excitation(amplitude=0.3, hold_s=0.4, chirp_s=0.8, joints=("elbow_flex",), loaded_poses=()))
    return path


@pytest.mark.parametrize("arguments, message", [
    (["fit", "missing.jsonl", "--out", "{tmp}/f.yaml"], "missing.jsonl: no such log"),
    (["fit", "{log}", "--out", "{tmp}/f.yaml", "--segment-s", "-1"], "--segment-s"),
    (["fit", "{log}", "--out", "{tmp}/f.yaml", "--fixed", "mass"], "--fixed mass: not a parameter"),
    (["fit", "{log}", "--out", "{tmp}/f.yaml", "--fixed", "mass_scale=heavy"], "must be a number"),
    (["fit", "{log}", "--out", "{tmp}/f.yaml", "--fixed", "mass_scale=9"], "outside"),
    (["fit", "{log}", "--out", "{tmp}/f.yaml", "--launch", "no_such_launch"], "no_such_launch"),
    (["fit", "{log}", "--out", "{tmp}/f.yaml", "--segment-s", "60"], "no contiguous run"),
    (["fit", "{tmp}", "--out", "{tmp}/f.yaml"], "is a directory"),
    (["collect", "--driver", "dynamixel", "--log", "{tmp}/c.jsonl", "--calibration", "x.json"], "--port"),
    (["collect", "--driver", "crazyflie", "--log", "{tmp}/c.jsonl"], "--address"),
    (["collect", "--driver", "dynamixel", "--port", "/dev/null", "--log", "{tmp}/c.jsonl", "--rate-limit", "1.5"],
     "--rate-limit"),
    (["collect", "--driver", "dynamixel", "--port", "/dev/null", "--robot", "r2d2", "--log", "{tmp}/c.jsonl"],
     "r2d2"),
    (["loop", "--driver", "dynamixel", "--port", "/dev/null", "--launch", "no_such_launch", "--policy", "p",
      "--out", "{tmp}/loop"], "no_such_launch"),
    (["loop", "--driver", "dynamixel", "--port", "/dev/null", "--launch", "so101_reach", "--out", "{tmp}/loop"],
     "--policy"),
])
def test_bad_input_is_one_line(capsys, tmp_path, tiny_log, arguments, message):
    filled = [a.format(tmp=tmp_path, log=tiny_log) for a in arguments]
    code, err = run_cli(capsys, *filled)
    assert code != 0
    assert message in err and "Traceback" not in err and len(err.splitlines()) <= 2, err


def test_fit_command_writes_profile_ranges_launch_and_report(capsys, tmp_path, tiny_log):
    out = str(tmp_path / "fitted.yaml")
    fixed = ",".join(f"{k}={v}" for k, v in TRUTH.items() if k not in ("latency_s", "position_gain"))
    code = main(["sysid", "fit", tiny_log, "--out", out, "--segment-s", "1", "--evaluations", "30", "--fixed", fixed,
                 "--launch", "so101_reach"])
    printed = capsys.readouterr().out
    assert code in (0, 3) and "held-out replay error" in printed
    profile = load_reality(out)
    assert profile.mass_scale == pytest.approx(TRUTH["mass_scale"])  # pinned values are written as given
    assert abs(profile.latency_s - TRUTH["latency_s"]) < 0.01
    config = resolve(str(tmp_path / "fitted_launch.yaml"))
    params = {p["name"]: p["range"] for g in config["randomizers"] for p in g.get("params", [])}
    assert params["dynamics.link.mass"][0] <= TRUTH["mass_scale"] <= params["dynamics.link.mass"][1]
    with open(tmp_path / "fitted_ranges.yaml") as handle:
        assert yaml.safe_load(handle)["randomizers"]
    assert os.path.exists(tmp_path / "fitted_report.html") and os.path.exists(tmp_path / "fitted_report.json")
