"""A state folder written by an older daemon (schema 1) opens in this one: its jobs keep their values and
gain the columns added since, with their defaults."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from visage.bridge.database import SCHEMA_VERSION, StateDatabase
from visage.bridge.job_store import JobStore
from visage.bridge.jobs import JobState

# The jobs table exactly as schema 1 created it (the daemon before the web page), with one job in it.
_SCHEMA_1_JOBS = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
    spec_json TEXT NOT NULL, fingerprint TEXT NOT NULL, reply_host TEXT, reply_port INTEGER,
    use_cache INTEGER NOT NULL, cache_key TEXT, output TEXT, metadata TEXT,
    cached INTEGER NOT NULL DEFAULT 0, error_code TEXT, error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, batch_size INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX jobs_state_seq ON jobs (state, seq);
PRAGMA user_version=1;
"""
_SPEC = (
    '{"direction_curve": null, "end": 2.0, "extra": {}, "guidance": 2.5, "media": "/m/clip.mp4",'
    ' "output": "/o/clip.wav", "pitch": 10.0, "sample_rate": 48000, "seed": 7, "start": 1.0, "yaw": -30.0}'
)


def _write_schema_1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_1_JOBS)
    conn.execute(
        "INSERT INTO jobs (id, state, spec_json, fingerprint, use_cache, output, cached, created_at,"
        " updated_at) VALUES ('old-job', 'done', ?, 'fp', 1, '/o/clip.wav', 1, 100.0, 200.0)",
        (_SPEC,),
    )
    conn.commit()
    conn.close()


def test_a_schema_1_database_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    _write_schema_1(path)
    db = StateDatabase(path)
    try:
        job = JobStore(db).get("old-job")
        assert job is not None
        assert (job.state, job.output, job.cached, job.created_at, job.updated_at) == (
            JobState.DONE,
            "/o/clip.wav",
            True,
            100.0,
            200.0,
        )
        assert (job.spec.yaw, job.spec.pitch, job.spec.seed, job.spec.start) == (-30.0, 10.0, 7, 1.0)
        assert (job.source, job.group, job.group_label, job.group_total) == ("osc", None, None, None)
        assert db.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    finally:
        db.close()
    again = StateDatabase(path)  # opening a migrated database changes nothing
    try:
        assert JobStore(again).get("old-job") == job
    finally:
        again.close()


def test_a_new_database_has_the_current_schema(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "jobs.sqlite3")
    try:
        columns = {row[1] for row in db.query("PRAGMA table_info(jobs)")}
        assert {"source", "group_id", "group_label", "group_total"} <= columns
        assert db.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    finally:
        db.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        StateDatabase(path)
