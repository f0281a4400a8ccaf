"""Atomic output files: every file the project writes for a user appears whole, or not at all.

Why: a result (AmbiX WAV and its sidecar, binaural preview, sound-map picture, muxed video) is written
under a hidden temporary name in the target folder, flushed and then renamed, so an editor watching the
folder, a crash or a full disk never leaves a half-written file under the final name; and an existing
file is never replaced unless the caller asked (``overwrite``), checked again race-free at the rename.
``visage.model.files.audio_io`` builds the AmbiX writer on these primitives; ``visage.bridge.atomic_files`` is
its dependency-free twin for the daemon and the host plugins, with the same temporary-file suffix so
one clean-up recognises both.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_SUFFIX = ".visage-part"
"""Suffix of temporary files (``.<name>.<random>.visage-part``), the same as ``bridge.const.PART_SUFFIX``
so that the bridge's clean-up of interrupted jobs also removes what an interrupted write leaves."""


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


def reserve_temp(path: Path) -> Path:
    """Create an empty, hidden temporary file next to ``path`` (same filesystem, so rename is atomic).

    ``os.open`` with mode 0o666 lets the umask decide the final permissions, unlike ``mkstemp``'s 0o600.
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{PART_SUFFIX}")
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


@contextmanager
def scratch_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file next to ``path`` for an intermediate result; it is always removed."""
    tmp = reserve_temp(Path(path))
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
