"""The docs site (mkdocs.yml: guides + API reference from the docstrings) builds offline with warnings as errors."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGES = ("robots", "randomizers", "policies", "sim2real")


def test_docs_site_builds_strict_and_offline(tmp_path):
    site = tmp_path / "site"
    no_network = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                  "NO_PROXY": ""}  # a build that reached for the network would fail
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(site)],
                          cwd=ROOT, env=no_network, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr
    guide = (site / "guide" / "index.html").read_text()
    assert "Python API (issue 21)" in guide and "Deploy to a real arm" in guide  # the README's guides
    for package in PACKAGES:  # one reference page per package, generated from the docstrings
        page = (site / "api" / package / "index.html").read_text()
        assert page.count("doc-heading") > 20, package
    api = (site / "api" / "sim2real" / "index.html").read_text()
    assert "sim2real.vec_normalize.ObservationNormalizer" in api and "sim2real.io.atomic_write_text" in api
    benchmarks = site / "BENCHMARKS" / "index.html"
    assert benchmarks.is_file() and (site / "benchmarks" / "figures" / "rl2_adaptation.png").is_file()
