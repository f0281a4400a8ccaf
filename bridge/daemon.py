"""`Daemon`: the composition root. Builds state, queue, worker, transports and discovery around an
already-loaded engine; starts them in order and stops them in reverse.

Start: lock the state folder, open the database, resume every unfinished job, start the worker, bind
UDP then TCP, start the web page (`web.server`, imported only then: aiohttp), write ``daemon.json``,
advertise. Stop (SIGINT/SIGTERM or `stop`): unadvertise, stop reading requests, stop the web page, let
the worker finish or re-queue its batch, close sockets, remove ``daemon.json`` (only the one this daemon
wrote: a second daemon refused on a busy state folder leaves the first one's alone).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from . import const
from .database import StateDatabase
from .discovery import Advertiser
from .endpoint import Endpoint
from .engine import Engine
from .job_queue import JobQueue
from .job_store import JobStore
from .result_cache import ResultCache
from .routes import RouteTable
from .security import PathPolicy
from .settings import BridgeSettings
from .state_dir import EndpointInfo, StateDirLock, remove_own_endpoint, write_endpoint
from .transport import TcpTransport, UdpTransport
from .worker import Worker

if TYPE_CHECKING:  # pragma: no cover
    from .web.server import WebServer

log = logging.getLogger(__name__)


def _client_host(bound: str) -> str:
    """The address a local client should use for a bound address (wildcards -> loopback)."""
    return "127.0.0.1" if bound in ("0.0.0.0", "") else bound


class Daemon:
    """A running bridge; use as a context manager or call `start`/`stop`.

    Args:
        settings: validated settings.
        engine: the loaded model (see `engine.Engine`).
    """

    def __init__(self, settings: BridgeSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._lock = StateDirLock(settings.lock_path)
        self._db: StateDatabase | None = None
        self._worker: Worker | None = None
        self._udp: UdpTransport | None = None
        self._tcp: TcpTransport | None = None
        self._advertiser: Advertiser | None = None
        self._web: WebServer | None = None
        self._endpoint: EndpointInfo | None = None  # what this daemon wrote to daemon.json
        self._stop_requested = threading.Event()
        self._stopped = False
        self.queue: JobQueue | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Daemon:
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        s.outputs_dir.mkdir(exist_ok=True)
        self._lock.acquire()
        try:
            self._start_locked()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_locked(self) -> None:
        s = self.settings
        self._db = StateDatabase(s.db_path)
        store = JobStore(self._db)
        pruned = store.prune(const.JOB_RETENTION_S)
        resumed = store.recover()
        routes = RouteTable()
        self.queue = JobQueue(store, routes)
        endpoint = Endpoint(
            queue=self.queue,
            routes=routes,
            # Files uploaded through the web page are media like any other.
            policy=PathPolicy(
                s.allow_dirs + ((s.uploads_dir,) if s.web_port is not None else ()), s.outputs_dir
            ),
            outputs_dir=s.outputs_dir,
            token=s.token,
            model_id=self.engine.model_id,
            device=self.engine.device,
        )
        self._udp = UdpTransport(s.host, s.udp_port, endpoint.handle_packet)
        routes.set_udp_factory(self._udp.route_to)
        if s.tcp_port is not None:
            self._tcp = TcpTransport(s.host, s.tcp_port, endpoint.handle_packet, endpoint.handle_frame_error)
        endpoint.set_own_ports(
            [self.udp_address[1]] + ([] if self.tcp_address is None else [self.tcp_address[1]])
        )
        self._worker = Worker(self.queue, ResultCache(self._db), self.engine, s.max_batch)
        self._worker.start()
        self._udp.start()
        if self._tcp is not None:
            self._tcp.start()
        if s.web_port is not None:
            from .web.server import WebServer

            self._web = WebServer(
                s, queue=self.queue, store=store, endpoint=endpoint, model_id=self.engine.model_id
            )
            log.info("web page at %s", self._web.start())
        self._endpoint = EndpointInfo(
            pid=os.getpid(),
            host=_client_host(self.udp_address[0]),
            udp_port=self.udp_address[1],
            tcp_port=None if self.tcp_address is None else self.tcp_address[1],
            model_id=self.engine.model_id,
            device=self.engine.device,
            protocol_version=const.PROTOCOL_VERSION,
            auth="token" if s.token else "none",
            web_url=None if self._web is None else self._web.url,
        )
        write_endpoint(s.endpoint_path, self._endpoint)
        log.info(
            "serving %s on udp %s tcp %s (state %s; %d jobs resumed, %d old jobs pruned)",
            self.engine.model_id,
            self.udp_address,
            self.tcp_address,
            s.state_dir,
            len(resumed),
            pruned,
        )
        if s.zeroconf:
            self._advertiser = Advertiser(
                host=s.host,
                udp_port=self.udp_address[1],
                tcp_port=None if self.tcp_address is None else self.tcp_address[1],
                model_id=self.engine.model_id,
                device=self.engine.device,
                auth_required=s.token is not None,
                interfaces=s.zeroconf_interfaces,
            )
            self._advertiser.start()

    def stop(self, graceful_s: float | None = None) -> None:
        """Stop everything started so far (idempotent); see the module docstring for the order."""
        if self._stopped:
            return
        self._stopped = True
        if self._advertiser is not None:
            self._advertiser.close()
        if self._udp is not None:
            self._udp.stop_serving()
        if self._tcp is not None:
            self._tcp.stop_serving()
        if self._web is not None:
            self._web.stop()
        if self._worker is not None:
            self._worker.stop(graceful_s)
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close()
        if self._endpoint is not None:
            remove_own_endpoint(self.settings.endpoint_path, self._endpoint)
        if self._db is not None:
            self._db.close()
        close = getattr(self.engine, "close", None)
        if callable(close):
            close()
        self._lock.release()
        log.info("stopped")

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- properties ----------------------------------------------------------------------------------

    @property
    def udp_address(self) -> tuple[str, int]:
        assert self._udp is not None, "daemon not started"
        return self._udp.address

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return None if self._tcp is None else self._tcp.address

    @property
    def web_url(self) -> str | None:
        """The web page's address (``http://127.0.0.1:PORT/``), None when it is off."""
        return None if self._web is None else self._web.url

    @property
    def advertised_names(self) -> list[str]:
        """ZeroConf service names, once registered (blocks until then)."""
        return [] if self._advertiser is None else self._advertiser.wait_registered()

    # -- running as a process ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask `serve_until_stopped` to return (thread- and signal-safe)."""
        self._stop_requested.set()

    def serve_until_stopped(self, install_signals: bool = True) -> int:
        """Start, block until SIGINT/SIGTERM (or `request_stop`), stop gracefully; return an exit code."""
        previous: dict[int, object] = {}
        if install_signals:

            def on_signal(signum: int, frame: FrameType | None) -> None:
                log.info("signal %d: stopping", signum)
                self._stop_requested.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            self.start()
            while not self._stop_requested.wait(const.WORKER_IDLE_WAIT_S):
                pass
            return 0
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
