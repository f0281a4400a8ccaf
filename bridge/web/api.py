"""`WebApi`: the routes of the page's HTTP API (aiohttp handlers) and the guard every request passes.

Guard, in order: Host (every request, `request_guard`); then for ``/api/``: a browser's fetch metadata
must name the page itself; state-changing requests need the page's Origin, the daemon's token when it
has one, and the session's CSRF header; GETs need the token or a session cookie made with it. Every
refusal is ``{"error": {code, message, field}}``.
Anything blocking (SQLite writes, path checks that create files, probing a video, writing an upload)
runs in the loop's executor, so one slow request never holds the others. The README's "Web page"
section has the route table.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import mimetypes
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

from aiohttp import web

from .. import const
from ..cli_arguments import GUIDANCE_MODES
from ..endpoint import Endpoint
from ..errors import ErrorCode, RequestError
from ..job_queue import JobQueue
from ..rate_limit import SenderRateLimit
from ..security import PathPolicy
from ..settings import BridgeSettings
from . import request_guard as guard
from .event_hub import MAX_STREAMS, EventHub
from .job_board import JobBoard
from .job_request import generate_request, page_refusal, parse_body
from .job_views import FILE_KINDS, soundmap_path
from .sessions import SessionStore
from .soundmaps import SoundMaps
from .uploads import receive_file, save_curve
from .web_errors import BUSY, NOT_FOUND, NOT_READY, RATE_LIMITED, TIMED_OUT, UNREADABLE_MEDIA, WebError

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "visage_session"  # + "_<port>": browsers send a host's cookies to all of its ports
TOKEN_HEADER = "X-Visage-Token"
CSRF_HEADER = "X-Visage-CSRF"
CONVENTION = "AmbiX (ACN W,Y,Z,X; SN3D): yaw positive to the left, pitch positive up"
# Wrong X-Visage-Token answers a client address may give at once, and per second after that: a guess
# beyond it is refused with 429 before the token is compared. A correct token spends nothing.
TOKEN_GUESS_BURST = 10
TOKEN_GUESSES_PER_S = 0.5
_GUESSES_MESSAGE = "too many wrong X-Visage-Token answers from this address; wait a few seconds"
# A request body (an upload too) may pause this long between two chunks: a slow upload of gigabytes is
# fine, a client that stops sending mid-body is answered 408 instead of holding its connection forever.
BODY_IDLE_S = 60.0
MAX_BODY_BYTES = 8 << 20  # JSON and curve bodies (uploads are streamed, with their own limit)
_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
_FILE_TYPES = {
    "wav": "audio/wav",
    "sidecar": "application/json",
    "preview": "audio/wav",
    "soundmap": "video/mp4",
}
_NO_CACHE = {"Cache-Control": "no-cache"}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
T = TypeVar("T")


class PageRoute:
    """The `routes.ReplyRoute` of jobs the page submits: their events reach it through the `EventHub`."""

    peer_host = "web page"

    def send(self, data: bytes) -> None:
        pass

    def persisted(self) -> tuple[str, int] | None:
        return None


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=_NO_CACHE)


def _package_version() -> str:
    try:
        return metadata.version("visage")
    except metadata.PackageNotFoundError:
        return "unknown"


async def _small_body(request: web.Request) -> bytes:
    """A JSON or curve body; one declared over `MAX_BODY_BYTES` is refused before any of it is read."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        message = f"bodies are limited to {MAX_BODY_BYTES} bytes; this one declares {declared}"
        raise WebError(ErrorCode.TOO_LARGE.value, message)
    data = bytearray()
    async for chunk in idle_bounded(request.content.iter_any(), BODY_IDLE_S):
        data += chunk
        if len(data) > MAX_BODY_BYTES:  # no Content-Length (chunked): counted as it comes
            raise WebError(ErrorCode.TOO_LARGE.value, f"bodies are limited to {MAX_BODY_BYTES} bytes")
    return bytes(data)


async def idle_bounded(chunks: AsyncIterator[bytes], idle_s: float) -> AsyncIterator[bytes]:
    """``chunks``, refused (``timed_out``, 408) when the next one takes over ``idle_s`` seconds.

    Why per chunk: the whole body of a slow upload may take hours; only a stalled one is cut.
    """
    iterator = aiter(chunks)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(iterator), idle_s)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
            raise WebError(TIMED_OUT, f"the request body stalled: no data for {idle_s:g} s") from None
        yield chunk


