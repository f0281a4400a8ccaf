"""`Endpoint`: request handling between the transports and the job queue (no sockets of its own).

For each packet: decode (`osc_protocol.parse_packet`), check the token, resolve paths
(`security.PathPolicy`), act on the `JobQueue`, and answer through a `routes.ReplyRoute`. Every failure
is answered with a specific `/visage/error` and logged; nothing a client sends can stop the daemon.

Nothing here can loop: replies sent to the daemon are dropped unanswered, a request may not name one of
the daemon's own ports as its ``reply_port``, and refusals are answered and logged within a per-host
rate limit (`rate_limit.SenderRateLimit`), so a peer that answers errors with errors gets silence.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import visage.model.files.result_files as rf

from . import const
from .engine import GenerateSpec
from .errors import ErrorCode, RequestError
from .job_queue import JobQueue
from .jobs import Job, JobState
from .osc_protocol import (
    Cancel,
    Error,
    Generate,
    Ping,
    Pong,
    Rejected,
    Reply,
    Request,
    Status,
    StrayReply,
    parse_packet,
)
from .rate_limit import SenderRateLimit
from .routes import ReplyRoute, RouteTable, send_reply
from .security import PathPolicy, check_output_writable, check_outputs_spare_inputs, token_ok

log = logging.getLogger(__name__)

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
_MAX_STEM_CHARS = 100
_PACKET_LEVEL = (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE)


def output_name(media: Path, job_id: str) -> str:
    """File name for a job that names only an output folder: ``<media stem>-<job id>.wav``."""
    stem = _UNSAFE_NAME_CHARS.sub("_", media.stem)[:_MAX_STEM_CHARS].strip(" .") or "visage"
    return f"{stem}-{job_id}.wav"


def fingerprint(request: Generate) -> str:
    """Canonical parameters of a generate request (without routing and token)."""
    return json.dumps(
        [request.media, request.start, request.end, request.yaw, request.pitch, request.options.to_json()],
        separators=(",", ":"),
    )


class Endpoint:
    """Handles decoded requests; see the module docstring.

    Args:
        queue: the job queue.
        policy: path rules.
        outputs_dir: default output folder.
        token: required token, or None.
        model_id, device: reported by `pong`.
        routes: the route table (also builds UDP routes for requests that name a reply port).
    """

    def __init__(
        self,
        *,
        queue: JobQueue,
        routes: RouteTable,
        policy: PathPolicy,
        outputs_dir: Path,
        token: str | None,
        model_id: str,
        device: str,
    ) -> None:
        self._queue = queue
        self._routes = routes
        self._policy = policy
        self._outputs_dir = outputs_dir
        self._token = token
        self._model_id = model_id
        self._device = device
        self._own_ports: frozenset[int] = frozenset()
        self._refusals = SenderRateLimit(const.REFUSALS_PER_S, const.REFUSAL_BURST, const.MAX_TRACKED_SENDERS)

    def set_own_ports(self, ports: Iterable[int]) -> None:
        """The daemon's bound ports, which no request may name as its reply_port (it would answer itself)."""
        self._own_ports = frozenset(ports)

    # -- entry points for the transports ---------------------------------------------------------

    def handle_packet(self, data: bytes, route: ReplyRoute, max_bytes: int) -> None:
        """Handle one datagram or TCP frame from ``route``."""
        for item in parse_packet(data, max_bytes):
            if isinstance(item, StrayReply):
                text = f"dropped {item.address} from {route.peer_host}: replies are never answered"
                self._refuse(route, None, logging.DEBUG, text)
            elif isinstance(item, Rejected):
                self._reject(item, route)
            else:
                self._handle_request(item, route)

    def handle_frame_error(self, error: RequestError, route: ReplyRoute) -> None:
        """A TCP frame that could not be delimited or unescaped."""
        reply = Error("", error.code.value, error.message)
        self._refuse(route, reply, logging.WARNING, f"from {route.peer_host}: {error}")

    # -- internals ---------------------------------------------------------------------------------

    def _refuse(
        self,
        route: ReplyRoute,
        reply: Error | None,
        level: int,
        text: str,
        exc_info: bool = False,
    ) -> None:
        """Log a refusal and send ``reply`` to ``route``, unless the sender's host is over its rate limit."""
        verdict = self._refusals.check(route.peer_host)
        if not verdict.allowed:
            if verdict.first_suppressed:
                log.warning(
                    "too many refused requests from %s: the next are neither answered nor logged for now",
                    route.peer_host,
                )
            return
        if verdict.suppressed_before:
            log.warning(
                "%d refused requests from %s were neither answered nor logged",
                verdict.suppressed_before,
                route.peer_host,
            )
        log.log(level, "%s", text, exc_info=exc_info)
        if reply is not None:
            send_reply(route, reply)

    def _target(self, route: ReplyRoute, reply_port: int) -> ReplyRoute:
        if not reply_port or reply_port in self._own_ports:
            return route  # a rejected request naming our own port: answer the sender, never ourselves
        return self._routes.udp_route(route.peer_host, reply_port)

    def _reject(self, rejected: Rejected, route: ReplyRoute) -> None:
        error = rejected.error
        text = f"rejected request from {route.peer_host}: {error}"
        if error.code not in _PACKET_LEVEL and not token_ok(self._token, rejected.token):
            refusal = Error(rejected.job_id, ErrorCode.UNAUTHORIZED.value, "missing or wrong token")
            self._refuse(route, refusal, logging.WARNING, text)
            return
        refusal = Error(rejected.job_id, error.code.value, error.message)
        self._refuse(self._target(route, rejected.reply_port), refusal, logging.WARNING, text)

    def _handle_request(self, request: Request, route: ReplyRoute) -> None:
        job_id = getattr(request, "job_id", "")
        name = type(request).__name__
        if not token_ok(self._token, request.token):
            refusal = Error(job_id, ErrorCode.UNAUTHORIZED.value, "missing or wrong token")
            self._refuse(route, refusal, logging.WARNING, f"unauthorized {name} from {route.peer_host}")
            return
        port = request.reply_port
        if port in self._own_ports:
            message = f"reply_port {port} is one of this daemon's own ports; name the client's port"
            refusal = Error(job_id, ErrorCode.BAD_VALUE.value, message)
            self._refuse(route, refusal, logging.WARNING, f"{name} from {route.peer_host}: {message}")
            return
        target = self._target(route, port)
        try:
            reply = self._dispatch(request, target)
        except RequestError as error:
            refusal = Error(error.job_id or job_id, error.code.value, error.message)
            self._refuse(target, refusal, logging.WARNING, f"{name} {job_id} from {route.peer_host}: {error}")
            return
        except Exception as exc:
            refusal = Error(job_id, ErrorCode.INTERNAL.value, f"{type(exc).__name__}: {exc}")
            self._refuse(target, refusal, logging.ERROR, f"internal error handling {name}", exc_info=True)
            return
        if reply is not None:
            send_reply(target, reply)

    def _dispatch(self, request: Request, target: ReplyRoute) -> Reply | None:
        if isinstance(request, Ping):
            waiting, running = self._queue.counts()
            return Pong(const.PROTOCOL_VERSION, self._model_id, self._device, waiting, running)
        if isinstance(request, Generate):
            return self.generate(request, target)
        if isinstance(request, Cancel):
            owner = self._routes.route_for(self._queue.get(request.job_id))
            reply, emitted = self._queue.cancel(request.job_id)
            return None if emitted and owner == target else reply  # the owner has it already
        if isinstance(request, Status):
            return self._queue.latest_event(request.job_id)
        raise AssertionError(f"unhandled request {request!r}")

    def generate(self, request: Generate, target: ReplyRoute, *, source: str = "osc") -> Reply | None:
        """Check, resolve and queue a decoded `generate` (OSC, or the web page as ``source``).

        Returns:
            None for a new job (the queue emitted `accepted`), else the job's current event.

        Raises:
            RequestError: the request is refused (path rules, outputs, queue full, duplicate id).
        """
        job_id = request.job_id or uuid.uuid4().hex
        try:
            spec = self._spec(request, job_id)
            if not self._queue.exists(job_id):
                # Checked when a job is accepted, not when it runs: once accepted, a job owns its output
                # paths (a run resumed after a crash may replace what its first attempt wrote).
                _check_new_outputs(spec, overwrite=request.options.overwrite)
        except RequestError as error:
            raise error.with_job_id(request.job_id) from None
        persisted = target.persisted()
        job = Job(
            id=job_id,
            seq=0,
            state=JobState.ACCEPTED,
            spec=spec,
            fingerprint=fingerprint(request),
            reply_host=persisted[0] if persisted else None,
            reply_port=persisted[1] if persisted else None,
            use_cache=request.options.use_cache,
            source=source,
            group=request.options.group,
            group_label=request.options.group_label,
            group_total=request.options.group_total,
        )
        stored, created = self._queue.submit(job, target)
        if created:
            log.info(
                "job %s accepted: %s [%s, %s] yaw %.1f pitch %.1f -> %s",
                job_id,
                spec.media,
                spec.start,
                spec.end,
                spec.yaw,
                spec.pitch,
                spec.output,
            )
            return None  # `accepted` was emitted by the queue, ordered before any progress
        return self._queue.latest_event(stored.id)

    def _spec(self, request: Generate, job_id: str) -> GenerateSpec:
        options = request.options
        media = self._policy.input_file(request.media, "media")
        curve = (
            None
            if options.direction_curve is None
            else self._policy.input_file(options.direction_curve, "direction_curve")
        )
        if options.output is not None:
            output = self._policy.output_file(options.output)
        else:
            folder = (
                self._outputs_dir
                if options.output_dir is None
                else self._policy.output_dir(options.output_dir)
            )
            output = folder / output_name(media, job_id)
        spec = GenerateSpec(
            media=media,
            start=request.start,
            end=request.end,
            yaw=request.yaw,
            pitch=request.pitch,
            direction_curve=curve,
            guidance=options.guidance,
            seed=options.seed,
            sample_rate=options.sample_rate,
            output=output,
            extra=dict(options.extra),
        )
        check_outputs_spare_inputs(_job_outputs(spec), [path for path in (media, curve) if path is not None])
        return spec


