"""The result cache: identical requests (same media content, range, direction, options, model) are
answered from an earlier output instead of being recomputed.

An entry points at the earlier job's output and remembers its size and mtime; if that file has been
deleted or changed since, the entry is dropped and the job is computed again. Media content is
identified by its SHA-256, memoised per (path, size, mtime) so a file is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

from . import const
from .database import StateDatabase
from .engine import GenerateSpec

_KEY_DECIMALS = 6  # seconds and degrees are rounded to 1e-6 in the key


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(const.HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(spec: GenerateSpec, media_digest: str, curve_digest: str | None, model_id: str) -> str:
    """Hex key over everything that determines the output (not the output path).

    Args:
        spec: the job's inputs.
        media_digest: SHA-256 of the media file's content.
        curve_digest: SHA-256 of the direction-curve file, if any.
        model_id: the engine's weights id.
    """

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, _KEY_DECIMALS)

    canonical = json.dumps(
        {
            "media": media_digest,
            "start": r(spec.start),
            "end": r(spec.end),
            "yaw": r(spec.yaw),
            "pitch": r(spec.pitch),
            "curve": curve_digest,
            "guidance": r(spec.guidance),
            "seed": spec.seed,
            "sample_rate": spec.sample_rate,
            "extra": dict(spec.extra),
            "model": model_id,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class CachedResult(NamedTuple):
    output: Path
    metadata: Path


class ResultCache:
    """Cache entries and media digests in the state database."""

    def __init__(self, db: StateDatabase) -> None:
        self._db = db

    def digest(self, path: Path) -> str:
        """SHA-256 of ``path``, hashed again only when its size or mtime changed."""
        stat = path.stat()
        rows = self._db.query(
            "SELECT digest FROM media_digests WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path), stat.st_size, stat.st_mtime_ns),
        )
        if rows:
            return str(rows[0][0])
        digest = file_sha256(path)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO media_digests (path, size, mtime_ns, digest) VALUES (?, ?, ?, ?)",
                (str(path), stat.st_size, stat.st_mtime_ns, digest),
            )
        return digest

    def lookup(self, key: str) -> CachedResult | None:
        """The earlier result for ``key`` if its files are still there, unchanged."""
        rows = self._db.query(
            "SELECT output, metadata, size, mtime_ns FROM results WHERE cache_key = ?", (key,)
        )
        if not rows:
            return None
        output, metadata = Path(rows[0]["output"]), Path(rows[0]["metadata"])
        try:
            stat = output.stat()
            intact = (
                stat.st_size == rows[0]["size"]
                and stat.st_mtime_ns == rows[0]["mtime_ns"]
                and metadata.is_file()
            )
        except OSError:
            intact = False
        if not intact:
            self.forget(key)
            return None
        return CachedResult(output, metadata)

    def store(self, key: str, output: Path, metadata: Path) -> None:
        """Remember that ``key`` produced ``output`` (as it is now on disk)."""
        stat = os.stat(output)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO results (cache_key, output, metadata, size, mtime_ns, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, str(output), str(metadata), stat.st_size, stat.st_mtime_ns, time.time()),
            )

    def forget(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM results WHERE cache_key = ?", (key,))
