"""Sockets, thin: python-osc's UDP and TCP (OSC 1.1, SLIP) servers handing raw packets to a callback.

Everything protocol-shaped happens in the callback (`endpoint.Endpoint`). Two deliberate departures
from python-osc's defaults: the UDP server reads up to `const.UDP_RECV_BYTES` and skips python-osc's
"looks like OSC" filter, so that oversized and malformed datagrams are answered with an error instead
of being dropped silently; and the TCP connection handler keeps partial SLIP frames across reads
(`framing.SlipDecoder`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.osc_tcp_server import ThreadingOSCTCPServer

from . import const
from .errors import RequestError
from .framing import SlipDecoder, encode_frame
from .routes import ReplyRoute

log = logging.getLogger(__name__)

PacketHandler = Callable[[bytes, ReplyRoute, int], None]  # (packet, route, size limit)
FrameErrorHandler = Callable[[RequestError, ReplyRoute], None]


class UdpRoute:
    """Replies to one UDP address, sent from the server's socket."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self._sock = sock
        self.address = (address[0], address[1])

    @property
    def peer_host(self) -> str:
        return self.address[0]

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self.address)
        except OSError as exc:
            log.debug("UDP reply to %s failed: %s", self.address, exc)

    def persisted(self) -> tuple[str, int] | None:
        return self.address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UdpRoute) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)


class TcpRoute:
    """Replies on one TCP connection, SLIP-framed; writes from several threads are serialised."""

    def __init__(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        self._conn = conn
        self._peer = peer
        self._lock = threading.Lock()
        self.alive = True

    @property
    def peer_host(self) -> str:
        return self._peer[0]

    def send(self, data: bytes) -> None:
        with self._lock:
            if not self.alive:
                return
            try:
                self._conn.sendall(encode_frame(data))
            except OSError as exc:  # includes the send timeout of a client that stopped reading
                log.warning("TCP reply to %s failed (%s); closing the connection", self._peer, exc)
                self.alive = False
                with contextlib.suppress(OSError):
                    self._conn.shutdown(socket.SHUT_RDWR)

    def persisted(self) -> tuple[str, int] | None:
        return None

    def shutdown(self) -> None:
        """Wake the connection's reader (used when the daemon stops)."""
        with self._lock:
            self.alive = False
        with contextlib.suppress(OSError):
            self._conn.shutdown(socket.SHUT_RDWR)


class _PacketDispatcher(Dispatcher):
    """python-osc's seam: the server hands every datagram here; we answer through routes, not returns."""

    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        super().__init__()
        self._on_datagram = on_datagram

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list[Any]:
        self._on_datagram(data, client_address)
        return []


class _UdpServer(BlockingOSCUDPServer):
    max_packet_size = const.UDP_RECV_BYTES

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True  # malformed datagrams reach the endpoint, which answers `malformed`


def _serve(server: socketserver.BaseServer, name: str) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": const.SERVER_POLL_INTERVAL_S}, name=name
    )
    thread.start()
    return thread


class UdpTransport:
    """UDP OSC server on its own thread.

    Args:
        host, port: where to bind (port 0 = any free port).
        on_packet: called on the server thread with (datagram, route, size limit).
    """

    def __init__(self, host: str, port: int, on_packet: PacketHandler) -> None:
        self._on_packet = on_packet
        self._server = _UdpServer((host, port), _PacketDispatcher(self._datagram))
        self._thread: threading.Thread | None = None

    def _datagram(self, data: bytes, client_address: tuple[str, int]) -> None:
        self._on_packet(data, UdpRoute(self._server.socket, client_address), const.MAX_UDP_REQUEST_BYTES)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def route_to(self, host: str, port: int) -> UdpRoute:
        """A route to ``(host, port)`` sending from this server's socket."""
        return UdpRoute(self._server.socket, (host, port))

    def start(self) -> None:
        self._thread = _serve(self._server, "visage-udp")

    def stop_serving(self) -> None:
        """Stop reading requests; the socket stays open for the last events."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(const.THREAD_JOIN_S)
            self._thread = None

    def close(self) -> None:
        self.stop_serving()
        self._server.server_close()


class _SlipConnection(socketserver.BaseRequestHandler):
    """One TCP client: read SLIP frames until it hangs up or the daemon stops."""

    server: _TcpServer

    def handle(self) -> None:
        # A timeout bounds how long a reply may block on a client that stopped reading (replies are
        # sent while the job queue's lock is held); the reader below just retries on it.
        self.request.settimeout(const.TCP_SEND_TIMEOUT_S)
        route = TcpRoute(self.request, self.client_address)
        decoder = SlipDecoder(const.MAX_TCP_FRAME_BYTES)
        self.server.track(route, True)
        try:
            while route.alive:
                try:
                    chunk = self.request.recv(const.TCP_RECV_CHUNK_BYTES)
                except TimeoutError:
                    continue  # idle client
                except OSError:
                    break
                if not chunk:
                    break
                for frame in decoder.feed(chunk):
                    if isinstance(frame, RequestError):
                        self.server.on_frame_error(frame, route)
                    else:
                        self.server.on_packet(frame, route, const.MAX_TCP_FRAME_BYTES)
        finally:
            route.alive = False
            self.server.track(route, False)


class _TcpServer(ThreadingOSCTCPServer):
    allow_reuse_address = True  # a restarted daemon can bind its port again at once
    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self, address: tuple[str, int], on_packet: PacketHandler, on_frame_error: FrameErrorHandler):
        super().__init__(address, Dispatcher(), mode="1.1")
        self.RequestHandlerClass = _SlipConnection
        self.on_packet = on_packet
        self.on_frame_error = on_frame_error
        self._connections: set[TcpRoute] = set()
        self._connections_lock = threading.Lock()

    def track(self, route: TcpRoute, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(route)
            else:
                self._connections.discard(route)

    def shutdown_connections(self) -> None:
        with self._connections_lock:
            routes = list(self._connections)
        for route in routes:
            route.shutdown()


class TcpTransport:
    """TCP OSC 1.1 (SLIP) server: one accept thread plus one thread per connection.

    Args:
        host, port: where to bind (port 0 = any free port).
        on_packet: called on the connection's thread with (frame, route, size limit).
        on_frame_error: called for an oversized or badly escaped frame.
    """

    def __init__(
        self, host: str, port: int, on_packet: PacketHandler, on_frame_error: FrameErrorHandler
    ) -> None:
        self._server = _TcpServer((host, port), on_packet, on_frame_error)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = _serve(self._server, "visage-tcp")

    def stop_serving(self) -> None:
        """Stop accepting connections (open ones keep receiving events)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(const.THREAD_JOIN_S)
            self._thread = None

    def close(self) -> None:
        self.stop_serving()
        self._server.shutdown_connections()
        self._server.server_close()
