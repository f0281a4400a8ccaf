"""Fixtures for the bridge tests: leak checks, quick timing, a fake-engine daemon, a media file.

A module opts in with ``from bridge_fixtures import quick_timing, verify_no_leaks  # noqa: F401``; the two
autouse fixtures then apply to every test in it. The rest are plain helpers (the lead owns conftest.py).
Modelled on python-zeroconf's tests/conftest.py (``verify_threads_ended``, ``quick_timing``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from visage.bridge import const
from visage.bridge.client import DaemonAddress
from visage.bridge.daemon import Daemon
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.settings import BridgeSettings

LEAK_GRACE_S = 3.0  # threads and sockets get this long to go away after a test


def _open_sockets_and_databases() -> set[str]:
    """Targets of this process's fds that are sockets or SQLite files (Linux /proc; empty elsewhere)."""
    found = set()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:") or ".sqlite3" in target:
            found.add(target)
    return found


@pytest.fixture(autouse=True)
def verify_no_leaks() -> Iterator[None]:
    """Fail the test if it leaves threads, sockets or database handles behind."""
    threads_before = set(threading.enumerate())
    fds_before = _open_sockets_and_databases()
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    while True:
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        fds = _open_sockets_and_databases() - fds_before
        if not threads and not fds:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"leaked threads {[t.name for t in threads]} and handles {sorted(fds)}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink protocol delays. Valid because the production values only pace real hosts: what the
    tests check (ordering, retries, resumption) depends on the order of events, not on their spacing."""
    monkeypatch.setattr(const, "SERVER_POLL_INTERVAL_S", 0.02)
    monkeypatch.setattr(const, "WORKER_IDLE_WAIT_S", 0.05)
    monkeypatch.setattr(const, "PROGRESS_MIN_INTERVAL_S", 0.0)
    monkeypatch.setattr(const, "GRACEFUL_FINISH_S", 2.0)
    monkeypatch.setattr(const, "CANCEL_GRACE_S", 2.0)
    monkeypatch.setattr(const, "CLIENT_RETRY_S", 0.1)
    monkeypatch.setattr(const, "CLIENT_REQUEST_TIMEOUT_S", 5.0)
    monkeypatch.setattr(const, "CLIENT_STATUS_POLL_S", 0.3)


def write_media(folder: Path) -> Path:
    """A small 'video' file (its content only feeds the cache hash; the fake engine does not decode it)."""
    path = folder / "media" / "clip.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return path


def fake_settings(tmp_path: Path, **overrides: object) -> BridgeSettings:
    values: dict[str, object] = {
        "udp_port": 0,
        "tcp_port": 0,
        "state_dir": tmp_path / "state",
        "allow_dirs": (tmp_path,),
        "model": "fake",
        "zeroconf": False,
        "max_batch": 4,
    }
    values.update(overrides)
    return BridgeSettings(**values)  # type: ignore[arg-type]


def fast_engine(delay_s: float = 0.05, steps: int = 2, seconds: float = 0.05) -> FakeEngine:
    return FakeEngine(FakeSettings(delay_s=delay_s, steps=steps, seconds=seconds))


def address_of(daemon: Daemon) -> DaemonAddress:
    tcp = daemon.tcp_address
    return DaemonAddress(*daemon.udp_address, None if tcp is None else tcp[1], "explicit")


def wait_for(
    predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition not reached"
) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)
