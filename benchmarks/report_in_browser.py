"""Does an evaluation report play in a browser? Load ``report.html`` in headless Chromium and check that every
``<video>`` reaches a decodable stream (``readyState >= 2``, ``videoWidth > 0``) and that a screenshot of the page
is not blank.

    python benchmarks/report_in_browser.py --report runs/demo-X/report     # a report `sim2real eval` wrote
    python benchmarks/report_in_browser.py                                  # a small report written here first

Chromium comes from the system (Debian: ``apt-get install chromium``); the script exits 3 when none is found.
The page is probed through a copy with a small script appended (the report itself carries no JavaScript); the
copy is removed afterwards. Prints one JSON object; exit 0 when every video decodes and the page is not blank.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--mute-audio")
PROBE = """<script>
(function () {
  var videos = Array.prototype.slice.call(document.querySelectorAll('video'));
  function report() {
    var states = videos.map(function (v) {
      return {src: v.getAttribute('src'), readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,
              error: v.error ? v.error.code + ' ' + (v.error.message || '') : null};
    });
    document.body.setAttribute('data-video-probe', JSON.stringify(states));
  }
  videos.forEach(function (v) {
    v.preload = 'auto';
    v.addEventListener('loadeddata', report);
    v.addEventListener('error', report);
    v.load();
  });
  report();
})();
</script>"""


def find_chromium() -> str | None:
    """Path of a Chromium-family browser on PATH, or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def _run_chromium(chromium: str, args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout_s, check=False)


def probe_videos(chromium: str, report_html: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Per ``<video>`` of ``report_html``: src, readyState, videoWidth/Height and the media error (None if none)."""
    with open(report_html, encoding="utf-8") as handle:
        page = handle.read()
    probe = os.path.join(os.path.dirname(os.path.abspath(report_html)), ".browser-probe.html")
    with open(probe, "w", encoding="utf-8") as handle:
        handle.write(page.replace("</body>", PROBE + "</body>"))
    try:
        done = _run_chromium(chromium, ["--virtual-time-budget=15000", "--dump-dom", f"file://{probe}"], timeout_s)
    finally:
        os.remove(probe)
    found = re.search(r"data-video-probe=\"([^\"]*)\"", done.stdout)
    if found is None:
        raise RuntimeError(f"no probe result in Chromium's DOM (exit {done.returncode}): {done.stderr[-400:]}")
    import html

    return json.loads(html.unescape(found.group(1)))


def screenshot_spread(chromium: str, report_html: str, timeout_s: float = 60.0) -> float:
    """Standard deviation (0..255) of the grey levels of a 1280 x 1600 screenshot of the page: 0 means blank."""
    import cv2

    with tempfile.TemporaryDirectory(prefix="report-shot-") as folder:
        shot = os.path.join(folder, "page.png")
        _run_chromium(chromium, ["--window-size=1280,1600", "--virtual-time-budget=5000", f"--screenshot={shot}",
                                 f"file://{os.path.abspath(report_html)}"], timeout_s)
        image = cv2.imread(shot, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise RuntimeError("Chromium wrote no screenshot")
        return float(image.std())


def check_report(chromium: str, report_dir: str) -> dict[str, Any]:
    """Everything this script measures for ``report_dir/report.html``; ``ok`` when all videos decode."""
    html_path = os.path.join(report_dir, "report.html")
    videos = probe_videos(chromium, html_path)
    spread = screenshot_spread(chromium, html_path)
    decodable = [v for v in videos if v["readyState"] >= 2 and v["width"] > 0 and v["error"] is None]
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {"browser": version, "report": os.path.abspath(html_path), "videos": videos,
            "videos_decodable": len(decodable), "videos_total": len(videos), "screenshot_grey_std": round(spread, 1),
            "ok": bool(videos) and len(decodable) == len(videos) and spread > 5.0}


def write_sample_report(out_dir: str) -> str:
    """A small report of one rendered SO-101 Reach episode per condition (a random policy), written here."""
    import numpy as np

    from sim2real.agents import StatelessPolicy
    from sim2real.evaluation.report import write_report
    from sim2real.evaluation.run import ConditionResult, summarize
    from sim2real.evaluation.simulated import run_episodes
    from sim2real.launch import resolve
    from sim2real.train import make_env_fn

    config = resolve("launch/so101_reach.yaml")

    class RandomPolicy(StatelessPolicy):
        def __init__(self) -> None:
            self.rng = np.random.default_rng(0)

        def act_batch(self, observations: list[Any]) -> np.ndarray:
            return self.rng.uniform(-1, 1, (len(observations), 3))

        def goal_estimates(self) -> None:
            return None

    result = ConditionResult("train")
    result.episodes["random"] = run_episodes(lambda rank: make_env_fn(config, rank)(), RandomPolicy(), [0, 1], 2, 2)
    summary = {"env_id": config["env"]["id"], "policies": ["random"], "episodes": 2, "emulated_episodes": None,
               "seed": 0, "condition_order": ["train"], "conditions": summarize([result], 0, 200)}
    write_report([result], summary, out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", default=None, help="report directory (default: write a small one first)")
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium on PATH)")
    args = parser.parse_args(argv)
    chromium = args.chromium or find_chromium()
    if chromium is None:
        print("no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 3
    if args.report is None:
        with tempfile.TemporaryDirectory(prefix="report-") as folder:
            result = check_report(chromium, write_sample_report(folder))
    else:
        result = check_report(chromium, args.report)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
