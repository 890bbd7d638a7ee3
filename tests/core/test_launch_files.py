"""Launch files and reality profiles by name (``so101_reach``, ``lab``) as well as by path; a path that exists wins."""
from __future__ import annotations

import glob
import os

import pytest

from sim2real.cli import main
from sim2real.emulators.reality import load_reality
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.launch.files import find_launch_file, find_reality, launch_names, reality_names, shipped_dir

REPO_LAUNCH = os.path.join(os.path.dirname(__file__), "..", "..", "launch")


def stems(pattern: str) -> list[str]:
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(pattern))


def test_shipped_names_are_the_repository_launch_folder():
    assert launch_names() == stems(os.path.join(REPO_LAUNCH, "*.yaml"))
    assert reality_names() == stems(os.path.join(REPO_LAUNCH, "realities", "*.yaml"))
    assert os.path.samefile(shipped_dir(), REPO_LAUNCH)  # an editable install reads the one copy in place


@pytest.mark.parametrize("name", ["so101_reach", "so101_reach.yaml"])
def test_a_name_finds_the_shipped_launch_file(name):
    assert os.path.samefile(find_launch_file(name), os.path.join(REPO_LAUNCH, "so101_reach.yaml"))
    assert resolve(name) == resolve(os.path.join(REPO_LAUNCH, "so101_reach.yaml"))


def test_an_existing_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "so101_reach.yaml").write_text("seed: 17\n")
    assert find_launch_file("so101_reach.yaml") == "so101_reach.yaml"
    assert resolve("so101_reach.yaml")["seed"] == 17
    assert resolve("so101_reach")["seed"] != 17  # without the suffix it is no file here: the shipped one
    (tmp_path / "lab.yaml").write_text("mass_scale: 1.7\n")
    assert load_reality("lab.yaml").mass_scale == 1.7
    assert load_reality("lab").mass_scale == load_reality(os.path.join(REPO_LAUNCH, "realities", "lab.yaml")).mass_scale


def test_unknown_names_list_the_shipped_ones_in_one_line():
    with pytest.raises(UserError) as launch:
        find_launch_file("so101_reech")
    text = str(launch.value)
    assert "\n" not in text and "so101_reech" in text and all(name in text for name in launch_names())
    with pytest.raises(UserError) as reality:
        find_reality("lb")
    assert all(name in str(reality.value) for name in reality_names())
    assert find_launch_file("no/such/dir.yaml") == "no/such/dir.yaml"  # a path: its reader reports it


def test_cli_takes_names(capsys, tmp_path):
    assert main(["train", "panda_reech"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "panda_reach_dr" in err
    assert main(["randomizers", "preview", "panda_reach_rgb_dr", "--n", "1", "--out", str(tmp_path / "p.png")]) == 0
    assert os.path.isfile(tmp_path / "p.png")
    assert main(["info"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in launch_names() + reality_names())