def _check_new_outputs(spec: GenerateSpec, *, overwrite: bool) -> None:
    """Refuse a new job whose files exist (unless ``overwrite``) or whose folder cannot take them now."""
    if not overwrite:
        for path in _job_outputs(spec):
            if path.exists():
                raise RequestError(
                    ErrorCode.OUTPUT_EXISTS,
                    f"output {str(path)!r} already exists; set option overwrite=true to replace it",
                )
    check_output_writable(spec.output, _bytes_needed(spec))


def _bytes_needed(spec: GenerateSpec) -> int:
    """Free space a job needs in its output folder: result and preview at full length when it is known."""
    if spec.end is None:
        return const.MIN_FREE_OUTPUT_BYTES
    frames = math.ceil((spec.end - spec.start) * spec.sample_rate)
    per_frame = const.OUTPUT_CHANNELS_WRITTEN * const.OUTPUT_BYTES_PER_SAMPLE
    return const.MIN_FREE_OUTPUT_BYTES + frames * per_frame


def _job_outputs(spec: GenerateSpec) -> list[Path]:
    """The files a job will write: the result, its JSON sidecar and, unless turned off, its preview and the
    preview's sidecar (names from the result-file contract)."""
    files = [spec.output, rf.sidecar_path(spec.output)]
    if spec.extra.get("binaural_preview", True) is not False:
        preview = rf.preview_path(spec.output)
        files += [preview, rf.sidecar_path(preview)]
    return files
