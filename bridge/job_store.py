"""Jobs persisted in the state database: insert, transition, query, recover after a crash."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .database import StateDatabase
from .engine import GenerateSpec
from .jobs import PENDING_STATES, Job, JobState

_COLUMNS = (
    "id, seq, state, spec_json, fingerprint, reply_host, reply_port, use_cache, cache_key, output, metadata,"
    " cached, error_code, error_message, attempts, batch_size, created_at, updated_at,"
    " source, group_id, group_label, group_total"
)


class DuplicateJob(Exception):
    """A job with this id already exists; ``existing`` is it."""

    def __init__(self, existing: Job) -> None:
        super().__init__(existing.id)
        self.existing = existing


def spec_to_json(spec: GenerateSpec) -> str:
    """Serialise a spec for the database (paths as strings)."""
    return json.dumps(
        {
            "media": str(spec.media),
            "start": spec.start,
            "end": spec.end,
            "yaw": spec.yaw,
            "pitch": spec.pitch,
            "direction_curve": None if spec.direction_curve is None else str(spec.direction_curve),
            "guidance": spec.guidance,
            "seed": spec.seed,
            "sample_rate": spec.sample_rate,
            "output": str(spec.output),
            "extra": dict(spec.extra),
        },
        sort_keys=True,
    )


def spec_from_json(text: str) -> GenerateSpec:
    obj: dict[str, Any] = json.loads(text)
    curve = obj["direction_curve"]
    return GenerateSpec(
        media=Path(obj["media"]),
        start=obj["start"],
        end=obj["end"],
        yaw=obj["yaw"],
        pitch=obj["pitch"],
        direction_curve=None if curve is None else Path(curve),
        guidance=obj["guidance"],
        seed=obj["seed"],
        sample_rate=obj["sample_rate"],
        output=Path(obj["output"]),
        extra=obj["extra"],
    )


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        seq=row["seq"],
        state=JobState(row["state"]),
        spec=spec_from_json(row["spec_json"]),
        fingerprint=row["fingerprint"],
        reply_host=row["reply_host"],
        reply_port=row["reply_port"],
        use_cache=bool(row["use_cache"]),
        cache_key=row["cache_key"],
        output=row["output"],
        metadata=row["metadata"],
        cached=bool(row["cached"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        batch_size=row["batch_size"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        source=row["source"],
        group=row["group_id"],
        group_label=row["group_label"],
        group_total=row["group_total"],
    )


class JobStore:
    """CRUD and state transitions of jobs; every method is one transaction."""

    def __init__(self, db: StateDatabase) -> None:
        self._db = db

    def insert(self, job: Job) -> Job:
        """Persist a new job (its ``seq`` is assigned here) and return it.

        Raises:
            DuplicateJob: the id exists already.
        """
        now = time.time()
        with self._db.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job.id,)).fetchone()
            if row is not None:
                raise DuplicateJob(_row_to_job(row))
            cursor = conn.execute(
                "INSERT INTO jobs (id, state, spec_json, fingerprint, reply_host, reply_port, use_cache,"
                " created_at, updated_at, source, group_id, group_label, group_total)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.state.value,
                    spec_to_json(job.spec),
                    job.fingerprint,
                    job.reply_host,
                    job.reply_port,
                    int(job.use_cache),
                    now,
                    now,
                    job.source,
                    job.group,
                    job.group_label,
                    job.group_total,
                ),
            )
            seq = cursor.lastrowid
        assert seq is not None
        return replace(job, seq=seq, created_at=now, updated_at=now)

    def get(self, job_id: str) -> Job | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _row_to_job(rows[0]) if rows else None

    def transition(self, job_id: str, state: JobState, **changes: Any) -> Job:
        """Move a job to ``state`` with field ``changes``, checking the state machine.

        Raises:
            KeyError: no such job.
            jobs.InvalidTransition: the move is not allowed (e.g. the job is already terminal).
        """
        with self._db.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            job = _row_to_job(row).moved(state, updated_at=time.time(), **changes)
            conn.execute(
                "UPDATE jobs SET state = ?, cache_key = ?, output = ?, metadata = ?, cached = ?,"
                " error_code = ?,"
                " error_message = ?, attempts = ?, batch_size = ?, updated_at = ?"
                " WHERE id = ?",
                (
                    job.state.value,
                    job.cache_key,
                    job.output,
                    job.metadata,
                    int(job.cached),
                    job.error_code,
                    job.error_message,
                    job.attempts,
                    job.batch_size,
                    job.updated_at,
                    job.id,
                ),
            )
        return job

    def set_reply_route(self, job_id: str, host: str | None, port: int | None) -> None:
        """Point a job's future UDP events at ``(host, port)`` (None: no persisted route)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE jobs SET reply_host = ?, reply_port = ? WHERE id = ?", (host, port, job_id))

    def set_batch_size(self, job_ids: list[str], size: int) -> None:
        """Record how many jobs shared the engine call these jobs ran in."""
        with self._db.transaction() as conn:
            conn.executemany("UPDATE jobs SET batch_size = ? WHERE id = ?", [(size, j) for j in job_ids])

    def in_states(self, states: Iterable[JobState], limit: int | None = None) -> list[Job]:
        """Jobs in any of ``states``, oldest first (at most ``limit`` of them)."""
        values: list[object] = [s.value for s in states]
        marks = ",".join("?" * len(values))
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            values.append(limit)
        rows = self._db.query(sql, tuple(values))
        return [_row_to_job(r) for r in rows]

    def recent(self, limit: int) -> list[Job]:
        """The ``limit`` newest jobs, newest first."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?", (limit,))
        return [_row_to_job(r) for r in rows]

    def in_group(self, group: str) -> list[Job]:
        """The jobs of one group, oldest first."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM jobs WHERE group_id = ? ORDER BY seq", (group,))
        return [_row_to_job(r) for r in rows]

    def recent_groups(self, limit: int) -> list[str]:
        """The ids of the ``limit`` groups with the newest jobs, newest first."""
        rows = self._db.query(
            "SELECT group_id FROM jobs WHERE group_id IS NOT NULL GROUP BY group_id ORDER BY MAX(seq) DESC"
            " LIMIT ?",
            (limit,),
        )
        return [str(r[0]) for r in rows]

    def count(self, states: Iterable[JobState]) -> int:
        values = [s.value for s in states]
        marks = ",".join("?" * len(values))
        return int(self._db.query(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", tuple(values))[0][0])

    def queue_ahead(self, job: Job) -> int:
        """Pending jobs submitted before ``job`` (0 once it is running or finished)."""
        if job.state not in (JobState.ACCEPTED, JobState.QUEUED):
            return 0
        marks = ",".join("?" * len(PENDING_STATES))
        rows = self._db.query(
            f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks}) AND seq < ?",
            (*[s.value for s in PENDING_STATES], job.seq),
        )
        return int(rows[0][0])

    def recover(self) -> list[Job]:
        """After a restart: put interrupted ``running`` jobs back to ``queued``; return all pending jobs."""
        for job in self.in_states([JobState.RUNNING]):
            self.transition(job.id, JobState.QUEUED)
        return self.in_states(PENDING_STATES)

    def prune(self, older_than_s: float) -> int:
        """Delete terminal jobs last updated more than ``older_than_s`` seconds ago."""
        cutoff = time.time() - older_than_s
        terminal = [s.value for s in JobState if s.terminal]
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM jobs WHERE state IN (?, ?, ?) AND updated_at < ?", (*terminal, cutoff)
            )
            return cursor.rowcount
