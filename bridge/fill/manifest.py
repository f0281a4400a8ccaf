"""The resume manifest of `visage fill`: which shot results exist in an output folder, by content key.

A shot's key is a SHA-256 over everything that decides its audio: the media file's content, the media
range, the direction (angles, or the curve file's content), guidance, seed, model, sample rate, sample
format and the 360° options (``--equirect``, ``--look``); not its place in the edit. So a re-run after a
crash, a cancelled run or a re-cut regenerates only shots whose key has no intact result, and two shots
cutting the same range share one file. The manifest (``visage-fill.json`` in the output folder) maps
key -> file and the file's SHA-256; a result counts only while its file is there with that digest. It
is rewritten atomically after every finished shot, so a crash loses at most the shots that were running.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from visage.bridge.result_cache import file_sha256
from visage.model.files.output_files import atomic_write_bytes

MANIFEST_NAME = "visage-fill.json"
SCHEMA = 1
_KEY_DECIMALS = 6  # seconds and degrees are rounded to 1e-6 in keys
# Options added after keys were first written: hashed only when not at these defaults, so the key of a
# shot made without them stays what it was and a --resume of an older folder still finds its results.
_HASHED_WHEN_SET: dict[str, object] = {"equirect": False, "look": None}


class ManifestError(ValueError):
    """The manifest file exists but is not one this version wrote."""


@dataclass(frozen=True)
class ShotResult:
    """One finished shot in the manifest.

    Attributes:
        file: WAV file name, relative to the manifest's folder.
        sha256: digest of the WAV when it was recorded.
        seed: the sampling seed used.
        model: the model id that generated it.
        duration_s: length of the audio in seconds.
    """

    file: str
    sha256: str
    seed: int
    model: str
    duration_s: float


@dataclass(frozen=True)
class ShotOptions:
    """What, besides media and range, decides a shot's audio (one value per run)."""

    guidance_mode: str
    guidance_scale: float
    seed: int | None  # None = one derived from the shot's key
    model: str
    sample_rate: int
    subtype: str
    equirect: bool = False  # --equirect: read the media as a 360° panorama
    look: str | None = None  # --look: where a 360° media's windows look ("auto"), else the direction


def shot_key(
    media_sha256: str,
    start_s: float,
    end_s: float,
    direction: dict[str, Any],
    options: ShotOptions,
) -> str:
    """Hex key of a shot (see the module docstring); ``direction`` is ``{"yaw", "pitch"}`` or
    ``{"curve": sha256}``."""
    canonical = json.dumps(
        {
            "schema": SCHEMA,
            "media": media_sha256,
            "range": [round(start_s, _KEY_DECIMALS), round(end_s, _KEY_DECIMALS)],
            "direction": {k: _rounded(v) for k, v in direction.items()},
            "options": {
                k: _rounded(v)
                for k, v in asdict(options).items()
                if k not in _HASHED_WHEN_SET or v != _HASHED_WHEN_SET[k]
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def seed_for(key: str, seed: int | None) -> int:
    """The run's ``--seed``, or a seed derived from the shot's key (reproducible, differs per shot)."""
    return seed if seed is not None else int(key[:8], 16) % 2**31


def result_file_name(shot_name: str, key: str) -> str:
    """``<clip name>_<key prefix>.wav``, safe on every file system."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", shot_name).strip("._")[:48] or "shot"
    return f"{stem}_{key[:12]}.wav"


class FillManifest:
    """The manifest of one output folder, plus memoised media digests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / MANIFEST_NAME
        self.results: dict[str, ShotResult] = {}
        self._digests: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(cls, folder: Path) -> FillManifest:
        """The manifest in ``folder``; empty when there is none.

        Raises:
            ManifestError: unreadable, or written by an incompatible version.
        """
        manifest = cls(folder)
        if not manifest.path.exists():
            return manifest
        try:
            document = json.loads(manifest.path.read_text(encoding="utf-8"))
            if document.get("schema") != SCHEMA:
                raise ManifestError(f"{manifest.path}: schema {document.get('schema')!r}, expected {SCHEMA}")
            manifest.results = {k: ShotResult(**v) for k, v in document["results"].items()}
            manifest._digests = dict(document.get("media", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"{manifest.path}: not a visage fill manifest ({exc})") from exc
        return manifest

    def media_sha256(self, path: Path) -> str:
        """SHA-256 of a media file, hashed again only when its size or modification time changed."""
        stat = path.stat()
        entry = self._digests.get(str(path))
        if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            return str(entry["sha256"])
        digest = file_sha256(path)
        self._digests[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        return digest

    def intact(self, key: str) -> ShotResult | None:
        """The recorded result for ``key`` if its file is still there, unchanged."""
        result = self.results.get(key)
        if result is None:
            return None
        path = self.folder / result.file
        if not path.is_file() or file_sha256(path) != result.sha256:
            return None
        return result

    def record(self, key: str, result: ShotResult) -> None:
        """Remember a finished shot and save the manifest."""
        self.results[key] = result
        self.save()

    def save(self) -> None:
        """Write the manifest atomically, replacing the previous one."""
        document = {
            "schema": SCHEMA,
            "results": {k: asdict(v) for k, v in sorted(self.results.items())},
            "media": dict(sorted(self._digests.items())),
        }
        atomic_write_bytes(self.path, (json.dumps(document, indent=2) + "\n").encode(), overwrite=True)


def _rounded(value: Any) -> Any:
    return round(value, _KEY_DECIMALS) if isinstance(value, float) else value
