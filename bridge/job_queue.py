"""`JobQueue`: the thread-safe meeting point of request handlers and the worker.

Handlers submit, cancel and query; the worker prepares, takes batches and finishes jobs. Every state
change goes through `JobStore` (so it survives a crash) under one lock, and every event a job produces
(accepted, progress, exactly one done/error) is handed to the `EventSink` under that lock too, so a
client never sees `progress` before `accepted`. Watchers (the web page) get every event too, and the
state changes that send no OSC event (accepted -> queued, running -> queued). No sockets and no engine
here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol

from . import const
from .errors import ErrorCode, RequestError
from .job_store import DuplicateJob, JobStore
from .jobs import PENDING_STATES, Job, JobState, select_batch
from .osc_protocol import Accepted, Done, Error, Progress, Reply

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where job events go (the daemon's route table)."""

    def bind(self, job_id: str, route: object) -> None:
        """Send ``job_id``'s future events to ``route``."""

    def emit(self, job: Job, reply: Reply) -> None:
        """Deliver one event of ``job``; must not raise and should not block for long."""


JobWatcher = Callable[[Job, Reply | None], None]
"""Sees every change of a job: with its OSC event, or None for a change that sends none (called under the
queue's lock: it must return quickly and not raise)."""


class JobQueue:
    """See the module docstring.

    Args:
        store: persistence.
        events: the event sink.
        max_pending: most non-terminal jobs; more get `queue_full`.
    """

    def __init__(self, store: JobStore, events: EventSink, max_pending: int = const.MAX_PENDING_JOBS) -> None:
        self._store = store
        self._events = events
        self._max_pending = max_pending
        self._cond = threading.Condition(threading.RLock())
        self._work_hint = True  # something may be ready for the worker
        self._cancel_requested: set[str] = set()
        self._progress: dict[str, tuple[float, str, float]] = {}  # running job -> (fraction, stage, sent at)
        self._watchers: list[JobWatcher] = []

    def watch(self, watcher: JobWatcher) -> None:
        """Hand every later change of every job to ``watcher`` too."""
        with self._cond:
            self._watchers.append(watcher)

    def unwatch(self, watcher: JobWatcher) -> None:
        with self._cond:
            self._watchers.remove(watcher)

    def _emit(self, job: Job, reply: Reply) -> None:
        self._events.emit(job, reply)
        self._notify(job, reply)

    def _notify(self, job: Job, reply: Reply | None) -> None:
        for watcher in self._watchers:
            try:
                watcher(job, reply)
            except Exception:  # a watcher's bug must not fail the job or the request
                log.exception("job watcher failed on %s", job.id)

    def progress_of(self, job_id: str) -> tuple[float, str] | None:
        """(fraction, stage) of a running job, else None."""
        with self._cond:
            found = self._progress.get(job_id)
            return None if found is None else found[:2]

    # -- request side ------------------------------------------------------------------------------

    def submit(self, job: Job, route: object) -> tuple[Job, bool]:
        """Persist a new job, bind its route and emit `accepted`.

        Returns:
            (job, created): created is False when the id existed with the same fingerprint (an
            idempotent retry); the route is re-bound and nothing is emitted.

        Raises:
            RequestError: queue_full, or duplicate_id when the id exists with other parameters.
        """
        with self._cond:
            if self._store.count(PENDING_STATES) >= self._max_pending:
                raise RequestError(ErrorCode.QUEUE_FULL, f"{self._max_pending} jobs are pending", job.id)
            try:
                stored = self._store.insert(job)
            except DuplicateJob as dup:
                if dup.existing.fingerprint != job.fingerprint:
                    raise RequestError(
                        ErrorCode.DUPLICATE_ID, f"job id {job.id!r} is taken by a different request", job.id
                    ) from None
                self._store.set_reply_route(job.id, job.reply_host, job.reply_port)
                self._events.bind(job.id, route)
                return dup.existing, False
            self._events.bind(job.id, route)
            self._emit(stored, Accepted(stored.id, self._store.queue_ahead(stored)))
            self._work_hint = True
            self._cond.notify_all()
            return stored, True

    def exists(self, job_id: str) -> bool:
        """Whether a job with this id is known (in any state)."""
        return self._store.get(job_id) is not None

    def get(self, job_id: str) -> Job:
        """The job, or `unknown_job`."""
        job = self._store.get(job_id)
        if job is None:
            raise RequestError(ErrorCode.UNKNOWN_JOB, f"no job {job_id!r}", job_id)
        return job

    def latest_event(self, job_id: str) -> Reply:
        """The event that describes the job now (what `status` replies)."""
        with self._cond:
            return self._event_for(self.get(job_id))

    def _event_for(self, job: Job) -> Reply:
        if job.state in (JobState.ACCEPTED, JobState.QUEUED):
            return Accepted(job.id, self._store.queue_ahead(job))
        if job.state is JobState.RUNNING:
            fraction, stage, _ = self._progress.get(job.id, (0.0, "running", 0.0))
            if job.id in self._cancel_requested:
                stage = "cancelling"
            return Progress(job.id, fraction, stage)
        if job.state is JobState.DONE:
            return Done(job.id, job.output or "", job.metadata or "", job.cached)
        return Error(job.id, job.error_code or ErrorCode.INTERNAL.value, job.error_message or "")

    def cancel(self, job_id: str) -> tuple[Reply, bool]:
        """Cancel a job: at once if it waits, between decoder steps if it runs.

        Returns:
            (reply, emitted): the job's event after the request; emitted is True when that event was
            also sent to the job's own route (a waiting job's terminal `error cancelled`).
        """
        with self._cond:
            job = self.get(job_id)
            if job.state in (JobState.ACCEPTED, JobState.QUEUED):
                self._finish(
                    job,
                    JobState.CANCELLED,
                    error_code=ErrorCode.CANCELLED.value,
                    error_message="cancelled by request",
                )
                return self.latest_event(job_id), True
            if job.state is JobState.RUNNING:
                self._cancel_requested.add(job_id)
            return self._event_for(job), False

    def counts(self) -> tuple[int, int]:
        """(waiting, running) job counts."""
        waiting = self._store.count([JobState.ACCEPTED, JobState.QUEUED])
        return waiting, self._store.count([JobState.RUNNING])

    # -- worker side -------------------------------------------------------------------------------

    def wait_for_work(self, timeout_s: float) -> None:
        """Block until something may be ready (or ``timeout_s`` passes)."""
        with self._cond:
            if not self._work_hint:
                self._cond.wait(timeout_s)
            self._work_hint = False

    def wake(self) -> None:
        with self._cond:
            self._work_hint = True
            self._cond.notify_all()

    def next_to_prepare(self) -> Job | None:
        """The oldest job in ``accepted``."""
        jobs = self._store.in_states([JobState.ACCEPTED], limit=1)
        return jobs[0] if jobs else None

    def mark_queued(self, job_id: str, cache_key: str | None) -> None:
        """accepted -> queued (no-op if it was cancelled meanwhile)."""
        with self._cond:
            job = self._store.get(job_id)
            if job is not None and job.state is JobState.ACCEPTED:
                self._notify(self._store.transition(job_id, JobState.QUEUED, cache_key=cache_key), None)
                self._work_hint = True

    def take_batch(self, key: Callable[[Job], Hashable], max_batch: int) -> list[Job]:
        """Move the next batch (see `jobs.select_batch`) to ``running`` and return it."""
        with self._cond:
            queued = self._store.in_states([JobState.QUEUED], limit=const.BATCH_SCAN_JOBS)
            batch = select_batch(queued, key, max_batch)
            running = []
            for job in batch:
                moved = self._store.transition(
                    job.id, JobState.RUNNING, attempts=job.attempts + 1, batch_size=len(batch)
                )
                self._progress[job.id] = (0.0, "running", 0.0)
                running.append(moved)
                self._emit(moved, Progress(job.id, 0.0, "running"))
            return running

    def record_batch(self, job_ids: list[str]) -> None:
        """Note the jobs that share one engine call (after cache hits and twins were taken out)."""
        with self._cond:
            self._store.set_batch_size(job_ids, len(job_ids))

    def report_progress(self, job_id: str, fraction: float, stage: str) -> None:
        """Record progress; emit it unless the last event of this job is too recent (same stage)."""
        with self._cond:
            previous = self._progress.get(job_id)
            if previous is None:
                return  # not running (any more)
            fraction = min(1.0, max(previous[0], float(fraction)))
            now = time.monotonic()
            due = (
                stage != previous[1] or fraction >= 1.0 or now - previous[2] >= const.PROGRESS_MIN_INTERVAL_S
            )
            self._progress[job_id] = (fraction, stage, now if due else previous[2])
            if due:
                job = self._store.get(job_id)
                if job is not None:
                    self._emit(job, Progress(job_id, fraction, stage))

    def is_cancel_requested(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._cancel_requested

    def finish_done(self, job_id: str, output: Path, metadata: Path, *, cached: bool) -> None:
        """Mark done and emit `done` (exactly once: a second finish is logged and ignored)."""
        with self._cond:
            job = self._store.get(job_id)
            if job is not None:
                self._finish(job, JobState.DONE, output=str(output), metadata=str(metadata), cached=cached)

    def finish_error(self, job_id: str, code: str, message: str) -> None:
        """Mark failed (or cancelled, for code "cancelled") and emit `error`."""
        with self._cond:
            job = self._store.get(job_id)
            if job is not None:
                state = JobState.CANCELLED if code == ErrorCode.CANCELLED.value else JobState.ERROR
                self._finish(job, state, error_code=code, error_message=message)

    def requeue(self, job_id: str) -> None:
        """running -> queued (interrupted by shutdown; it runs again on the next start)."""
        with self._cond:
            self._progress.pop(job_id, None)
            self._notify(self._store.transition(job_id, JobState.QUEUED), None)
            self._work_hint = True

    def _finish(self, job: Job, state: JobState, **changes: object) -> None:
        if job.state.terminal:
            log.error(
                "job %s finished twice (%s, then %s); keeping the first", job.id, job.state.value, state.value
            )
            return
        finished = self._store.transition(job.id, state, **changes)
        self._progress.pop(job.id, None)
        self._cancel_requested.discard(job.id)
        log.info(
            "job %s %s%s", job.id, state.value, f" ({finished.error_code})" if finished.error_code else ""
        )
        self._emit(finished, self._event_for(finished))
