"""Atomic file writes: a hidden temporary file next to the target, fsync, rename into place.

A reader (or a restarted daemon) therefore sees either no file or the complete file at the final
path; a crash leaves at most a hidden ``.<name>.<random>.visage-part`` file, which
`remove_stale_parts` deletes before the job is run again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from . import const


def part_path(final: Path) -> Path:
    """A fresh temporary path in ``final``'s folder (same file system, so rename is atomic)."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}{const.PART_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to ``final``.

    On an exception the temporary file is removed and ``final`` is left untouched.
    """
    temp = part_path(final)
    try:
        yield temp
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_dir(final.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically."""
    with atomic_output(final) as temp:
        temp.write_bytes(data)


def atomic_copy(source: Path, final: Path) -> None:
    """Copy ``source`` to ``final`` atomically (used to answer a request from the result cache)."""
    with atomic_output(final) as temp:
        shutil.copyfile(source, temp)


def remove_stale_parts(final: Path) -> int:
    """Delete temporary files an interrupted write to ``final`` left behind; return how many."""
    removed = 0
    with contextlib.suppress(OSError):
        for stale in final.parent.glob(f".{glob_escape(final.name)}.*{const.PART_SUFFIX}"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed += 1
    return removed


def glob_escape(name: str) -> str:
    """Escape glob metacharacters in a file name."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
