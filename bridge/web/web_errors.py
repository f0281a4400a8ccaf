"""`WebError`: a refused HTTP request as the page sees it, ``{"error": {"code", "message", "field"}}``.

Codes are the OSC protocol's (`errors.ErrorCode`) wherever one fits, plus the web's own guards
(``forbidden_host``, ``forbidden_origin``, ``csrf``, ``not_found``, ``not_ready``,
``unreadable_media``, ``busy``, ``timed_out``, ``rate_limited``); the HTTP status follows the code.
"""

from __future__ import annotations

from ..errors import ErrorCode, RequestError

FORBIDDEN_HOST = "forbidden_host"
FORBIDDEN_ORIGIN = "forbidden_origin"
CSRF = "csrf"
NOT_FOUND = "not_found"
NOT_READY = "not_ready"  # the job has no result (yet) to do this with
UNREADABLE_MEDIA = "unreadable_media"  # the file is there but is no video PyAV can read
BUSY = "busy"  # the server has as many of these open as it takes (event streams)
TIMED_OUT = "timed_out"  # the client stopped sending a request body
RATE_LIMITED = "rate_limited"  # too many wrong tokens from one client address

_STATUS_OF_CODE = {
    ErrorCode.UNAUTHORIZED.value: 401,
    ErrorCode.PATH_NOT_ALLOWED.value: 403,
    FORBIDDEN_HOST: 403,
    FORBIDDEN_ORIGIN: 403,
    CSRF: 403,
    ErrorCode.UNKNOWN_JOB.value: 404,
    NOT_FOUND: 404,
    NOT_READY: 409,
    ErrorCode.DUPLICATE_ID.value: 409,
    ErrorCode.OUTPUT_EXISTS.value: 409,
    ErrorCode.QUEUE_FULL.value: 409,
    ErrorCode.TOO_LARGE.value: 413,
    BUSY: 503,
    TIMED_OUT: 408,
    RATE_LIMITED: 429,
}


class WebError(Exception):
    """A refused request: ``code`` (the HTTP status follows it), one-line ``message``, the body ``field``
    it concerns (or None)."""

    def __init__(self, code: str, message: str, field: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.status = status if status is not None else _STATUS_OF_CODE.get(code, 400)

    @classmethod
    def of(cls, error: RequestError, field: str | None = None, status: int | None = None) -> WebError:
        """The web form of an OSC request error (same code and message)."""
        return cls(error.code.value, error.message, field, status)

    def body(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}
