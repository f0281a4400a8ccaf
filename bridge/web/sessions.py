"""`SessionStore`: the page's sessions, in memory (a daemon restart asks the page to start again).

A session is a random id in an HttpOnly, SameSite=Strict cookie, bound to one CSRF token the page
sends back as a header. Sessions are made only by ``GET /api/session``, which needs the daemon's token
when it has one: the cookie then authorises GETs that cannot carry headers (EventSource, <video> and
<audio> sources).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

MAX_SESSIONS = 256  # the least recently used session beyond this is forgotten
_TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str


class SessionStore:
    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._max = max_sessions
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def get(self, session_id: str | None) -> Session | None:
        """The session with this cookie value, or None."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                self._sessions.move_to_end(session_id)
            return session

    def create(self) -> Session:
        session = Session(secrets.token_urlsafe(_TOKEN_BYTES), secrets.token_urlsafe(_TOKEN_BYTES))
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)
        return session
