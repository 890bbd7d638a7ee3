"""The wheel, installed outside the checkout, finds its launch files and reality profiles and runs the demo.

Builds the wheel from a copy of the source (the files git tracks or would track; ``pip wheel --no-deps
--no-build-isolation``: no network), installs it with ``pip install --no-deps`` into a fresh virtual environment in
a temporary folder and runs ``sim2real --version``, ``info``, a reduced ``demo`` (the same command and code path as
``make demo``, fewer steps and episodes) and ``eval --conditions emulated --reality lab`` there, with the working
directory outside the checkout.

Installing every dependency afresh would take minutes (torch alone is large) and is measured by hand in
BENCHMARKS.md ("Install size"); here the fresh environment borrows them from this environment's site-packages
through a ``.pth`` path line. That line adds the folder to ``sys.path`` only: the ``.pth`` files inside it, such as
the editable install's finder, are not run, so ``sim2real`` and its data come from the wheel alone (checked).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _source_copy(dest: Path) -> Path:
    """The files git tracks or would track (untracked, not ignored) of the checkout, copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv (outside the checkout) holding the wheel of this source."""
    root = tmp_path_factory.mktemp("wheel")
    source = _source_copy(root / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(root / "dist"), str(source)], check=True, timeout=300)
    wheel = next((root / "dist").glob("sim2real-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "sim2real/launch_files/demo_so101_reach.yaml" in names
    assert "sim2real/launch_files/realities/lab.yaml" in names
    assert {"sim2real/py.typed", "robots/py.typed", "randomizers/py.typed", "policies/py.typed"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "launch", "docs", "examples")]
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, timeout=300)
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *argv: str, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([str(bin_dir / "sim2real"), *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout


def test_installed_wheel_runs_demo_and_emulated_eval_outside_the_checkout(installed, tmp_path):
    site = subprocess.run([str(installed / "python"), "-c", "import sim2real; print(sim2real.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(site).is_relative_to(installed.parent) and not Path(site).is_relative_to(REPO)
    with open(REPO / "pyproject.toml", "rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert _run(installed, tmp_path, "--version").split() == ["sim2real", version]
    info = " ".join(_run(installed, tmp_path, "info").split())
    assert "demo_so101_reach" in info and "so101_reach" in info and "crazyflie_lab" in info
    unwrapped = info.replace(" ", "")  # rich folds long paths
    assert "site-packages/sim2real/launch_files" in unwrapped and str(REPO) not in unwrapped
    demo = _run(installed, tmp_path, "demo", "--timesteps", "200", "--episodes", "2", "--emulated-episodes", "1",
                "--videos", "0", "--out", str(tmp_path / "demo"))
    assert "HTML report:" in demo and (tmp_path / "demo" / "report" / "report.html").is_file()
    run = tmp_path / "demo" / "run"
    _run(installed, tmp_path, "eval", str(run), "--conditions", "emulated", "--episodes", "1", "--reality", "lab",
         "--videos", "0", "--out", str(tmp_path / "emulated"))
    report = json.loads((tmp_path / "emulated" / "report.json").read_text())
    text = json.dumps(report)
    assert "launch_files/realities/lab.yaml" in text  # the profile came from the installed wheel
    assert str(REPO / "launch") not in text
