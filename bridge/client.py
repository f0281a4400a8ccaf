"""`VisageClient`: a small synchronous client for host scripts (no torch, nothing heavy to import).

    from visage.bridge.client import VisageClient, find_daemon

    with VisageClient(find_daemon()) as client:
        job = client.submit("/abs/clip.mp4", yaw=30.0, pitch=0.0, start=1.0, end=6.0,
                            output="/abs/clip_ambix.wav")
        done = client.wait(job, progress=lambda p: print(p.fraction, p.stage))
        print(done.output)

UDP is lossy, so the client resends a request until it is answered (`generate` is idempotent by job
id) and, while waiting, asks for `status` whenever nothing arrived for `CLIENT_STATUS_POLL_S`; a
daemon restart is therefore invisible apart from the delay. Over TCP a lost connection is treated the
same way: the next resend or status poll connects again. Not thread-safe: one client per thread.
"""

from __future__ import annotations

import collections
import ipaddress
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from . import const
from .errors import RequestError
from .framing import SlipDecoder, encode_frame
from .osc_protocol import (
    Accepted,
    Cancel,
    Done,
    Error,
    Generate,
    GenerateOptions,
    Ping,
    Pong,
    Progress,
    Reply,
    Request,
    Status,
    check_path_shape,
    decode_reply,
    encode_request,
)


class DaemonAddress(NamedTuple):
    host: str
    port: int  # UDP
    tcp_port: int | None = None
    source: str = ""  # how it was found: "explicit", "endpoint-file", "zeroconf", "default"


class DaemonUnavailable(ConnectionError):
    """No daemon answered."""


