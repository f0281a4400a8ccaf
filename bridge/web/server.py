"""`WebServer`: the page's HTTP server in its own thread and asyncio loop, next to the threaded daemon.

Why aiohttp: one dependency (no ASGI server besides it), request bodies read as streams (uploads of
gigabytes go to disk chunk by chunk), server-sent events as a plain `StreamResponse`, Range requests
in `FileResponse` (seeking in <video>), and an `AppRunner` that starts and stops inside any event loop,
so the server lives in one thread the daemon starts after its worker and stops before its transports.

Job changes reach the loop through the queue's watcher hook (`JobQueue.watch`) and
``call_soon_threadsafe``; nothing on the loop waits for the worker or blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from pathlib import Path

from aiohttp import web

from .. import const
from ..endpoint import Endpoint
from ..job_queue import JobQueue
from ..job_store import JobStore
from ..jobs import PENDING_STATES
from ..settings import BridgeSettings
from .api import WebApi
from .event_hub import EventHub
from .job_board import JobBoard
from .soundmaps import SoundMaps
from .uploads import remove_stale_uploads

log = logging.getLogger(__name__)

_SHUTDOWN_S = 2.0  # open requests (an upload, an event stream) get this long when the daemon stops
# A connection must send a request's complete line and headers within this long of connecting or of its
# last response (aiohttp's keep-alive timer runs from the connection's start and is not reset by a part
# of a request), so one that stalls mid-headers or idles is closed. Bodies: `api.BODY_IDLE_S`.
HEADER_TIMEOUT_S = 30.0
# After an answer given before the whole body came (a refused or stalled upload), the rest is read and
# dropped for at most this long, so the client sees the answer rather than a reset (aiohttp's default).
LINGER_S = 10.0
UPLOAD_SWEEP_S = 24 * 3600.0  # old uploads are removed when the server starts and this often after


def sweep_uploads(store: JobStore, uploads_dir: Path, now: float) -> list[Path]:
    """Remove upload folders older than the finished-job retention (`const.JOB_RETENTION_S`) that no
    pending job uses as media or direction curve; return them. Blocking (disk and database)."""
    pending = store.in_states(PENDING_STATES)
    in_use = [
        path for job in pending for path in (job.spec.media, job.spec.direction_curve) if path is not None
    ]
    removed = remove_stale_uploads(uploads_dir, const.JOB_RETENTION_S, in_use, now)
    if removed:
        days = const.JOB_RETENTION_S / 86400
        log.info("removed %d upload folder(s) older than %.0f days", len(removed), days)
    return removed


def page_url(host: str, port: int) -> str:
    """The page's address for a bound host (a wildcard is reached through loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


class WebServer:
    """Start with `start` (returns once listening, or raises the bind error); stop with `stop`.

    Args:
        settings: the daemon's settings (``host``, ``web_port``, token, folders, upload limit).
        queue, store, endpoint: the daemon's job queue, job store and OSC request handler.
        model_id: the loaded model.
    """

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        queue: JobQueue,
        store: JobStore,
        endpoint: Endpoint,
        model_id: str,
    ) -> None:
        assert settings.web_port is not None
        self._settings = settings
        self._queue = queue
        self._store = store
        self._endpoint = endpoint
        self._model_id = model_id
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="visage-web", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._hub: EventHub | None = None
        self._soundmaps: SoundMaps | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.address: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        assert self.address is not None, "web server not started"
        return page_url(*self.address)

    def start(self) -> str:
        """Bind and serve; return the page's URL.

        Raises:
            OSError: the port is taken (or another bind error).
        """
        self._settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.url

    def stop(self) -> None:
        """End event streams, close connections, stop the loop and join the thread (idempotent)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    # -- the server thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        else:
            self._ready.set()
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._close())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()

        def on_soundmap_change(job_id: str) -> None:
            try:
                loop.call_soon_threadsafe(self._refresh_job, job_id)
            except RuntimeError:  # the loop is closed: the server is stopping
                pass

        self._soundmaps = SoundMaps(on_soundmap_change)
        board = JobBoard(self._queue, self._store, self._soundmaps)
        self._hub = EventHub(loop, board.view, board.group)
        api = WebApi(
            settings=self._settings,
            queue=self._queue,
            endpoint=self._endpoint,
            board=board,
            hub=self._hub,
            soundmaps=self._soundmaps,
            model_id=self._model_id,
        )
        self._runner = web.AppRunner(
            api.application(),
            access_log=None,
            shutdown_timeout=_SHUTDOWN_S,
            keepalive_timeout=HEADER_TIMEOUT_S,
            lingering_time=LINGER_S,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.web_port)
        await site.start()
        bound = self._runner.addresses[0]
        self.address = (self._settings.host, int(bound[1]))
        api.bound(*self.address)
        self._queue.watch(self._hub.on_job_change)
        self._sweeper = loop.create_task(self._sweep_uploads_daily())

    async def _sweep_uploads_daily(self) -> None:
        """`sweep_uploads` now and every `UPLOAD_SWEEP_S`, off the loop (no request waits for it)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(
                    None, sweep_uploads, self._store, self._settings.uploads_dir, time.time()
                )
            except Exception:  # logged and tried again next time: the page keeps working
                log.exception("sweeping old uploads failed")
            await asyncio.sleep(UPLOAD_SWEEP_S)

    def _refresh_job(self, job_id: str) -> None:
        job = self._store.get(job_id)
        if job is not None and self._hub is not None:
            self._hub.job_changed(job)

    async def _close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._hub is not None:
            try:
                self._queue.unwatch(self._hub.on_job_change)
            except ValueError:
                pass  # the bind failed before it watched
            self._hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._soundmaps is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._soundmaps.close)
