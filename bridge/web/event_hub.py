"""`EventHub`: job changes from the queue's threads -> server-sent events on every open ``/api/events``.

The queue calls `on_job_change` under its lock, from whichever thread changed the job; the hub only
hands the change to the event loop (``call_soon_threadsafe``) and returns. On the loop each change
becomes an ``event: job`` with the JobView; progress of one job is passed on at most every
``WEB_PROGRESS_MIN_INTERVAL_S`` (a new stage always), and a changed group sends one ``event: group``
per ``_GROUP_DELAY_S`` however many of its jobs moved. A stream that falls ``_MAX_BACKLOG`` events
behind is closed (the page reconnects and reloads the list). At most `MAX_STREAMS` are open at once:
each holds a connection and a file descriptor of the daemon, which also writes results.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from .. import const
from ..jobs import Job, JobState
from ..osc_protocol import Progress, Reply

log = logging.getLogger(__name__)

_GROUP_DELAY_S = 0.3
_MAX_BACKLOG = 1000
MAX_STREAMS = 64  # a page keeps one open; a closed one is noticed at its next event or heartbeat

JobViewer = Callable[[Job, "Reply | None"], dict[str, object]]
GroupViewer = Callable[[str], dict[str, object]]


def sse_event(name: str, data: dict[str, object]) -> bytes:
    """One server-sent event (JSON on one ``data:`` line)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventHub:
    """See the module docstring. Everything but `on_job_change` runs on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, job_view: JobViewer, group_view: GroupViewer) -> None:
        self._loop = loop
        self._job_view = job_view
        self._group_view = group_view
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._last_progress: dict[str, tuple[float, str]] = {}  # job -> (sent at, stage)
        self._groups_due: set[str] = set()
        self._closed = False

    # -- any thread ----------------------------------------------------------------------------------

    def on_job_change(self, job: Job, reply: Reply | None) -> None:
        """A `job_queue.JobWatcher`: pass the change to the loop."""
        try:
            self._loop.call_soon_threadsafe(self.job_changed, job, reply)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass

    # -- loop ------------------------------------------------------------------------------------------

    def job_changed(self, job: Job, reply: Reply | None = None) -> None:
        if self._closed:
            return
        if isinstance(reply, Progress) and job.state is JobState.RUNNING:
            now = time.monotonic()
            sent_at, stage = self._last_progress.get(job.id, (-1e9, ""))
            if stage == reply.stage and now - sent_at < const.WEB_PROGRESS_MIN_INTERVAL_S:
                return
            self._last_progress[job.id] = (now, reply.stage)
        elif job.state.terminal:
            self._last_progress.pop(job.id, None)
        self.publish(sse_event("job", self._job_view(job, reply)))
        if job.group is not None and job.group not in self._groups_due:
            self._groups_due.add(job.group)
            self._loop.call_later(_GROUP_DELAY_S, self._send_group, job.group)

    def _send_group(self, group: str) -> None:
        self._groups_due.discard(group)
        if not self._closed:
            self.publish(sse_event("group", self._group_view(group)))

    def publish(self, event: bytes) -> None:
        for stream in list(self._streams):
            try:
                stream.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("an event stream fell %d events behind; closing it", _MAX_BACKLOG)
                self._streams.discard(stream)
                stream.get_nowait()
                stream.put_nowait(None)

    @property
    def full(self) -> bool:
        """Whether `MAX_STREAMS` streams are open."""
        return len(self._streams) >= MAX_STREAMS

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        """A new stream's queue of events; None ends the stream."""
        stream: asyncio.Queue[bytes | None] = asyncio.Queue(_MAX_BACKLOG)
        if self._closed:
            stream.put_nowait(None)
        else:
            self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: asyncio.Queue[bytes | None]) -> None:
        self._streams.discard(stream)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed = True
        for stream in list(self._streams):
            self.publish_end(stream)
        self._streams.clear()

    @staticmethod
    def publish_end(stream: asyncio.Queue[bytes | None]) -> None:
        while True:
            try:
                stream.put_nowait(None)
                return
            except asyncio.QueueFull:
                stream.get_nowait()
