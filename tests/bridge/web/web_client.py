"""A small HTTP client for the web API tests (http.client: every header under the test's control)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 10.0


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        """The error object of a refusal, checked for the contract's shape."""
        document = self.json()
        assert set(document) == {"error"}, document
        error = document["error"]
        assert set(error) == {"code", "message", "field"}, error
        assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
        assert error["field"] is None or isinstance(error["field"], str)
        return error


def request(
    url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One request to ``url`` (``http://host:port``); a ``Host`` in ``headers`` replaces the real one."""
    parts = urlsplit(url)
    headers = dict(headers or {})
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT_S)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        if body is not None:
            headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class PageSession:
    """What the page does: GET /api/session once, then send the cookie, the CSRF token, its Origin and
    (when given) the daemon's token with every request."""

    url: str
    token: str | None = None
    cookie: str = ""
    csrf: str = ""
    session: dict[str, Any] = field(default_factory=dict)

    def open(self) -> PageSession:
        reply = request(self.url, "GET", "/api/session", headers=self._token_header())
        assert reply.status == 200, reply.body
        self.session = reply.json()
        self.csrf = self.session["csrf"]
        self.cookie = reply.headers["Set-Cookie"].split(";")[0]
        return self

    def _token_header(self) -> dict[str, str]:
        return {} if self.token is None else {"X-Visage-Token": self.token}

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Cookie": self.cookie,
            "X-Visage-CSRF": self.csrf,
            "Origin": self.url,
            **self._token_header(),
            **extra,
        }

    def get(self, path: str, **headers: str) -> Reply:
        return request(self.url, "GET", path, headers={"Cookie": self.cookie, **headers})

    def post(self, path: str, body: bytes = b"", **headers: str) -> Reply:
        return request(self.url, "POST", path, body, self.headers(**headers))

    def post_json(self, path: str, document: Any) -> Reply:
        return self.post(path, json.dumps(document).encode(), **{"Content-Type": "application/json"})

    def job(self, job_id: str) -> dict[str, Any]:
        reply = self.get("/api/jobs")
        assert reply.status == 200, reply.body
        found = [job for job in reply.json()["jobs"] if job["id"] == job_id]
        assert len(found) == 1, job_id
        return found[0]


class EventStream:
    """``GET /api/events``, read event by event (blocking, with the client's timeout)."""

    def __init__(self, url: str, cookie: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT_S)
        self._connection.request("GET", "/api/events", headers={"Cookie": cookie})
        self.response = self._connection.getresponse()

    def next_event(self) -> tuple[str, Any]:
        """The next ``(event name, data)``; comment lines (heartbeats) are skipped."""
        name, data = "", ""
        while True:
            line = self.response.readline().decode()
            assert line, "the event stream ended"
            line = line.rstrip("\n")
            if line.startswith(":"):
                continue
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and name:
                return name, json.loads(data)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
