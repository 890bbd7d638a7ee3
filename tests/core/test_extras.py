"""The core install without the robot extras ([servo], [crazyflie], [px4]): the package imports, ``info``, ``train``
and ``eval`` work, and every command that needs a missing extra ends in one line naming the ``pip install``.

The commands run in one subprocess whose import system refuses the extras' modules (a meta-path finder raising
``ModuleNotFoundError``, as for a library that is not installed), so this venv, which has them, stands in for one
that does not."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from sim2real.errors import UserError
from sim2real.extras import PROVIDERS, require

HOVER = os.path.join(os.path.dirname(__file__), "..", "quad_deploy", "data", "crazyflie_hover_ppo")
HOVER_POLICY = [os.path.join(HOVER, "model.zip"), "--launch", os.path.join(HOVER, "launch.yaml")]

WITHOUT_EXTRAS = textwrap.dedent("""
    import contextlib, io, json, sys

    BLOCKED = {blocked}

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    import sim2real, sim2real.cli

    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = sim2real.cli.main(argv)
        results.append({{"argv": argv, "code": code, "err": err.getvalue()}})
    results.append({{"loaded": sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)}})
    print(json.dumps(results))
""").format(blocked=repr(set(PROVIDERS)))


def run_without_extras(commands: list[list[str]], cwd: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, json.dumps(commands)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_commands_run_and_robot_commands_name_their_extra(tmp_path):
    run = str(tmp_path / "run")
    train = ["train", "demo_so101_reach", "budget.total_timesteps=100", "eval.every_steps=100", "eval.episodes=1",
             "checkpoint.every_steps=100", "algo.learning_starts=60", "--run-dir", run]
    calibration = str(tmp_path / "calibration.json")
    works = [["info"], train, ["eval", run, "--episodes", "2"], ["calibrate", "--from-spec", "--out", calibration]]
    needs_extra = [  # (command, the extra its one-line error names)
        (["eval", run, "--conditions", "train,emulated", "--out", str(tmp_path / "report")], "servo"),
        (["deploy", *HOVER_POLICY, "--driver", "crazyflie", "--uri", "udp://127.0.0.1:9"], "crazyflie"),
        (["deploy", *HOVER_POLICY, "--driver", "mavlink", "--url", "udpout:127.0.0.1:9"], "px4"),
        (["deploy", run, "--driver", "dynamixel", "--port", str(tmp_path / "no-tty"), "--calibration", calibration,
          "--log", str(tmp_path / "deploy.jsonl")], "servo"),
        (["calibrate", "--driver", "feetech", "--port", str(tmp_path / "no-tty"), "--out", calibration], "servo"),
        (["emulate", "mavlink", "--port", "9"], "px4"),
    ]
    *results, loaded = run_without_extras(works + [argv for argv, _ in needs_extra], str(tmp_path))
    for result in results[:len(works)]:
        assert result["code"] == 0, (result["argv"], result["err"])
    assert os.path.isfile(os.path.join(run, "final", "model.zip"))
    for result, (_, extra) in zip(results[len(works):], needs_extra):
        err = result["err"].strip()
        assert result["code"] == 2 and len(err.splitlines()) == 1, (result["argv"], err)
        assert err.endswith(f'pip install "sim2real[{extra}]"'), (result["argv"], err)
    assert not os.path.exists(tmp_path / "report"), "the missing extra is found before anything is evaluated"
    assert loaded["loaded"] == []


def test_require_names_the_distribution_and_the_pip_install(monkeypatch):
    assert require("json", "nobody") is json  # an importable module passes through
    monkeypatch.setitem(PROVIDERS, "sim2real_absent_lib", ("absent-lib", "px4"))
    monkeypatch.setitem(PROVIDERS, "json", ("json-lib", "servo"))
    with pytest.raises(UserError) as missing:
        require("sim2real_absent_lib.sub", "the X driver")
    assert str(missing.value) == 'the X driver needs absent-lib, which is not installed: pip install "sim2real[px4]"'
    with pytest.raises(UserError) as broken:  # the library is there, a module it needs is not
        require("json._sim2real_absent", "the Y driver")
    assert "which cannot be imported (No module named 'json._sim2real_absent')" in str(broken.value)


def test_extras_in_pyproject_install_what_require_names():
    """Each library :func:`require` knows is in the extra it names, not in the core dependencies, and in [all]."""
    import re
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "pyproject.toml"), "rb") as file:
        project = tomllib.load(file)["project"]
    extras = project["optional-dependencies"]
    in_all = set(re.fullmatch(r"sim2real\[(.*)\]", extras["all"][0]).group(1).split(","))

    def names(specs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~ \[]", spec)[0] for spec in specs}

    for distribution, extra in PROVIDERS.values():
        assert distribution in names(extras[extra]) and extra in in_all
        assert distribution not in names(project["dependencies"])
