"""The hosts' side of the daemon: finding it, submitting a job, following it without freezing the host.

The protocol client is ``visage.bridge.client`` (python-osc, no torch). Hosts reach it in one of two ways:

* Resolve and REAPER scripts run in the host's own Python with this project's environment added to
  ``sys.path`` (``visage hosts install`` writes its site-packages folders into the script), so the
  installed ``visage.bridge.client`` is imported.
* The Blender extension cannot import this repository's package: at build time ``install.py`` copies the
  client and the few pure modules it imports into the extension as ``vendor/visage_bridge/`` and bundles
  python-osc as a wheel. `bridge` prefers that vendored copy when it exists.

A `HostJob` submits synchronously (a running daemon answers in milliseconds, so refusals such as
``path_not_allowed`` reach the user as an immediate error) and is then followed either by a worker
thread (Blender: the host's timer only drains a queue) or by short polls from the host's main loop
(REAPER's ``defer``). Both feed a `job_state.JobTracker`.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from . import job_state

APP_NAME = "visage"  # the daemon's state folder name (platformdirs user data dir)
VENDORED_BRIDGE = "vendor.visage_bridge"  # package of the client copy inside the Blender extension
SUBMIT_TIMEOUT_S = 2.0  # a live daemon answers in ms; a dead one costs the host this long, once
PING_TIMEOUT_S = 1.0
DISCOVERY_TIMEOUT_S = 1.0  # ZeroConf browse, only where zeroconf is importable
WAIT_SLICE_S = 0.2  # worker thread: longest blocking wait before checking for a cancel request
POLL_SLICE_S = 0.005  # polled mode (REAPER defer): socket wait per host tick
STATUS_POLL_S = 2.0  # ask for the job's status after this long without any event (lost datagrams)
CANCEL_GRACE_S = 10.0  # after sending cancel, stop waiting for the daemon's confirmation after this
DAEMON_UNAVAILABLE = "daemon_unavailable"  # error code for "no answer" (not a daemon code)
INTERNAL = "internal"


def bridge() -> ModuleType:
    """The bridge client module: the copy vendored into the Blender extension, else visage.bridge.client."""
    parent = (__package__ or "").rpartition(".")[0]
    if parent:
        vendored = f"{parent}.{VENDORED_BRIDGE}"
        try:
            return importlib.import_module(f"{vendored}.client")
        except ModuleNotFoundError as error:
            if not (error.name and f"{vendored}.client".startswith(error.name)):
                raise  # the vendored copy exists but misses a dependency (python-osc): say so
    return importlib.import_module("visage.bridge.client")


def default_state_dir() -> Path:
    """The daemon's default state folder (where its endpoint file lives), with or without platformdirs.

    Same rule as platformdirs' ``user_data_dir("visage", appauthor=False)``.
    """
    try:
        import platformdirs
    except ImportError:
        pass
    else:
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (hosts must not call out to other machines unasked)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def locate_daemon(
    spec: str = "auto", *, state_dir: Path | None = None, warn: Callable[[str], None] | None = None
) -> Any:
    """Where the daemon is: ``"HOST:PORT"`` as given, or ``"auto"``.

    ``auto`` reads the local daemon's endpoint file, then browses ZeroConf on loopback where the
    ``zeroconf`` package and the bridge's discovery module import (not inside Blender), then falls back
    to 127.0.0.1:17730. An editor's Python may find a ``zeroconf`` it cannot import (a compiled package
    installed for another Python version): then ``warn`` is told why and the fallback is used.

    Returns:
        The bridge's ``DaemonAddress``.

    Raises:
        ValueError: ``spec`` is neither ``auto`` nor ``HOST:PORT``.
    """
    client = bridge()
    spec = (spec or "auto").strip()
    folder = state_dir if state_dir is not None else default_state_dir()
    found = client.find_daemon(spec, state_dir=folder, timeout_s=DISCOVERY_TIMEOUT_S, zeroconf=False)
    if found.source != "default":  # given explicitly, or a local daemon's endpoint file
        return found
    problem = _zeroconf_problem(f"{client.__name__.rpartition('.')[0]}.discovery")
    if problem is None:
        return client.find_daemon(spec, state_dir=folder, timeout_s=DISCOVERY_TIMEOUT_S, zeroconf=True)
    if problem and warn is not None:
        warn(
            f"ZeroConf discovery does not load in this Python {sys.version_info.major}."
            f"{sys.version_info.minor} ({problem}); no endpoint file in {folder}, so trying "
            f"{found.host}:{found.port}"
        )
    return found


def _zeroconf_problem(discovery: str) -> str | None:
    """None when ZeroConf browsing can be used; "" when it is not installed; else why it does not import.

    ``find_spec`` only finds a package: importing it is what fails when it was built for another Python.
    """
    if importlib.util.find_spec("zeroconf") is None or importlib.util.find_spec(discovery) is None:
        return ""
    try:
        importlib.import_module("zeroconf")
        importlib.import_module(discovery)
    except ImportError as error:
        return f"{type(error).__name__}: {error}"
    return None


def new_job_id(host: str) -> str:
    """A fresh job id naming the host (``[A-Za-z0-9._-]``, well under the protocol's 64 characters)."""
    safe = "".join(c for c in host if c.isalnum() or c in "._-")[:16] or "host"
    return f"{safe}-{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class JobRequest:
    """One clip to generate, as every host describes it.

    Attributes:
        media: absolute path of the source video.
        start_s, end_s: range in seconds on the media's own timeline.
        yaw_deg, pitch_deg: the direction (for a curve: its mean over the range).
        output: absolute path of the WAV to write (None: the daemon chooses).
        direction_curve: absolute path of a curve file (per-time yaw/pitch), or None.
        guidance: classifier-free guidance (None: the daemon's default).
        seed: sampling seed (None: random).
        label: what the user calls it (strip or item name), for messages.
        equirect: the media is a 360° equirectangular panorama (daemon option ``equirect``), whether
            or not its file says so; the direction is then relative to the panorama's centre column.
    """

    media: str
    start_s: float
    end_s: float | None
    yaw_deg: float
    pitch_deg: float
    output: str | None = None
    direction_curve: str | None = None
    guidance: float | None = None
    seed: int | None = None
    label: str = ""
    equirect: bool = False

    def submit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``VisageClient.submit`` (after the media path)."""
        kwargs: dict[str, Any] = {
            "yaw": float(self.yaw_deg),
            "pitch": float(self.pitch_deg),
            "start": float(self.start_s),
            "end": None if self.end_s is None else float(self.end_s),
            "output": self.output,
            "direction_curve": self.direction_curve,
            "seed": self.seed,
        }
        if self.guidance is not None:
            kwargs["guidance"] = float(self.guidance)
        if self.equirect:
            kwargs["extra"] = {"equirect": True}
        return kwargs


_HINTS = {
    "path_not_allowed": (
        "The daemon may only read and write files under its allowed folders. Restart it with "
        "`visage serve --allow-dir FOLDER` for the folders that hold your media and outputs, or move the "
        "clip there."
    ),
    "media_not_found": "The daemon cannot open the media file; check that it exists on the daemon's machine.",
    "unauthorized": "The daemon requires a token: set VISAGE_TOKEN to the value of its --token.",
    "output_exists": "The output file exists already; choose another output folder or delete it.",
    "bad_range": "The requested range does not fit the media (trimmed past its end?).",
    "bad_output": (
        "The output folder is missing, full or not writable by the daemon, or the output would replace "
        "one of the job's inputs."
    ),
    "queue_full": "The daemon's queue is full; wait for running jobs to finish.",
    "unsupported_video": (
        "ViSAGe reads a 360° video only as a monoscopic equirectangular panorama of the whole sphere, "
        "level (2:1, no pitch or roll in its metadata); stereo and cubemap videos are not supported. "
        "Export one eye as such a panorama, or use a flat video of the camera's view (not marked 360°)."
    ),
}


def describe_error(error: BaseException, address: Any = None) -> str:
    """A message for the user: what went wrong and what to do about it."""
    client = bridge()
    if isinstance(error, client.DaemonUnavailable):
        where = f" at {address.host}:{address.port}" if address is not None else ""
        return (
            f"No ViSAGe daemon is answering{where}. Start it with `visage serve` (on a GPU machine), "
            "or set the daemon address in the settings."
        )
    if isinstance(error, client.JobFailed):
        return describe_failure(error.code, error.message)
    return f"{type(error).__name__}: {error}"


def describe_failure(code: str, message: str) -> str:
    """User message for a daemon error code and its message."""
    if code == job_state.CANCELLED_CODE:
        return "Cancelled."
    hint = _HINTS.get(code)
    return f"{message} ({code}). {hint}" if hint else f"{message} ({code})"


class ConnectionCheck(NamedTuple):
    ok: bool
    message: str


def check_connection(spec: str = "auto", *, token: str | None = None) -> ConnectionCheck:
    """Find the daemon and ping it ("Test connection")."""
    client = bridge()
    try:
        address = locate_daemon(spec)
    except ValueError as error:
        return ConnectionCheck(False, f"Bad daemon address {spec!r}: {error}")
    try:
        with client.VisageClient(address, token=token, timeout_s=PING_TIMEOUT_S) as connection:
            pong = connection.ping()
    except (client.DaemonUnavailable, client.JobFailed, OSError) as error:
        return ConnectionCheck(False, describe_error(error, address))
    found = f" (found via {address.source})" if address.source else ""
    return ConnectionCheck(
        True,
        f"ViSAGe daemon at {address.host}:{address.port}{found}: model {pong.model_id} on {pong.device}, "
        f"{pong.queued} queued, {pong.running} running",
    )


class HostJob:
    """One submitted job, followed without blocking the host.

    Args:
        request: what to generate.
        address: the daemon (`locate_daemon`).
        job_id: the id to use (default: a new one).
        token: the daemon's token, if it has one (default: $VISAGE_TOKEN).
        submit_timeout_s: how long `start` waits for a daemon that does not answer (default
            `SUBMIT_TIMEOUT_S`, read when the job is created).

    Use: ``job.start()`` (raises the bridge's ``JobFailed``/``DaemonUnavailable`` at once if the request
    is refused), then call ``job.poll()`` from the host's main loop until ``job.tracker.finished``;
    ``job.cancel()`` asks the daemon to stop; ``job.close()`` when the host shuts down.
    """

    def __init__(
        self,
        request: JobRequest,
        address: Any,
        *,
        job_id: str | None = None,
        token: str | None = None,
        submit_timeout_s: float | None = None,
    ) -> None:
        self.request = request
        self.address = address
        self.job_id = job_id or new_job_id("host")
        self.token = token
        self.submit_timeout_s = SUBMIT_TIMEOUT_S if submit_timeout_s is None else submit_timeout_s
        self.tracker = job_state.JobTracker(request.label or Path(request.media).name)
        self._events: queue.SimpleQueue[job_state.JobEvent] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._cancel_sent_at: float | None = None
        self._last_event = time.monotonic()
        self._ended = False
        self._client: Any = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, *, threaded: bool = True) -> HostJob:
        """Submit the job; then follow it in a worker thread, or (``threaded=False``) in `poll` calls."""
        module = bridge()
        client = module.VisageClient(self.address, token=self.token, timeout_s=self.submit_timeout_s)
        try:
            client.submit(self.request.media, job_id=self.job_id, **self.request.submit_kwargs())
        except BaseException:
            client.close()
            raise
        self._client = client
        self.tracker.apply(job_state.Accepted(0))
        self._last_event = time.monotonic()
        if threaded:
            self._thread = threading.Thread(target=self._follow, name=f"visage-{self.job_id}", daemon=True)
            self._thread.start()
        return self

    def poll(self) -> job_state.JobTracker:
        """Apply what happened since the last call (in polled mode, also read the socket briefly)."""
        if self._thread is None and self._client is not None and not self._ended:
            self._step(POLL_SLICE_S)
            if self._ended:
                self._close_client()
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return self.tracker
            self.tracker.apply(event)

    def cancel(self) -> None:
        """Ask the daemon to cancel; the job ends as cancelled once it confirms (or stops answering)."""
        if not self.tracker.finished:
            self.tracker.apply(job_state.CancelRequested())
            self._cancel.set()

    def close(self, timeout_s: float = 2.0) -> None:
        """Cancel if still running and release the socket (host shutdown, add-on unregister)."""
        if not self._ended:
            self.cancel()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():  # the daemon is slow to confirm: stop waiting for it
                self._ended = True
                self._thread.join(timeout_s)
        else:
            if not self._ended and self._client is not None:
                self._step(POLL_SLICE_S)  # polled mode: nothing else would send the cancel
            self._close_client()

    @property
    def running_in_thread(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- following -----------------------------------------------------------------------------------

    def _post(self, event: job_state.JobEvent) -> None:
        if isinstance(event, job_state.Finished | job_state.Failed):
            self._ended = True
        self._events.put(event)

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _follow(self) -> None:
        try:
            while not self._ended:
                self._step(WAIT_SLICE_S)
        finally:
            self._close_client()

    def _on_progress(self, progress: Any) -> None:
        self._last_event = time.monotonic()
        self._post(job_state.Progressed(float(progress.fraction), str(progress.stage)))

    def _step(self, slice_s: float) -> None:
        """Wait up to ``slice_s`` for events; send a pending cancel; poll status after a silence."""
        module = bridge()
        client = self._client
        try:
            if self._cancel.is_set() and self._cancel_sent_at is None:
                self._cancel_sent_at = time.monotonic()
                self._handle(client.cancel(self.job_id))
                if self._ended:
                    return
            if self._cancel_sent_at is not None and time.monotonic() - self._cancel_sent_at > CANCEL_GRACE_S:
                self._post(
                    job_state.Failed(job_state.CANCELLED_CODE, "the daemon did not confirm the cancel")
                )
                return
            try:
                done = client.wait(self.job_id, progress=self._on_progress, timeout_s=slice_s)
            except TimeoutError:
                if time.monotonic() - self._last_event >= STATUS_POLL_S:
                    self._last_event = time.monotonic()
                    self._handle(client.status(self.job_id))
                return
            self._handle(done)
        except module.JobFailed as error:
            self._post(job_state.Failed(error.code, error.message))
        except module.DaemonUnavailable as error:
            if self._cancel.is_set():
                self._post(
                    job_state.Failed(job_state.CANCELLED_CODE, "cancelled (the daemon stopped answering)")
                )
            else:
                self._post(job_state.Failed(DAEMON_UNAVAILABLE, describe_error(error, self.address)))
        except Exception as error:  # a bug must end the job visibly, never hang the host's UI
            self._post(job_state.Failed(INTERNAL, f"{type(error).__name__}: {error}"))

    def _handle(self, reply: Any) -> None:
        """Turn a reply (done, error, progress; accepted says nothing new) into an event."""
        module = bridge()
        if isinstance(reply, module.Done):
            self._post(job_state.Finished(str(reply.output), str(reply.metadata), bool(reply.cached)))
        elif isinstance(reply, module.Error):
            self._post(job_state.Failed(str(reply.code), str(reply.message)))
        elif isinstance(reply, module.Progress):
            self._on_progress(reply)
