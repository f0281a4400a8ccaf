"""Security rules: which paths a request may name, who may bind where, and the token check.

* Media, direction-curve and output paths must be absolute and, after resolving symlinks, lie under
  one of the ``--allow-dir`` folders (default: the user's home). The daemon's own outputs folder is
  always allowed for output.
* Binding anything but a loopback address requires a token (>= MIN_TOKEN_CHARS characters), and then
  every request must carry it; a token given on loopback is enforced too.
* An output folder must accept new files and have room for the job when it is submitted, so that a
  read-only or full disk is reported at once (writing still handles failure: the disk may fill later).
* No file a job writes (result, sidecars, preview) nor any of their temporary files, which are deleted
  as stale before a run, may be one of the job's inputs (media, direction curve).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from visage.model.files.output_files import PART_SUFFIX, check_writable

from . import const
from .errors import ErrorCode, RequestError


class SettingsError(ValueError):
    """The daemon's own configuration is unsafe or invalid (it refuses to start)."""


def is_loopback_host(host: str) -> bool:
    """True if ``host`` (an address or a name) resolves only to loopback addresses."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, token: str | None) -> None:
    """Refuse an off-loopback bind without a token, and any too-short token.

    Raises:
        SettingsError: with a message for the person starting the daemon.
    """
    if token is not None and len(token) < const.MIN_TOKEN_CHARS:
        raise SettingsError(f"--token must be at least {const.MIN_TOKEN_CHARS} characters")
    if token is None and not is_loopback_host(host):
        raise SettingsError(
            f"binding {host!r} exposes the daemon beyond this machine: pass --token (or VISAGE_TOKEN) "
            "so that every request must carry it, or bind 127.0.0.1"
        )


def token_ok(expected: str | None, given: str) -> bool:
    """Constant-time token comparison; with no token configured every request passes."""
    if expected is None:
        return True
    return hmac.compare_digest(expected.encode(), given.encode())


def _resolve(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class PathPolicy:
    """Checks and resolves the paths a request names.

    Args:
        allowed_dirs: folders under which media and outputs may lie.
        outputs_dir: the daemon's default output folder (always allowed for output).
    """

    def __init__(self, allowed_dirs: Sequence[Path], outputs_dir: Path) -> None:
        self.allowed_dirs = tuple(_resolve(d) for d in allowed_dirs)
        self.outputs_dir = _resolve(outputs_dir)

    def _absolute(self, raw: str, what: str) -> Path:
        path = Path(raw)
        if not path.is_absolute():
            raise RequestError(ErrorCode.BAD_PATH, f"{what} must be an absolute path, got {raw!r}")
        return path

    def _check_allowed(self, resolved: Path, what: str, raw: str, *, output: bool = False) -> None:
        folders = self.allowed_dirs + ((self.outputs_dir,) if output else ())
        if not any(_is_under(resolved, folder) for folder in folders):
            raise RequestError(
                ErrorCode.PATH_NOT_ALLOWED, f"{what} {raw!r} is outside the folders this daemon may use"
            )

    def input_file(self, raw: str, what: str = "media") -> Path:
        """Resolve an input file (media or direction curve) that must exist under an allowed folder."""
        resolved = _resolve(self._absolute(raw, what))
        self._check_allowed(resolved, what, raw)
        if not resolved.is_file():
            raise RequestError(ErrorCode.MEDIA_NOT_FOUND, f"{what} {raw!r} does not exist or is not a file")
        return resolved

    def output_file(self, raw: str) -> Path:
        """Resolve a .wav output path whose folder exists under an allowed folder."""
        path = self._absolute(raw, "output")
        if path.suffix.lower() != ".wav":
            raise RequestError(ErrorCode.BAD_OUTPUT, f"output must end in .wav, got {raw!r}")
        folder = _resolve(path.parent)
        resolved = folder / path.name
        self._check_allowed(resolved, "output", raw, output=True)
        if not folder.is_dir():
            raise RequestError(ErrorCode.BAD_OUTPUT, f"output folder {str(path.parent)!r} does not exist")
        if resolved.is_dir():
            raise RequestError(ErrorCode.BAD_OUTPUT, f"output {raw!r} is a folder")
        return resolved

    def output_dir(self, raw: str) -> Path:
        """Resolve an existing output folder under an allowed folder."""
        resolved = _resolve(self._absolute(raw, "output_dir"))
        self._check_allowed(resolved, "output_dir", raw, output=True)
        if not resolved.is_dir():
            raise RequestError(ErrorCode.BAD_OUTPUT, f"output_dir {raw!r} does not exist or is not a folder")
        return resolved


def check_output_writable(output: Path, need_bytes: int) -> None:
    """Refuse (``bad_output``) an output whose folder takes no new file or has under ``need_bytes`` free."""
    try:
        check_writable(output, overwrite=True)  # creates and removes a temporary file next to it
    except OSError as exc:
        raise RequestError(ErrorCode.BAD_OUTPUT, f"cannot write output {str(output)!r}: {exc}") from None
    try:
        free = shutil.disk_usage(output.parent).free
    except OSError:
        return  # cannot tell: the write itself will say
    if free < need_bytes:
        raise RequestError(
            ErrorCode.BAD_OUTPUT,
            f"output folder {str(output.parent)!r} has {free} bytes free; this job needs about {need_bytes}",
        )


def _same_file(written: Path, source: Path) -> bool:
    """Whether writing ``written`` replaces ``source`` (also on a case-insensitive file system)."""
    if written == source:
        return True
    try:
        return os.path.samefile(written, source)
    except OSError:  # ``written`` does not exist yet: it cannot be an existing input under another name
        return False


def _is_temporary_of(source: Path, written: Path) -> bool:
    """Whether ``source`` is named like a temporary of ``written``: ``.<name>.<random><PART_SUFFIX>``."""
    prefix = f".{written.name}."
    return (
        source.parent == written.parent
        and source.name.startswith(prefix)
        and PART_SUFFIX in source.name[len(prefix) :]
    )


def check_outputs_spare_inputs(written: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse (``bad_output``) a job that would write over one of its inputs, or a temporary in its place.

    Args:
        written: every file the job writes, resolved.
        inputs: the job's input files, resolved.
    """
    for path in written:
        output = _resolve(path.parent) / path.name  # a default output folder may lie behind a symlink
        for source in inputs:
            if _same_file(output, source) or _is_temporary_of(source, output):
                raise RequestError(
                    ErrorCode.BAD_OUTPUT,
                    f"the job would write {str(output)!r} (or a temporary file beside it) over its input "
                    f"{str(source)!r}; choose another output name",
                )
