"""The state folder's SQLite database: connection, schema and transactions (no job logic).

One connection shared by the daemon's threads behind a lock; WAL journal with ``synchronous=NORMAL``,
which keeps every committed transaction across a killed process (SIGKILL), though not necessarily
across a power loss.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from . import const

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    reply_host TEXT,
    reply_port INTEGER,
    use_cache INTEGER NOT NULL,
    cache_key TEXT,
    output TEXT,
    metadata TEXT,
    cached INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    batch_size INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS results (
    cache_key TEXT PRIMARY KEY,
    output TEXT NOT NULL,
    metadata TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS media_digests (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
);
"""
# Version -> the script that brings the previous version's tables to it (run in one transaction, so that
# a state folder of an older daemon opens, migrated once, and a crash mid-way leaves it as it was).
_MIGRATIONS: dict[int, str] = {
    2: """
ALTER TABLE jobs ADD COLUMN source TEXT NOT NULL DEFAULT 'osc';
ALTER TABLE jobs ADD COLUMN group_id TEXT;
ALTER TABLE jobs ADD COLUMN group_label TEXT;
ALTER TABLE jobs ADD COLUMN group_total INTEGER;
CREATE INDEX IF NOT EXISTS jobs_group_seq ON jobs (group_id, seq);
""",
}


class StateDatabase:
    """Owns the connection; `JobStore` and `ResultCache` run their SQL through it.

    Args:
        path: the database file (created with its schema if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(path), timeout=const.SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        with self.lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self._conn.close()
                raise RuntimeError(f"{path} has schema {version}, newer than this daemon's {SCHEMA_VERSION}")
            self._conn.executescript(_SCHEMA)  # version 1's tables, where they are missing
            for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                self._migrate(target)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _migrate(self, target: int) -> None:
        """Bring the tables from version ``target - 1`` to ``target``, all or nothing."""
        try:
            self._conn.executescript(f"BEGIN IMMEDIATE; {_MIGRATIONS[target]} PRAGMA user_version={target};")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one write transaction; commit on success, roll back on error."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Run a read query under the lock."""
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self._conn.close()
