"""Stalled connections are closed: mid-headers by aiohttp's keep-alive timer, mid-body by a bound on the
time between two chunks (so a slow but steady upload still completes). The bounds are made short here."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import WebDaemon, _start
from web_client import PageSession

import visage.bridge.web.api as web_api
import visage.bridge.web.server as web_server

HEADER_TIMEOUT_S = 1.0
BODY_IDLE_S = 1.5
CLOSED_WITHIN_S = 15.0  # generous: the check is "closed at all, and not after minutes"


@pytest.fixture
def short_bounds_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDaemon]:
    monkeypatch.setattr(web_server, "HEADER_TIMEOUT_S", HEADER_TIMEOUT_S)
    monkeypatch.setattr(web_api, "BODY_IDLE_S", BODY_IDLE_S)
    monkeypatch.setattr(web_server, "LINGER_S", 0.5)
    yield from _start(tmp_path, None)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname or "", parts.port or 80), timeout=CLOSED_WITHIN_S)


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the stalled connection open for {CLOSED_WITHIN_S} s")
    return received, time.monotonic() - started


def _post_head(web: WebDaemon, path: str, length: int) -> bytes:
    page = PageSession(web.url).open()
    host = urlsplit(web.url).netloc
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in page.headers().items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_half_a_request_line_is_closed(short_bounds_daemon: WebDaemon) -> None:
    with _connect(short_bounds_daemon.url) as sock:
        sock.sendall(b"GET /api/sess")
        received, _ = _read_until_closed(sock)
    assert received == b""  # closed without an answer: there was no request to answer


def test_headers_that_never_end_are_closed(short_bounds_daemon: WebDaemon) -> None:
    with _connect(short_bounds_daemon.url) as sock:
        sock.sendall(b"GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        received, _ = _read_until_closed(sock)
    assert received == b""


def test_a_stalled_small_body_is_answered_408(short_bounds_daemon: WebDaemon) -> None:
    web = short_bounds_daemon
    with _connect(web.url) as sock:
        sock.sendall(_post_head(web, "/api/curves", 100) + b'{"points"')
        received, _ = _read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b'"timed_out"' in received


def test_a_stalled_upload_is_answered_408_and_leaves_nothing(short_bounds_daemon: WebDaemon) -> None:
    web = short_bounds_daemon
    with _connect(web.url) as sock:
        sock.sendall(_post_head(web, "/api/uploads?name=clip.mp4", 1000) + b"x" * 100)
        received, _ = _read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    uploads = web.daemon.settings.uploads_dir
    assert list(uploads.iterdir()) == []


def test_a_slow_but_steady_upload_completes(short_bounds_daemon: WebDaemon) -> None:
    """Eight pauses of a fifth of the bound: the upload takes longer than the bound, no pause does."""
    web = short_bounds_daemon
    pieces = [bytes([65 + n]) * 10 for n in range(8)]
    with _connect(web.url) as sock:
        sock.sendall(_post_head(web, "/api/uploads?name=slow.bin", sum(map(len, pieces))))
        started = time.monotonic()
        for piece in pieces:
            time.sleep(BODY_IDLE_S / 5)
            sock.sendall(piece)
        assert time.monotonic() - started > BODY_IDLE_S
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    saved = list(web.daemon.settings.uploads_dir.rglob("slow.bin"))
    assert len(saved) == 1 and saved[0].read_bytes() == b"".join(pieces)
