"""Atomic output files: every file the project writes appears whole, or not at all.

Why: a result (AmbiX WAV and its sidecar, binaural preview, sound-map picture, muxed video), a daemon's
endpoint file, a cached copy or a dataset shard is written under a hidden temporary name in the target
folder (``.<name>.<random>.visage-part``), flushed, renamed and the folder flushed, so an editor watching
the folder, a crash or a full disk never leaves a half-written file under the final name; a crash leaves
at most a temporary file, which `remove_stale_parts` deletes before a job runs again. An existing file
is never replaced unless the caller asked (``overwrite``), checked again race-free at the rename.
Temporary files are created with mode 0o666 so that the umask, not the writer, decides permissions.

Standard library only: the daemon imports this when it starts, and the Blender extension vendors a copy
(``host_plugins/install.py``). ``visage.model.files.audio_io`` builds the AmbiX writer on these
primitives.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_SUFFIX = ".visage-part"
"""Suffix of every temporary file (``.<name>.<random>.visage-part``), so that one clean-up recognises them."""


class OutputExistsError(FileExistsError):
    """The output file (or its sidecar) exists and overwriting was not requested."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; pass --force (overwrite=True) to replace it")
        self.path = path


class MissingOutputFolderError(FileNotFoundError):
    """The folder the output should go in does not exist."""


class UnwritableOutputFolderError(PermissionError):
    """The output folder exists but files cannot be created in it."""


def check_folder(folder: Path) -> None:
    """Raise :class:`MissingOutputFolderError` unless ``folder`` is an existing folder."""
    if not folder.is_dir():
        raise MissingOutputFolderError(f"output folder {folder} does not exist (or is not a folder)")


def part_path(path: Path, *, keep_suffix: bool = False) -> Path:
    """A fresh hidden temporary name next to ``path`` (same filesystem, so rename is atomic); not created.

    ``keep_suffix`` appends ``path``'s suffix, for writers that choose their format by it (OTIO adapters).
    """
    tail = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{PART_SUFFIX}{tail}")


def reserve_temp(path: Path) -> Path:
    """Create an empty, hidden temporary file next to ``path`` (same filesystem, so rename is atomic).

    ``os.open`` with mode 0o666 lets the umask decide the final permissions, unlike ``mkstemp``'s 0o600.
    """
    for _ in range(100):
        tmp = part_path(path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
                raise UnwritableOutputFolderError(
                    f"cannot create files in output folder {path.parent}: {exc.strerror}"
                ) from exc
            raise
        return tmp
    raise FileExistsError(f"could not find a free temporary name next to {path}")


def write_bytes_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk (the file is then renamed into place)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_folder(folder: Path) -> None:
    """Make renames into ``folder`` durable (POSIX only: Windows cannot open a folder as a file)."""
    if os.name == "posix":
        fsync_file(folder)


def fsync_file(path: Path) -> None:
    """Flush a file to disk before it is renamed into place, so a crash leaves the old or the new file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, dest: Path, *, overwrite: bool) -> None:
    """Move a finished temporary file to ``dest`` atomically.

    Without ``overwrite`` a hard link is used: it fails if ``dest`` exists, even one created by another
    process after our check, so an existing file is never replaced. Filesystems without hard links
    fall back to check-then-rename.
    """
    if overwrite:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise OutputExistsError(dest) from None
    except OSError:  # e.g. FAT or some network shares: no hard links
        if dest.exists():
            raise OutputExistsError(dest) from None
        os.replace(tmp, dest)
    else:
        tmp.unlink()


def check_new_output(
    path: str | os.PathLike[str],
    *,
    suffixes: tuple[str, ...],
    overwrite: bool = False,
    companions: tuple[Path, ...] = (),
) -> Path:
    """Fail before any work if ``path`` could not be written.

    Args:
        path: the file to write.
        suffixes: accepted lower-case suffixes, e.g. ``(".mov", ".mp4")``.
        overwrite: allow replacing an existing file.
        companions: files written beside it (a JSON sidecar), which must not exist either.

    Raises:
        ValueError: the suffix is not one of ``suffixes``.
        OutputExistsError, MissingOutputFolderError, UnwritableOutputFolderError: as for AmbiX output.
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(
            f"{path}: unknown output type {path.suffix or '(none)'!r}; use {' or '.join(suffixes)}"
        )
    return check_writable(path, overwrite=overwrite, companions=companions)


def check_writable(path: Path, *, overwrite: bool = False, companions: tuple[Path, ...] = ()) -> Path:
    """Check that ``path`` (and its ``companions``) can be created: the folder exists and accepts new
    files (a temporary file is made and removed), and none of them exists unless ``overwrite``.

    Raises:
        OutputExistsError, MissingOutputFolderError, UnwritableOutputFolderError.
    """
    check_folder(path.parent)
    if not overwrite:
        for existing in (path, *companions):
            if existing.exists():
                raise OutputExistsError(existing)
    reserve_temp(path).unlink()
    return path


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it becomes ``path``.

    On an exception the temporary file is removed and ``path`` is untouched.

    Raises:
        OutputExistsError: ``path`` exists (checked before and, race-free, at the rename) and
            ``overwrite`` is false.
    """
    path = Path(path)
    check_folder(path.parent)
    if not overwrite and path.exists():
        raise OutputExistsError(path)
    tmp = reserve_temp(path)
    try:
        yield tmp
        fsync_file(tmp)
        publish(tmp, path, overwrite=overwrite)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see `atomic_output`)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


def atomic_copy(source: Path, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Copy ``source``'s content to ``path`` atomically (see `atomic_output`); the mode is not copied."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        shutil.copyfile(source, tmp)


def remove_stale_parts(path: Path) -> int:
    """Delete the temporary files interrupted writes to ``path`` left behind; return how many."""
    removed = 0
    try:
        stale_files = list(path.parent.glob(f".{glob_escape(path.name)}.*{PART_SUFFIX}"))
    except OSError:
        return 0
    for stale in stale_files:
        try:
            stale.unlink()
        except OSError:
            continue
        removed += 1
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped, to match it literally in a pattern."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextmanager
def scratch_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file next to ``path`` for an intermediate result; it is always removed."""
    tmp = reserve_temp(Path(path))
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
