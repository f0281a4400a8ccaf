"""Wrong ``X-Visage-Token`` answers are limited per client address; a correct token is never limited."""

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


def test_wrong_tokens_are_limited_per_address_and_a_correct_one_is_not(
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
    # The correct token from the same address still opens a session, again and again.
    for _ in range(GUESSES):
        assert _session_from(web.url, "127.0.0.1", web.token) == 200
    # Another address has its own budget: its wrong guess is a plain 401.
    assert _session_from(web.url, "127.0.0.2", "guess-elsewhere") == 401
    # No token at all is the page asking whether one is needed, not a guess.
    assert request(web.url, "GET", "/api/session").status == 401
