"""Names of the files a host job writes, and what a finished job's metadata points to.

A job writes ``<folder>/<base>-<short id>.wav`` (the AmbiX result, named by the request's ``output``)
and, for a moving camera, ``<folder>/<base>-<short id>.direction.json`` next to it, so that a result and
the curve that conditioned it stay together. The daemon's JSON sidecar may name a binaural ``preview``
(stereo WAV) to monitor the AmbiX file; hosts place it only when the key is there and the file exists.

Those names, the sidecar's keys, the curve file format and the yaw interval are the project's result-file
contract (``visage.model.files.result_files``); this is where ``common/`` imports it, from the project
or, inside the Blender extension, from the copy ``install.py`` vendors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

try:
    from visage.model.files import result_files as contract
except ModuleNotFoundError:  # inside the Blender extension (no visage package): the vendored copy
    from ..vendor.visage_bridge import result_files as contract

MAX_BASE_CHARS = 48
SHORT_ID_CHARS = 8
PREVIEW_KEY = contract.PREVIEW_KEY
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ResultPaths(NamedTuple):
    wav: Path
    curve: Path


def safe_base(text: str) -> str:
    """A file-name-safe version of a strip or item name ("" -> "clip")."""
    base = _UNSAFE.sub("_", text).strip("._")[:MAX_BASE_CHARS]
    return base or "clip"


def result_paths(folder: str | Path, name: str, job_id: str) -> ResultPaths:
    """Where the AmbiX WAV and the direction curve of job ``job_id`` for ``name`` go in ``folder``."""
    stem = f"{safe_base(name)}-{job_id[-SHORT_ID_CHARS:]}"
    folder = Path(folder)
    return ResultPaths(folder / f"{stem}.wav", folder / f"{stem}.direction.json")


def preview_path(metadata_path: str | Path | None) -> Path | None:
    """The binaural preview named in a result's JSON sidecar, if it names one that exists.

    A relative path is taken relative to the sidecar's folder.
    """
    if not metadata_path:
        return None
    sidecar = Path(metadata_path)
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = document.get(PREVIEW_KEY) if isinstance(document, dict) else None
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    path = path if path.is_absolute() else sidecar.parent / path
    return path if path.is_file() else None