class JobFailed(Exception):
    """A request was refused or a job ended in error/cancelled.

    Attributes:
        code: the error code (`errors.ErrorCode` value or engine-specific).
        message: the daemon's explanation.
        job_id: the job concerned ("" if none).
    """

    def __init__(self, code: str, message: str, job_id: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.job_id = job_id


def parse_daemon(text: str, *, tcp: bool = False) -> DaemonAddress:
    """Parse ``HOST:PORT``: the daemon's UDP port, or its TCP port when ``tcp`` (the port the client uses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return DaemonAddress(host.strip("[]"), int(port), int(port) if tcp else None, "explicit")


def find_daemon(
    spec: str = "auto",
    *,
    state_dir: Path | None = None,
    timeout_s: float | None = None,
    zeroconf: bool = True,
    tcp: bool = False,
) -> DaemonAddress:
    """Locate a daemon.

    ``auto`` tries, in order: the endpoint file of a local daemon (``daemon.json`` in ``state_dir``,
    default the user data folder), ZeroConf on loopback, the default port on 127.0.0.1.
    Anything else is parsed as ``HOST:PORT`` (see `parse_daemon` for ``tcp``).
    """
    if spec != "auto":
        return parse_daemon(spec, tcp=tcp)
    from .state_dir import read_endpoint

    if state_dir is None:
        from .settings import default_state_dir

        state_dir = default_state_dir()
    info = read_endpoint(state_dir / const.ENDPOINT_FILE_NAME)
    if info is not None:
        return DaemonAddress(info.host, info.udp_port, info.tcp_port, "endpoint-file")
    if zeroconf:
        from .discovery import browse

        found = browse(timeout_s=timeout_s, first=True)
        if found:
            return DaemonAddress(found[0].host, found[0].udp_port, found[0].tcp_port, "zeroconf")
    return DaemonAddress(const.DEFAULT_HOST, const.DEFAULT_UDP_PORT, const.DEFAULT_TCP_PORT, "default")


def _local_bind_host(host: str) -> str:
    try:
        return "127.0.0.1" if ipaddress.ip_address(socket.gethostbyname(host)).is_loopback else "0.0.0.0"
    except (OSError, ValueError):
        return "0.0.0.0"


class VisageClient:
    """Talks to one daemon over UDP (default) or TCP.

    Args:
        address: where the daemon is (`find_daemon`), or (host, port).
        token: the daemon's token, if it requires one (default: $VISAGE_TOKEN).
        transport: "udp" or "tcp" (needs ``address.tcp_port``).
        timeout_s: how long a request may go unanswered before `DaemonUnavailable`.
    """

    def __init__(
        self,
        address: DaemonAddress | tuple[str, int] | None = None,
        *,
        token: str | None = None,
        transport: str = "udp",
        timeout_s: float | None = None,
    ) -> None:
        if address is None:
            address = find_daemon()
        if not isinstance(address, DaemonAddress):
            address = DaemonAddress(address[0], address[1], None, "explicit")
        self.address = address
        self.token = token if token is not None else os.environ.get("VISAGE_TOKEN", "")
        self.timeout_s = const.CLIENT_REQUEST_TIMEOUT_S if timeout_s is None else timeout_s
        self._mail: dict[str, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._pongs: collections.deque[Reply] = collections.deque()
        self._tcp = transport == "tcp"
        self._sock: socket.socket | None = None  # None: the TCP connection is lost (reconnects on send)
        self._decoder = SlipDecoder(const.MAX_TCP_FRAME_BYTES)
        self._frames: collections.deque[bytes] = collections.deque()
        if self._tcp:
            if address.tcp_port is None:
                raise ValueError("transport='tcp' needs a daemon address with a tcp_port")
            self._connect()
        elif transport == "udp":
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.bind((_local_bind_host(address.host), 0))
        else:
            raise ValueError(f"transport must be 'udp' or 'tcp', got {transport!r}")

    # -- context manager -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> VisageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wire ------------------------------------------------------------------------------------------

    def _connect(self) -> None:
        assert self.address.tcp_port is not None
        self._sock = socket.create_connection((self.address.host, self.address.tcp_port), self.timeout_s)
        self._decoder = SlipDecoder(const.MAX_TCP_FRAME_BYTES)
        self._frames.clear()

    def _disconnect(self) -> None:
        """Drop a TCP connection the daemon closed (it stopped or restarts); a later send reconnects."""
        self.close()

    def _send(self, request: Request) -> None:
        data = encode_request(request)
        if not self._tcp:
            assert self._sock is not None, "client closed"
            self._sock.sendto(data, (self.address.host, self.address.port))
            return
        try:
            if self._sock is None:
                self._connect()
            assert self._sock is not None
            self._sock.settimeout(self.timeout_s)
            self._sock.sendall(encode_frame(data))
        except OSError:
            self._disconnect()  # like a lost datagram: the caller resends until its deadline

    def _receive(self, timeout_s: float) -> Reply | None:
        """Next reply from the socket within ``timeout_s``, or None."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            if self._tcp and self._frames:
                data = self._frames.popleft()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self._sock is None:  # TCP connection lost: nothing arrives before a send reconnects
                    time.sleep(remaining)
                    return None
                self._sock.settimeout(remaining)
                try:
                    data = self._sock.recv(const.UDP_RECV_BYTES)
                except TimeoutError:
                    return None
                except OSError:
                    if self._tcp:
                        self._disconnect()
                    continue  # UDP: ICMP port unreachable from an earlier send (daemon restarting)
                if self._tcp:
                    if not data:
                        self._disconnect()
                        continue
                    for frame in self._decoder.feed(data):
                        if isinstance(frame, bytes):
                            self._frames.append(frame)
                    continue
            try:
                return decode_reply(data)
            except RequestError:
                continue  # not ours / garbage: ignore

    def _file(self, reply: Reply) -> None:
        job_id = getattr(reply, "job_id", "")
        if isinstance(reply, Pong) or job_id == "":
            self._pongs.append(reply)
        else:
            self._mail[job_id].append(reply)

    def _next_for(self, job_id: str | None, timeout_s: float) -> Reply | None:
        """Next reply about ``job_id`` (None = pong or an unattributed error), filing the others."""
        box = self._pongs if job_id is None else self._mail[job_id]
        deadline = time.monotonic() + timeout_s
        while not box:
            reply = self._receive(deadline - time.monotonic())
            if reply is None:
                return None
            self._file(reply)
        return box.popleft()

    def _request(self, request: Request, job_id: str | None) -> Reply:
        """Send, resending every CLIENT_RETRY_S, until a reply about ``job_id`` arrives."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            self._send(request)
            wait = min(const.CLIENT_RETRY_S, deadline - time.monotonic())
            reply = self._next_for(job_id, max(0.0, wait))
            if reply is not None:
                return reply
            if time.monotonic() >= deadline:
                raise DaemonUnavailable(f"no reply from {self.address.host}:{self.address.port}")

    # -- API -------------------------------------------------------------------------------------------

    def ping(self) -> Pong:
        """Ask the daemon for its protocol version, model and queue length."""
        reply = self._request(Ping(const.PROTOCOL_VERSION, 0, self.token), None)
        if isinstance(reply, Error):
            raise JobFailed(reply.code, reply.message)
        assert isinstance(reply, Pong)
        return reply

    def submit(
        self,
        media: str | Path,
        *,
        yaw: float,
        pitch: float,
        start: float = 0.0,
        end: float | None = None,
        output: str | Path | None = None,
        output_dir: str | Path | None = None,
        guidance: float = const.DEFAULT_GUIDANCE,
        seed: int | None = None,
        sample_rate: int = const.DEFAULT_SAMPLE_RATE_HZ,
        direction_curve: str | Path | None = None,
        use_cache: bool = True,
        overwrite: bool = False,
        extra: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> str:
        """Queue a job and return its id once the daemon accepted it.

        Paths are made absolute here (the daemon requires absolute paths).

        Raises:
            JobFailed: the request was refused (bad path, range, token, ...).
            DaemonUnavailable: no answer.
        """

        def absolute(p: str | Path | None, name: str) -> str | None:
            if p is None:
                return None
            try:  # refused here what the daemon would refuse: it could not even be sent
                return check_path_shape(str(Path(p).absolute()), name)
            except RequestError as exc:
                raise JobFailed(exc.code.value, exc.message) from None

        options = GenerateOptions(
            guidance=guidance,
            seed=seed,
            sample_rate=sample_rate,
            direction_curve=absolute(direction_curve, "option 'direction_curve'"),
            output=absolute(output, "option 'output'"),
            output_dir=absolute(output_dir, "option 'output_dir'"),
            use_cache=use_cache,
            overwrite=overwrite,
            extra=extra or {},
        )
        job_id = job_id or uuid.uuid4().hex
        request = Generate(
            job_id, absolute(media, "media") or "", start, end, yaw, pitch, options, 0, self.token
        )
        reply = self._request(request, job_id)
        if isinstance(reply, Error):
            raise JobFailed(reply.code, reply.message, job_id)
        if not isinstance(reply, Accepted):
            self._mail[job_id].appendleft(reply)  # it is already running or done: keep that for wait()
        return job_id

    def wait(
        self,
        job_id: str,
        *,
        progress: Callable[[Progress], None] | None = None,
        timeout_s: float | None = None,
    ) -> Done:
        """Block until the job is done; call ``progress`` on each progress event.

        Raises:
            JobFailed: the job failed or was cancelled.
            TimeoutError: ``timeout_s`` passed (the job keeps running; wait again or cancel).
            DaemonUnavailable: the daemon stopped answering status requests for ``self.timeout_s``.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        silent_since = time.monotonic()
        while True:
            poll_at = silent_since + const.CLIENT_STATUS_POLL_S
            limit = poll_at if deadline is None else min(poll_at, deadline)
            reply = self._next_for(job_id, max(0.0, limit - time.monotonic()))
            now = time.monotonic()
            if reply is None:
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"job {job_id} not finished after {timeout_s} s")
                reply = self._request(Status(job_id, 0, self.token), job_id)
            silent_since = time.monotonic()
            if isinstance(reply, Done):
                return reply
            if isinstance(reply, Error):
                raise JobFailed(reply.code, reply.message, job_id)
            if isinstance(reply, Progress) and progress is not None:
                progress(reply)

    def generate(self, media: str | Path, **kwargs: Any) -> Done:
        """`submit` then `wait` (``progress`` and ``timeout_s`` go to `wait`)."""
        progress = kwargs.pop("progress", None)
        timeout_s = kwargs.pop("timeout_s", None)
        return self.wait(self.submit(media, **kwargs), progress=progress, timeout_s=timeout_s)

    def status(self, job_id: str) -> Reply:
        """The job's current event: accepted (waiting), progress (running), done or error.

        Events of this job that arrived earlier and were not consumed by `wait` come first.
        """
        return self._request(Status(job_id, 0, self.token), job_id)

    def cancel(self, job_id: str) -> Reply:
        """Cancel; returns the job's event after the request (an `error cancelled` once it stopped)."""
        return self._request(Cancel(job_id, 0, self.token), job_id)
