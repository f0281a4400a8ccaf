"""Old upload folders are removed (at start and daily) unless a pending job still uses them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_fixtures import fake_settings, wait_for
from conftest import WebDaemon, _start

from visage.bridge.database import StateDatabase
from visage.bridge.engine import GenerateSpec
from visage.bridge.job_store import JobStore
from visage.bridge.jobs import Job, JobState
from visage.bridge.web.server import sweep_uploads

DAY_S = 24 * 3600.0
RETENTION_DAYS = 7  # the README's "finished jobs are deleted after 7 days", the uploads' retention too


def _upload(uploads: Path, name: str, file_name: str, age_days: float) -> Path:
    """An upload folder with one file, both last changed ``age_days`` ago; the file's path."""
    folder = uploads / name
    folder.mkdir(parents=True)
    path = folder / file_name
    path.write_bytes(b"data")
    _age(path, age_days)
    _age(folder, age_days)
    return path


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY_S
    os.utime(path, (stamp, stamp))


def _job(job_id: str, media: Path, curve: Path | None, out_dir: Path) -> Job:
    spec = GenerateSpec(
        media=media,
        start=0.0,
        end=1.0,
        yaw=0.0,
        pitch=0.0,
        direction_curve=curve,
        guidance=2.5,
        seed=1,
        sample_rate=48_000,
        output=out_dir / f"{job_id}.wav",
        extra={},
    )
    return Job(id=job_id, seq=0, state=JobState.ACCEPTED, spec=spec, fingerprint=job_id)


def test_old_uploads_go_unless_a_pending_job_uses_them(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    old = RETENTION_DAYS + 1
    media = _upload(uploads, "pending-media", "clip.mp4", old)
    curve = _upload(uploads, "pending-curve", "curve.json", old)
    _upload(uploads, "unused", "clip.mp4", old)
    finished_media = _upload(uploads, "finished-only", "clip.mp4", old)
    _upload(uploads, "fresh", "clip.mp4", RETENTION_DAYS - 1)
    arriving = _upload(uploads, "arriving", ".clip.mp4.part", 0)  # an upload still being written
    _age(arriving.parent, old)
    (uploads / "stray-file").write_bytes(b"")  # not a folder: not the sweep's business
    _age(uploads / "stray-file", old)

    db = StateDatabase(tmp_path / "jobs.sqlite3")
    try:
        store = JobStore(db)
        store.insert(_job("pending", media, curve, tmp_path))
        store.insert(_job("finished", finished_media, None, tmp_path))
        store.transition("finished", JobState.CANCELLED)
        removed = sweep_uploads(store, uploads, time.time())
    finally:
        db.close()

    assert sorted(p.name for p in removed) == ["finished-only", "unused"]
    left = sorted(p.name for p in uploads.iterdir())
    assert left == ["arriving", "fresh", "pending-curve", "pending-media", "stray-file"]
    assert media.read_bytes() == b"data" and curve.read_bytes() == b"data"


@pytest.fixture
def daemon_with_old_uploads(tmp_path: Path) -> Iterator[WebDaemon]:
    uploads = fake_settings(tmp_path).uploads_dir  # where the daemon below keeps them
    _upload(uploads, "old", "clip.mp4", RETENTION_DAYS + 2)
    _upload(uploads, "recent", "clip.mp4", 1)
    yield from _start(tmp_path, None)


def test_the_daemon_sweeps_old_uploads_when_it_starts(daemon_with_old_uploads: WebDaemon) -> None:
    uploads = daemon_with_old_uploads.daemon.settings.uploads_dir
    wait_for(lambda: not (uploads / "old").exists(), 10.0, "the old upload folder was not removed")
    assert (uploads / "recent" / "clip.mp4").read_bytes() == b"data"
