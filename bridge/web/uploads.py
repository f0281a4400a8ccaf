"""Files the page sends: videos (streamed to disk) and direction curves, only into the state folder.

Each lands in a fresh ``STATE/uploads/<uuid>/`` under a sanitised name (no folders, no control
characters, no leading dots), written to a hidden temporary name and renamed when complete; a failed,
cut or oversized upload leaves nothing behind. Folders older than the finished-job retention that no
pending job uses are removed (`remove_stale_uploads`), so uploads do not pile up for ever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import visage.model.files.result_files as rf

from ..errors import ErrorCode
from .web_errors import WebError

log = logging.getLogger(__name__)

MAX_NAME_BYTES = 200  # UTF-8: file systems take 255 bytes, and the temporary name adds "." and ".part"
_UNSAFE = re.compile(r"[^\w.+ -]+")

RESERVED_DISK_BYTES = 256 << 20  # an upload leaves this much free: the results of its jobs go to disk too

WriteChunk = Callable[[BinaryIO, bytes], Awaitable[None]]


def safe_file_name(name: str, default: str = "upload") -> str:
    """A file name without folders or characters that file systems or shells trip on.

    ``../../etc/passwd`` -> ``passwd``; ``C:\\x\\clip.mp4`` -> ``clip.mp4``; ``.bashrc`` -> ``bashrc``.
    Long names keep their suffix and are cut to `MAX_NAME_BYTES` of UTF-8, not characters: a name in a
    script of 3-byte characters would otherwise pass a character limit and be refused by the file system.
    """
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    if len(base.encode()) > MAX_NAME_BYTES:
        stem, dot, suffix = base.rpartition(".")
        keep = _prefix_in_bytes(suffix, 16) if dot else ""
        room = MAX_NAME_BYTES - len(keep.encode()) - 1
        base = _prefix_in_bytes(stem if dot else base, room).rstrip(" .") + (f".{keep}" if keep else "")
    return base or default


def _prefix_in_bytes(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form has at most ``max_bytes`` (no character cut)."""
    return text.encode()[:max_bytes].decode("utf-8", "ignore")


def new_upload_folder(uploads_dir: Path) -> Path:
    folder = uploads_dir / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


async def receive_file(
    chunks: AsyncIterator[bytes], declared: int, limit: int, uploads_dir: Path, name: str, write: WriteChunk
) -> Path:
    """Stream an upload of ``declared`` bytes into a new upload folder; return its path.

    Args:
        chunks: the request body.
        declared: its Content-Length.
        limit: most bytes an upload may have.
        write: writes one chunk to an open file off the event loop.

    Raises:
        WebError: ``too_large`` (over ``limit``, or more than the disk has free), ``malformed`` (body shorter
            or longer than declared).
    """
    if declared > limit:
        raise WebError(ErrorCode.TOO_LARGE.value, f"the file has {declared} bytes; the limit is {limit}")
    free = shutil.disk_usage(uploads_dir).free - RESERVED_DISK_BYTES
    if declared > free:  # said now, not as a disk error after gigabytes were sent
        message = f"the file has {declared} bytes; the daemon's disk has {max(free, 0)} free for uploads"
        raise WebError(ErrorCode.TOO_LARGE.value, message)
    folder = new_upload_folder(uploads_dir)
    final = folder / safe_file_name(name)
    partial = folder / f".{final.name}.part"
    received = 0
    try:
        with open(partial, "wb") as out:
            async for chunk in chunks:
                received += len(chunk)
                if received > declared:
                    raise WebError(ErrorCode.MALFORMED.value, "the body is longer than its Content-Length")
                await write(out, chunk)
        if received != declared:
            raise WebError(
                ErrorCode.MALFORMED.value, f"the upload stopped after {received} of {declared} bytes"
            )
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return final


def save_curve(text: str, uploads_dir: Path) -> Path:
    """Check a direction-curve file's text (JSON, else CSV) and save it as ``curve.json``.

    Raises:
        WebError: ``bad_value`` with the curve format's message (entry and field).
    """
    file_format = "json" if text.lstrip().startswith("{") else "csv"
    try:
        curve = rf.parse_curve(text, file_format)
    except rf.CurveError as exc:
        raise WebError(ErrorCode.BAD_VALUE.value, f"direction curve ({file_format}): {exc}") from None
    folder = new_upload_folder(uploads_dir)
    try:
        return rf.write_curve_file(folder / "curve.json", curve)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
        raise


def _upload_folder_of(path: Path, uploads_dir: Path) -> str | None:
    """The ``<uuid>`` folder name under ``uploads_dir`` that ``path`` lies in, None if it is elsewhere."""
    for root, inside in ((uploads_dir, path), (uploads_dir.resolve(), path.resolve())):
        try:
            parts = inside.relative_to(root).parts
        except ValueError:
            continue
        if parts:
            return parts[0]
    return None


def _newest_mtime(folder: Path) -> float:
    """The latest change of the folder or a file in it (an upload still arriving keeps it fresh)."""
    times = [folder.stat().st_mtime]
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            times.append(entry.stat().st_mtime)
    return max(times)


def remove_stale_uploads(
    uploads_dir: Path, older_than_s: float, in_use: Iterable[Path], now: float
) -> list[Path]:
    """Delete upload folders unchanged for over ``older_than_s`` seconds that no path in ``in_use`` lies
    in; return them. Files directly in ``uploads_dir`` (none are written there) are left alone.

    Args:
        in_use: media and direction curves of the jobs that are not finished yet.
        now: the wall clock (``time.time()``), as file times are.
    """
    if not uploads_dir.is_dir():
        return []
    used = {name for path in in_use if (name := _upload_folder_of(path, uploads_dir)) is not None}
    removed = []
    for folder in sorted(uploads_dir.iterdir()):
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.name in used:
                continue
            if now - _newest_mtime(folder) <= older_than_s:
                continue
            shutil.rmtree(folder)
        except OSError as exc:  # gone meanwhile, or not ours to delete: tried again next time
            log.warning("could not remove old upload folder %s: %s", folder, exc)
            continue
        removed.append(folder)
    return removed
