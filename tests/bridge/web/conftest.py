"""Fixtures of the web page's tests: a fake-engine daemon with its web page on a free loopback port.

``web_daemon`` (and ``web_daemon_with_token``) yield a `WebDaemon`: ``url`` (``http://127.0.0.1:PORT``,
no trailing slash), the running ``daemon``, ``allowed_dir`` (the only ``--allow-dir``), ``media`` (a small
file there that the fake engine accepts as a video), ``token`` (None, or the daemon's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bridge_fixtures import fake_settings, fast_engine, write_media

from visage.bridge.daemon import Daemon

WEB_TOKEN = "web-page-test-token-0123456789"


@dataclass(frozen=True)
class WebDaemon:
    url: str
    daemon: Daemon
    allowed_dir: Path
    media: Path
    token: str | None = None


def _start(tmp_path: Path, token: str | None, **overrides: object) -> Iterator[WebDaemon]:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    media = write_media(allowed)
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=0, token=token, **overrides)
    daemon = Daemon(settings, fast_engine()).start()
    try:
        assert daemon.web_url is not None
        yield WebDaemon(daemon.web_url.rstrip("/"), daemon, allowed, media, token)
    finally:
        daemon.stop()


@pytest.fixture
def web_daemon(tmp_path: Path) -> Iterator[WebDaemon]:
    """A daemon without a token."""
    yield from _start(tmp_path, None)


@pytest.fixture
def web_daemon_with_token(tmp_path: Path) -> Iterator[WebDaemon]:
    """A daemon that requires `WEB_TOKEN` (on loopback, as it would off loopback)."""
    yield from _start(tmp_path, WEB_TOKEN)
