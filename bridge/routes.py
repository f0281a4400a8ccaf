"""Reply routes: where a job's events go, surviving a restart for UDP clients.

A route is the sender of a request (a UDP address or a TCP connection) or, when the request names a
``reply_port``, that port on the sender's host. Routes of live jobs are kept in memory; UDP routes are
also stored with the job, so that after a restart events still reach a client that kept its socket.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from .jobs import Job
from .osc_protocol import Done, Error, Reply, encode_reply

log = logging.getLogger(__name__)


class ReplyRoute(Protocol):
    """A destination for reply datagrams (implemented in `transport`)."""

    @property
    def peer_host(self) -> str:
        """Host of the peer (reply ports are on this host)."""
        ...

    def send(self, data: bytes) -> None:
        """Send one encoded reply; must not raise (a dead peer is logged and ignored)."""
        ...

    def persisted(self) -> tuple[str, int] | None:
        """(host, port) if this route can be rebuilt after a restart (UDP), else None."""
        ...


def send_reply(route: ReplyRoute, reply: Reply) -> None:
    """Encode and send; a reply too large to encode becomes an `internal` error reply."""
    try:
        data = encode_reply(reply)
    except ValueError as exc:
        log.error("cannot encode %s: %s", type(reply).__name__, exc)
        job_id = getattr(reply, "job_id", "")
        data = encode_reply(Error(job_id, "internal", "reply too large for UDP; see the daemon log"))
    route.send(data)


class RouteTable:
    """Maps job ids to routes; the `job_queue.EventSink` of the daemon."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, ReplyRoute] = {}
        self._udp_factory: Callable[[str, int], ReplyRoute] | None = None

    def set_udp_factory(self, factory: Callable[[str, int], ReplyRoute]) -> None:
        """How to rebuild a persisted UDP route (needs the bound UDP socket)."""
        self._udp_factory = factory

    def udp_route(self, host: str, port: int) -> ReplyRoute:
        """A route to UDP ``(host, port)``, sent from the daemon's UDP socket."""
        if self._udp_factory is None:
            raise RuntimeError("the UDP transport is not started")
        return self._udp_factory(host, port)

    def bind(self, job_id: str, route: object) -> None:
        with self._lock:
            self._routes[job_id] = route  # type: ignore[assignment]

    def route_for(self, job: Job) -> ReplyRoute | None:
        with self._lock:
            route = self._routes.get(job.id)
        if route is None and job.reply_host is not None and job.reply_port and self._udp_factory is not None:
            route = self._udp_factory(job.reply_host, job.reply_port)  # persisted before a restart
        return route

    def emit(self, job: Job, reply: Reply) -> None:
        route = self.route_for(job)
        if isinstance(reply, (Done, Error)):
            with self._lock:
                self._routes.pop(job.id, None)
        if route is None:
            log.debug("no route for job %s; %s not sent", job.id, type(reply).__name__)
            return
        send_reply(route, reply)
