"""Wrong ``X-Visage-Token`` answers are limited per client address; a limited address may try no token."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from conftest import WebDaemon
from web_client import TIMEOUT_S, request

GUESSES = 40  # well over the burst: the limit must have answered some of them with 429


def _session_from(url: str, source: str, token: str) -> int:
    """GET /api/session with ``token`` from the loopback address ``source``; the HTTP status."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=TIMEOUT_S, source_address=(source, 0)
    )
    try:
        connection.request("GET", "/api/session", headers={"X-Visage-Token": token})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_wrong_tokens_are_limited_per_address(
    web_daemon_with_token: WebDaemon,
) -> None:
    web = web_daemon_with_token
    assert web.token is not None
    statuses = [_session_from(web.url, "127.0.0.1", f"guess-{n}") for n in range(GUESSES)]
    assert statuses[0] == 401
    assert set(statuses) == {401, 429} and statuses[-1] == 429
    limited = request(web.url, "GET", "/api/session", headers={"X-Visage-Token": "guess-again"})
    assert limited.status == 429
    error = limited.error()
    assert error["code"] == "rate_limited" and "too many wrong" in error["message"]
    # While the address is limited even the correct token is refused before it is compared: a guesser
    # that ignored the 429s would otherwise learn the token from the one 200.
    assert _session_from(web.url, "127.0.0.1", web.token) == 429
    # Another address has its own budget: its wrong guess is a plain 401.
    assert _session_from(web.url, "127.0.0.2", "guess-elsewhere") == 401
    # No token at all is the page asking whether one is needed, not a guess.
    assert request(web.url, "GET", "/api/session").status == 401


def test_a_correct_token_spends_nothing(web_daemon_with_token: WebDaemon) -> None:
    """The page's own requests are never slowed: far more correct tokens than the burst all pass."""
    web = web_daemon_with_token
    assert web.token is not None
    assert [_session_from(web.url, "127.0.0.3", web.token) for _ in range(GUESSES)] == [200] * GUESSES
