"""The report people read: browser-playable videos, Wilson intervals in the tables, a per-seed breakdown, the
emulated condition's facts in the HTML, plots that fit the page; and (when Chromium is installed) the page in a
real browser."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil

import numpy as np
import pytest

from sim2real.evaluation.report import write_report, write_video
from sim2real.evaluation.run import ConditionResult, summarize
from sim2real.evaluation.simulated import Episode


def _frames(n: int = 12, size: int = 48) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[:, : 4 * i + 4] = (200, 80, 30)
        frames.append(frame)
    return frames


def test_video_is_vp9_webm_and_reads_back(tmp_path):
    import cv2

    path = str(tmp_path / "clip.webm")
    assert write_video(_frames(), path)
    capture = cv2.VideoCapture(path)
    fourcc = (int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF).to_bytes(4, "little").decode()
    ok, first = capture.read()
    assert fourcc == "VP90" and ok and first.shape == (48, 48, 3)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert not os.path.exists(path + ".tmp.webm")
    assert not write_video([], str(tmp_path / "none.webm"))


def _results(n: int = 30) -> list[ConditionResult]:
    train, emulated = ConditionResult("train"), ConditionResult("emulated")
    for k, label in enumerate(("seed0", "seed1")):
        train.episodes[label] = [Episode(i, True, 10.0 - 0.1 * i, 0.01 + 0.001 * k,
                                         frames=_frames() if i == 0 else []) for i in range(n)]
        emulated.episodes[label] = [Episode(i, i % 3 != 0, 8.0, 0.03) for i in range(6)]
        emulated.facts[label] = {"reality": "/profiles/lab.yaml", "logs": f"/work/out/emulated/{label}",
                                 "trips": [{"episode": 2, "kind": "watchdog", "reason": "state 5 periods old"}],
                                 "interventions": 7 + k, "rate_hz": 30.0, "watchdog_s": 5 / 30, "camera": None}
    return [train, emulated]


def _report(tmp_path) -> tuple[dict, str]:
    results = _results()
    summary = {"env_id": "SO101Reach-v0", "policies": ["runs/a/seed0", "runs/a/seed1"], "episodes": 30,
               "emulated_episodes": 6, "seed": 0, "condition_order": ["train", "emulated"],
               "conditions": summarize(results, 0, n_boot=200)}
    write_report(results, summary, str(tmp_path))
    return summary, (tmp_path / "report.html").read_text(encoding="utf-8")


def test_success_rates_use_wilson_intervals_per_condition_and_seed(tmp_path):
    summary, html = _report(tmp_path)
    success = summary["conditions"]["train"]["metrics"]["success"]
    assert success["interval"] == "wilson" and success["mean"]["n"] == 60
    assert 0.93 < success["mean"]["ci_low"] < 0.95 and success["mean"]["ci_high"] == 1.0  # 60/60
    assert set(success["per_policy"]) == {"seed0", "seed1"}
    assert round(success["per_policy"]["seed0"]["ci_low"], 3) == 0.886  # 30/30
    distance = summary["conditions"]["train"]["metrics"]["final_distance"]
    assert distance["interval"] == "bootstrap" and distance["per_policy"]["seed1"]["value"] == pytest.approx(0.011)
    assert "100.0% [88.6, 100.0]" in html and "[100.0, 100.0]" not in html
    assert "Per policy (seed)" in html and html.count("<td>seed0</td>") == 2  # train and emulated rows


def test_html_names_the_emulated_interventions_trips_and_logs(tmp_path):
    _, html = _report(tmp_path)
    for label, interventions in (("seed0", 7), ("seed1", 8)):
        assert f"<code>/work/out/emulated/{label}</code>" in html
        assert f"{interventions} safety interventions" in html
    assert "episode 2: watchdog (state 5 periods old)" in html and "/profiles/lab.yaml" in html


def test_plots_and_videos_fit_the_page(tmp_path):
    _, html = _report(tmp_path)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    assert "img,video{max-width:100%;height:auto}" in style
    videos = re.findall(r"<video src='([^']+)'", html)
    assert len(videos) == 2 and all(v.endswith(".webm") and (tmp_path / v).is_file() for v in videos)


def _browser_check():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "report_in_browser.py")
    spec = importlib.util.spec_from_file_location("report_in_browser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no Chromium on this machine (the check runs where one is installed)")
def test_report_videos_decode_in_headless_chromium(tmp_path):
    check = _browser_check()
    _report(tmp_path)
    result = check.check_report(check.find_chromium(), str(tmp_path))
    assert result["videos_total"] == 2 and result["videos_decodable"] == 2, result["videos"]
    assert result["screenshot_grey_std"] > 5.0 and result["ok"]