async def _write_off_loop(out: BinaryIO, chunk: bytes) -> None:
    await asyncio.get_running_loop().run_in_executor(None, out.write, chunk)


class WebApi:
    """The application; see the module docstring.

    Args:
        settings: the daemon's settings (token, allowed folders, upload limit, state folder).
        queue, endpoint: the daemon's job queue and its OSC request handler (validation, submission).
        board: views of jobs and groups.
        hub: the event streams.
        soundmaps: the sound-map renderer.
        model_id: the loaded model, for the session answer.
    """

    def __init__(
        self,
        *,
        settings: BridgeSettings,
        queue: JobQueue,
        endpoint: Endpoint,
        board: JobBoard,
        hub: EventHub,
        soundmaps: SoundMaps,
        model_id: str,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._endpoint = endpoint
        self._board = board
        self._hub = hub
        self._soundmaps = soundmaps
        self._model_id = model_id
        self._token = settings.token
        self._policy = PathPolicy((*settings.allow_dirs, settings.uploads_dir), settings.outputs_dir)
        self._sessions = SessionStore()
        self._allowed_hosts: frozenset[str] | None = frozenset()  # none until bound
        self._cookie = SESSION_COOKIE  # named after the port once bound: another daemon's page keeps its own
        self._route = PageRoute()
        self._guesses = SenderRateLimit(TOKEN_GUESSES_PER_S, TOKEN_GUESS_BURST, const.MAX_TRACKED_SENDERS)

    def bound(self, host: str, port: int) -> None:
        """The address the server listens on (Host headers are checked against it)."""
        self._allowed_hosts = guard.allowed_hosts(host, port)
        self._cookie = f"{SESSION_COOKIE}_{port}"

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
        app.on_response_prepare.append(self._add_security_headers)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/session", self._session)
        app.router.add_get("/api/media", self._media)
        app.router.add_get("/api/probe", self._probe)
        app.router.add_post("/api/uploads", self._upload)
        app.router.add_post("/api/curves", self._curve)
        app.router.add_get("/api/jobs", self._jobs)
        app.router.add_post("/api/jobs", self._submit)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/jobs/{id}/cancel", self._cancel)
        app.router.add_get("/api/jobs/{id}/files/{kind}", self._file)
        app.router.add_post("/api/jobs/{id}/soundmap", self._soundmap)
        app.router.add_get("/api/groups", self._groups)
        return app

    # -- guard -----------------------------------------------------------------------------------------

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            guard.check_host(request.headers.get("Host"), self._allowed_hosts)
            if request.path.startswith("/api/"):
                self._check_access(request)
            return await handler(request)
        except WebError as error:
            return _json(error.body(), error.status)
        except web.HTTPRequestEntityTooLarge:
            too_large = WebError(ErrorCode.TOO_LARGE.value, f"bodies are limited to {MAX_BODY_BYTES} bytes")
            return _json(too_large.body(), too_large.status)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                code = NOT_FOUND if exc.status == 404 else "method_not_allowed"
                body = WebError(code, f"{request.method} {request.path[:200]} is not an API route").body()
                return _json(body, exc.status)
            raise
        except ConnectionError as exc:  # the page went away mid-request (an upload cut short)
            log.info("web request %s %s ended: %s", request.method, request.path[:200], exc)
            lost = WebError(ErrorCode.MALFORMED.value, f"the connection was lost: {exc}")
            return _json(lost.body(), lost.status)
        except Exception as exc:  # a bug: answered as JSON, logged with its traceback
            log.exception("web request %s %s failed", request.method, request.path[:200])
            internal = WebError(ErrorCode.INTERNAL.value, f"{type(exc).__name__}: {exc}", status=500)
            return _json(internal.body(), 500)

    def _check_access(self, request: web.Request) -> None:
        guard.check_fetch_site(request.headers.get("Sec-Fetch-Site"))
        session = self._sessions.get(request.cookies.get(self._cookie))
        if request.method in _STATE_CHANGING:
            guard.check_origin(request.headers.get("Origin"), request.headers.get("Host"))
            self._check_token(request)
            guard.check_csrf(request.headers.get(CSRF_HEADER), None if session is None else session.csrf)
        elif request.path == "/api/session":
            self._check_token(request)
        elif session is None:  # a session was made with the token
            self._check_token(request)

    def _check_token(self, request: web.Request) -> None:
        """`guard.check_token`, with wrong tokens limited per client address (a guesser gets 429).

        Only a wrong token spends from the address's bucket: a missing one (the page asking whether a
        token is needed) and a correct one never do, so the page's own requests are not slowed. Once the
        bucket is empty every token from that address is refused before it is compared, the right one
        too: otherwise a guesser could ignore the 429s and still learn the token from the one 200.
        """
        given = request.headers.get(TOKEN_HEADER)
        if given is None:
            guard.check_token(given, self._token)
            return
        sender = request.remote or "unknown"
        if self._guesses.exhausted(sender):
            raise WebError(RATE_LIMITED, _GUESSES_MESSAGE)
        if guard.token_matches(given, self._token):
            return
        verdict = self._guesses.check(sender)
        if not verdict.allowed:  # the bucket emptied between the two looks
            raise WebError(RATE_LIMITED, _GUESSES_MESSAGE)
        if self._guesses.exhausted(sender):
            log.warning("web page: too many wrong tokens from %s; refusing its tokens with 429", sender)
        guard.check_token(given, self._token)

    async def _add_security_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)

    async def _off_loop(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(function, *args, **kwargs)
        )

    # -- page ------------------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return self._static_file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._static_file(request.match_info["name"])

    @staticmethod
    def _static_file(name: str) -> web.StreamResponse:
        path = STATIC_DIR / name
        if not _STATIC_NAME.fullmatch(name) or not path.is_file():
            raise WebError(NOT_FOUND, f"no page file {name[:100]!r}")
        content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(path, headers={**_NO_CACHE, "Content-Type": content_type})

    # -- session ---------------------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> web.StreamResponse:
        session = self._sessions.get(request.cookies.get(self._cookie))
        if session is None:
            session = self._sessions.create()  # the guard has checked the token
        response = _json(
            {
                "csrf": session.csrf,
                "token_required": self._token is not None,
                "allowed_dirs": [str(d) for d in self._settings.allow_dirs],
                "upload_limit_bytes": self._settings.web_upload_limit,
                "version": _package_version(),
                "model": self._model_id,
                "defaults": {
                    "guidance_scale": const.DEFAULT_GUIDANCE,
                    "guidance_mode": GUIDANCE_MODES[0],
                    "sample_rate": const.DEFAULT_SAMPLE_RATE_HZ,
                },
                "convention": CONVENTION,
            }
        )
        response.set_cookie(self._cookie, session.id, httponly=True, samesite="Strict", path="/")
        return response

    # -- media -----------------------------------------------------------------------------------------

    def _input_file(self, request: web.Request) -> Path:
        raw = request.query.get("path")
        if not raw:
            raise WebError(ErrorCode.BAD_PATH.value, "give the file as ?path=/absolute/path", "path")
        try:
            return self._policy.input_file(raw, "media")
        except RequestError as error:
            status = 404 if error.code is ErrorCode.MEDIA_NOT_FOUND else None
            raise WebError.of(error, "path", status) from None

    async def _media(self, request: web.Request) -> web.StreamResponse:
        path = self._input_file(request)
        guessed = mimetypes.guess_type(path.name)[0] or ""
        # Only audio and video as what they are: an HTML or SVG file of the user's folders, opened as the
        # daemon's page, would run its scripts with the page's session. Sandboxed in any case.
        playable = guessed.startswith(("video/", "audio/"))
        headers = {
            **_NO_CACHE,
            "Content-Type": guessed if playable else "application/octet-stream",
            "Content-Security-Policy": "sandbox",
        }
        return web.FileResponse(path, headers=headers)

    async def _probe(self, request: web.Request) -> web.StreamResponse:
        path = self._input_file(request)
        return _json(await self._off_loop(_probe_video, path))

    # -- uploads ---------------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        declared = request.content_length
        if declared is None:
            raise WebError(ErrorCode.BAD_VALUE.value, "uploads need a Content-Length header")
        name = request.query.get("name", "")
        path = await receive_file(
            idle_bounded(request.content.iter_chunked(1 << 20), BODY_IDLE_S),
            declared,
            self._settings.web_upload_limit,
            self._settings.uploads_dir,
            name,
            _write_off_loop,
        )
        log.info("web upload %s (%d bytes)", path, declared)
        return _json({"path": str(path), "size": declared}, 201)

    async def _curve(self, request: web.Request) -> web.StreamResponse:
        data = await _small_body(request)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise WebError(ErrorCode.BAD_VALUE.value, "a direction-curve file must be UTF-8 text") from None
        path = await self._off_loop(save_curve, text, self._settings.uploads_dir)
        return _json({"path": str(path)}, 201)

    # -- jobs ------------------------------------------------------------------------------------------

    async def _jobs(self, request: web.Request) -> web.StreamResponse:
        return _json({"jobs": await self._off_loop(self._board.recent)})

    async def _groups(self, request: web.Request) -> web.StreamResponse:
        return _json({"groups": await self._off_loop(self._board.groups)})

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = parse_body(await _small_body(request))
        generate = generate_request(body, uuid.uuid4().hex)  # the guard has checked the token
        try:
            await self._off_loop(self._endpoint.generate, generate, self._route, source="web")
        except RequestError as error:
            raise page_refusal(error, body.get("output")) from None
        return _json({"job_id": generate.job_id}, 202)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["id"]

        def cancel() -> str:
            self._queue.cancel(job_id)
            return self._queue.get(job_id).state.value

        try:
            state = await self._off_loop(cancel)
        except RequestError as error:
            raise WebError.of(error) from None
        return _json({"id": job_id, "state": state})

    def _known_job(self, request: web.Request) -> Any:
        job = self._board.job(request.match_info["id"])
        if job is None:
            raise WebError(ErrorCode.UNKNOWN_JOB.value, f"no job {request.match_info['id'][:80]!r}")
        return job

    async def _file(self, request: web.Request) -> web.StreamResponse:
        job = self._known_job(request)
        kind = request.match_info["kind"]
        if kind not in FILE_KINDS:
            raise WebError(NOT_FOUND, f"file kinds are {', '.join(FILE_KINDS)}, got {kind[:40]!r}")
        path = self._board.files(job)[kind]
        if path is None or not path.is_file():
            raise WebError(NOT_FOUND, f"job {job.id} has no {kind} file")
        if not self._in_daemon_folders(path):  # the file was replaced by a link to elsewhere
            message = f"job {job.id}'s {kind} file leads outside the folders this daemon may use"
            raise WebError(ErrorCode.PATH_NOT_ALLOWED.value, message)
        headers = {**_NO_CACHE, "Content-Type": _FILE_TYPES[kind]}
        if request.query.get("download") == "1":
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(path.name, safe='')}"
        return web.FileResponse(path, headers=headers)

    def _in_daemon_folders(self, path: Path) -> bool:
        """Whether ``path``, links followed, lies in a folder the daemon may write (as outputs must)."""
        resolved = path.resolve()
        return any(resolved.is_relative_to(d) for d in (*self._policy.allowed_dirs, self._policy.outputs_dir))

    async def _soundmap(self, request: web.Request) -> web.StreamResponse:
        job = self._known_job(request)
        result = self._board.files(job)["wav"]
        if result is None or not result.is_file():
            raise WebError(NOT_READY, f"job {job.id} has no result to draw a sound map of")
        state = self._soundmaps.request(job.id, result, job.spec.media, soundmap_path(result))
        return _json({"id": job.id, "soundmap_state": state}, 202)

    # -- events ----------------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._hub.full:
            message = f"{MAX_STREAMS} event streams are open already; close other tabs of this page"
            raise WebError(BUSY, message)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        stream = self._hub.subscribe()  # before the first await: the count above stays true
        try:
            await response.prepare(request)
            await response.write(b": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(stream.get(), timeout=const.WEB_HEARTBEAT_S)
                except asyncio.TimeoutError:
                    await response.write(b": heartbeat\n\n")
                    continue
                if event is None:
                    break
                await response.write(event)
        except ConnectionError:
            pass  # the page went away
        finally:
            self._hub.unsubscribe(stream)
        return response


def _probe_video(path: Path) -> dict[str, object]:
    """Duration, frame rate and display size of a video (PyAV, imported here: it is not light)."""
    from visage.model.files import video_io

    try:
        info = video_io.probe_video(path)
    except Exception as exc:  # VideoError and whatever PyAV raises on a file that is no media
        # FFmpeg's own words ("Invalid data found when processing input"); the page shows the path already
        reason = getattr(exc.__cause__, "strerror", None) or str(exc)
        message = f"{path.name!r} is not a video FFmpeg can read, or it is damaged ({reason})"
        raise WebError(UNREADABLE_MEDIA, message, "path") from None
    if not info.has_video:
        raise WebError(UNREADABLE_MEDIA, f"{path.name!r} has no video stream", "path")
    return {
        "duration_s": float(info.duration),
        "fps": float(info.frame_rate),
        "width": int(info.display_width),
        "height": int(info.display_height),
    }
