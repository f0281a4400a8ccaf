"""The state folder's small files: the one-daemon lock and the endpoint file clients read.

Layout (README, "State folder"): ``jobs.sqlite3`` (+ ``-wal``/``-shm``), ``daemon.json``, ``daemon.lock``,
``daemon.log``, ``outputs/``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

try:
    from visage.model.files.output_files import atomic_write_bytes
except ModuleNotFoundError:  # inside the Blender extension: the writer's copy vendored next to this one
    from .output_files import atomic_write_bytes


class StateDirBusy(RuntimeError):
    """Another daemon holds this state folder."""


class StateDirLock:
    """An exclusive OS lock on ``daemon.lock``, released by the OS even after SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+b")
        try:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StateDirBusy(f"another daemon is using {self.path.parent}") from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops flock/msvcrt locks
            self._handle = None


@dataclass(frozen=True)
class EndpointInfo:
    """What ``daemon.json`` says about a running daemon."""

    pid: int
    host: str
    udp_port: int
    tcp_port: int | None
    model_id: str
    device: str
    protocol_version: int
    auth: str  # "token" or "none"
    web_url: str | None = None  # the web page, when it is on


def write_endpoint(path: Path, info: EndpointInfo) -> None:
    atomic_write_bytes(path, json.dumps(asdict(info), indent=2).encode(), overwrite=True)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # no cheap check without extra packages; the client's ping decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load_endpoint(path: Path) -> EndpointInfo | None:
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
        known = {f.name for f in fields(EndpointInfo)}  # a newer daemon's extra keys are not an error
        return EndpointInfo(**{key: value for key, value in raw.items() if key in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def read_endpoint(path: Path) -> EndpointInfo | None:
    """The endpoint file's content if it exists and its process is alive, else None."""
    info = _load_endpoint(path)
    return info if info is not None and _pid_alive(info.pid) else None


def remove_own_endpoint(path: Path, mine: EndpointInfo) -> None:
    """Remove the endpoint file if it still describes ``mine``: another daemon's is not ours to remove."""
    if _load_endpoint(path) == mine:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
