"""What the page learns from real files: a video's probe, and the sound map drawn over it.

The video is made here with known duration, frame rate and size (tests/media_factory.py); the result is
the fake engine's real AmbiX WAV for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from bridge_fixtures import fake_settings, fast_engine, wait_for
from media_factory import make_test_video
from web_client import PageSession

from visage.bridge.daemon import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    settings = fake_settings(tmp_path, web_port=0)
    with Daemon(settings, fast_engine(seconds=1.0)) as running:
        yield running


def test_probe_reports_the_videos_duration_rate_and_size(daemon: Daemon, tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", duration=1.2, fps=24, size=(96, 64)).path
    assert daemon.web_url is not None
    page = PageSession(daemon.web_url.rstrip("/")).open()
    probe = page.get(f"/api/probe?path={quote(str(video))}")
    assert probe.status == 200, probe.body
    info = probe.json()
    assert info["fps"] == 24.0 and (info["width"], info["height"]) == (96, 64)
    assert info["duration_s"] == pytest.approx(1.2, abs=1 / 24)
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    refused = page.get(f"/api/probe?path={quote(str(not_video))}")
    assert refused.status == 400 and refused.error()["code"] == "unreadable_media"


def test_a_file_that_is_no_video_is_named_once_with_the_reason(daemon: Daemon, tmp_path: Path) -> None:
    assert daemon.web_url is not None
    page = PageSession(daemon.web_url.rstrip("/")).open()
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    error = page.get(f"/api/probe?path={quote(str(not_video))}").error()
    message = error["message"]
    assert (error["code"], error["field"]) == ("unreadable_media", "path")
    assert message.count("notes.mp4") == 1 and str(tmp_path) not in message, message  # shown by the field
    assert "Invalid data" in message and "Errno" not in message, message  # FFmpeg's reason, not its number


def test_a_sound_map_is_rendered_next_to_the_result(daemon: Daemon, tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", duration=1.0, fps=12, size=(64, 48)).path
    assert daemon.web_url is not None
    page = PageSession(daemon.web_url.rstrip("/")).open()
    job_id = page.post_json("/api/jobs", {"media": str(video), "end_s": 1.0, "yaw_deg": 45.0}).json()[
        "job_id"
    ]
    assert page.post("/api/jobs/no-such-job/soundmap").error()["code"] == "unknown_job"
    wait_for(lambda: page.job(job_id)["state"] == "done")
    reply = page.post(f"/api/jobs/{job_id}/soundmap")
    assert reply.status == 202 and reply.json()["soundmap_state"] in ("rendering", "ready")
    wait_for(lambda: page.job(job_id)["soundmap_state"] != "rendering", timeout_s=60.0)
    job = page.job(job_id)
    assert job["soundmap_state"] == "ready", job
    movie = page.get(job["files"]["soundmap"])
    assert movie.status == 200 and movie.headers["Content-Type"] == "video/mp4"
    assert movie.body[4:8] == b"ftyp"
    assert job["files"]["soundmap"] == f"/api/jobs/{job_id}/files/soundmap"
