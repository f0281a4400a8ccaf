"""`Worker`: the one thread that prepares jobs and runs batches through the engine.

Preparing an accepted job hashes its media (memoised) and looks up the result cache: a hit is copied
to the job's output and finished as done without touching the engine. Batches are chosen by
`jobs.select_batch` with the engine's batch key; just before a batch runs the cache is checked again
(an identical job may have finished meanwhile), and identical jobs inside one batch are computed once.
On stop the running batch may finish for ``GRACEFUL_FINISH_S``; after that it is cancelled through the
engine's ``cancelled`` callback and its jobs go back to ``queued`` (not ``cancelled``), so the next
start runs them again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import visage.model.files.result_files as rf
from visage.model.files.output_files import atomic_copy, atomic_write_bytes, remove_stale_parts

from . import const
from .engine import Engine, JobDone, JobFailed, JobOutcome
from .errors import ErrorCode
from .job_queue import JobQueue
from .jobs import Job
from .result_cache import CachedResult, ResultCache, cache_key

log = logging.getLogger(__name__)


def _copy_metadata(cached: CachedResult, output: Path, metadata: Path) -> None:
    """Copy a cached result's sidecar (and the binaural preview it names) for a new output path.

    The sidecar names its files relative to its own folder (``file``, ``preview``); the copy names the
    new ones, so a host never places another job's preview. Copies replace existing files: the daemon
    refused existing outputs when it accepted the job.
    """
    try:
        document = json.loads(cached.metadata.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict) or not ({rf.FILE_KEY, rf.PREVIEW_KEY} & document.keys()):
        atomic_copy(cached.metadata, metadata, overwrite=True)  # nothing in it names a file: copy it as is
        return
    if isinstance(document.get(rf.FILE_KEY), str):
        document[rf.FILE_KEY] = output.name
    preview = document.get(rf.PREVIEW_KEY)
    if isinstance(preview, str) and (cached.metadata.parent / preview).is_file():
        copied = rf.preview_path(output)
        atomic_copy(cached.metadata.parent / preview, copied, overwrite=True)
        _copy_preview_sidecar(rf.sidecar_path(cached.metadata.parent / preview), copied, output)
        document[rf.PREVIEW_KEY] = copied.name
    else:
        document.pop(rf.PREVIEW_KEY, None)
    _write_json(metadata, document)


def _copy_preview_sidecar(cached: Path, preview: Path, output: Path) -> None:
    """The preview's own sidecar, naming the copied preview and the result it was rendered from."""
    try:
        document = json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no readable sidecar: the preview alone is still worth having
    if isinstance(document, dict):
        document.update({rf.FILE_KEY: preview.name, rf.SOURCE_KEY: str(output.resolve())})
        _write_json(rf.sidecar_path(preview), document)


def _write_json(path: Path, document: dict[str, object]) -> None:
    """A rewritten sidecar, in the layout the model writes (indented UTF-8, final newline), atomically."""
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write_bytes(path, data, overwrite=True)


class Worker:
    """Runs jobs from ``queue`` on ``engine``; see the module docstring.

    Args:
        queue: the job queue.
        cache: the result cache.
        engine: the loaded model.
        max_batch: most jobs per engine call.
    """

    def __init__(self, queue: JobQueue, cache: ResultCache, engine: Engine, max_batch: int) -> None:
        self._queue = queue
        self._cache = cache
        self._engine = engine
        self._max_batch = max_batch
        self._stopping = threading.Event()
        self._abort = threading.Event()  # cancel the running batch for shutdown
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # daemon=True only so that an engine stuck in a GPU call cannot keep a stopping process alive;
        # stop() joins it in every normal case.
        self._thread = threading.Thread(target=self._run, name="visage-worker", daemon=True)
        self._thread.start()

    def stop(self, graceful_s: float | None = None, cancel_grace_s: float | None = None) -> bool:
        """Stop after the running batch (or cancel and re-queue it); True if the thread ended."""
        if self._thread is None:
            return True
        graceful_s = const.GRACEFUL_FINISH_S if graceful_s is None else graceful_s
        cancel_grace_s = const.CANCEL_GRACE_S if cancel_grace_s is None else cancel_grace_s
        self._stopping.set()
        self._queue.wake()
        self._thread.join(graceful_s)
        if self._thread.is_alive():
            log.warning(
                "running batch did not finish in %.1f s; cancelling it (its jobs will be re-queued)",
                graceful_s,
            )
            self._abort.set()
            self._thread.join(cancel_grace_s)
        if self._thread.is_alive():
            log.error(
                "engine did not return %.1f s after cancel; its jobs resume on the next start", cancel_grace_s
            )
            return False
        self._thread = None
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._queue.next_to_prepare()
                if job is not None:
                    self._guarded(job, self._prepare, job)
                    continue
                batch = self._queue.take_batch(self._batch_key, self._max_batch)
                if batch:
                    self._run_batch(batch)
                    continue
            except Exception:  # a bug here must not kill the only worker
                log.exception("worker loop error")
            self._queue.wait_for_work(const.WORKER_IDLE_WAIT_S)

    def _batch_key(self, job: Job) -> Hashable:
        try:
            return self._engine.batch_key(job.spec)
        except Exception:
            log.exception("engine.batch_key failed for job %s; it runs alone", job.id)
            return ("unbatchable", job.id)

    def _prepare(self, job: Job) -> None:
        spec = job.spec
        if not spec.media.is_file():
            self._queue.finish_error(
                job.id, ErrorCode.MEDIA_NOT_FOUND.value, f"media {spec.media} disappeared"
            )
            return
        key = None
        if job.use_cache:
            try:
                curve = None if spec.direction_curve is None else self._cache.digest(spec.direction_curve)
                key = cache_key(spec, self._cache.digest(spec.media), curve, self._engine.model_id)
            except OSError as exc:
                self._queue.finish_error(job.id, ErrorCode.MEDIA_NOT_FOUND.value, f"cannot read input: {exc}")
                return
            hit = self._cache.lookup(key)
            if hit is not None and self._deliver_cached(job, hit):
                return
        self._queue.mark_queued(job.id, key)

    def _deliver_cached(self, job: Job, hit: CachedResult) -> bool:
        output = job.spec.output
        try:
            if output == hit.output:
                metadata = hit.metadata
            else:
                metadata = rf.sidecar_path(output)
                _copy_metadata(hit, output, metadata)
                atomic_copy(hit.output, output, overwrite=True)
        except OSError as exc:
            log.warning("cache hit for job %s could not be copied (%s); recomputing", job.id, exc)
            return False
        log.info("job %s answered from the result cache (%s)", job.id, hit.output)
        self._queue.finish_done(job.id, output, metadata, cached=True)
        return True

    def _run_batch(self, taken: Sequence[Job]) -> None:
        batch: list[Job] = []
        twins: list[tuple[Job, Job]] = []  # (job, the identical job of this batch that computes it)
        leaders: dict[str, Job] = {}
        for job in taken:
            key = job.cache_key if job.use_cache else None
            if key is not None:
                hit = self._cache.lookup(
                    key
                )  # an identical job may have finished since this one was prepared
                if hit is not None and self._deliver_cached(job, hit):
                    continue
                if key in leaders:
                    twins.append((job, leaders[key]))
                    continue
                leaders[key] = job
            remove_stale_parts(job.spec.output)
            batch.append(job)
        if batch:
            self._run_engine(batch)
        for job, leader in twins:
            self._guarded(job, self._finish_twin, job, leader)

    def _finish_twin(self, job: Job, leader: Job) -> None:
        if self._queue.is_cancel_requested(job.id):
            self._queue.finish_error(job.id, ErrorCode.CANCELLED.value, "cancelled")
            return
        hit = None if leader.cache_key is None else self._cache.lookup(leader.cache_key)
        if hit is None or not self._deliver_cached(job, hit):
            self._queue.requeue(job.id)  # the leader failed or was cancelled: this one runs on its own

    def _run_engine(self, batch: Sequence[Job]) -> None:
        ids = [job.id for job in batch]
        self._queue.record_batch(ids)
        log.info("batch of %d: %s", len(batch), " ".join(ids))

        def progress(i: int, fraction: float, stage: str) -> None:
            if 0 <= i < len(ids):
                self._queue.report_progress(ids[i], fraction, stage)

        answered: set[int] = set()  # jobs cancelled by their client and already answered

        def cancelled(i: int) -> bool:
            if i in answered:
                return True
            if 0 <= i < len(ids) and self._queue.is_cancel_requested(ids[i]):
                # The engine stops this job now (its contract): answer the client at once instead of
                # when the rest of the shared batch ends.
                answered.add(i)
                self._queue.finish_error(ids[i], ErrorCode.CANCELLED.value, "cancelled")
                return True
            return self._abort.is_set()

        try:
            outcomes: Sequence[JobOutcome] = self._engine.run_batch(
                [job.spec for job in batch], progress, cancelled
            )
            if len(outcomes) != len(batch):
                raise RuntimeError(f"engine returned {len(outcomes)} outcomes for {len(batch)} jobs")
        except Exception as exc:
            log.exception("engine failed on a batch of %d", len(batch))
            outcomes = [JobFailed(ErrorCode.ENGINE_ERROR.value, f"{type(exc).__name__}: {exc}")] * len(batch)
        for i, (job, outcome) in enumerate(zip(batch, outcomes, strict=True)):
            if i in answered:
                if isinstance(outcome, JobDone):  # the engine broke its contract; the files stay
                    log.warning("job %s was cancelled but the engine still wrote %s", job.id, outcome.output)
                continue
            self._guarded(job, self._record, job, outcome)

    def _guarded(self, job: Job, step: Callable[..., None], *args: object) -> None:
        """Run one step for ``job``; an unexpected exception fails that job (``internal``), not the worker."""
        try:
            step(*args)
        except Exception as exc:
            log.exception("job %s: unexpected error", job.id)
            self._queue.finish_error(job.id, ErrorCode.INTERNAL.value, f"{type(exc).__name__}: {exc}")

    def _record(self, job: Job, outcome: JobOutcome) -> None:
        if isinstance(outcome, JobDone):
            if not Path(outcome.output).is_file():
                self._queue.finish_error(
                    job.id, ErrorCode.ENGINE_ERROR.value, "engine reported no output file"
                )
                return
            if job.use_cache and job.cache_key is not None:
                self._cache.store(job.cache_key, Path(outcome.output), Path(outcome.metadata))
            self._queue.finish_done(job.id, Path(outcome.output), Path(outcome.metadata), cached=False)
            return
        user_cancel = self._queue.is_cancel_requested(job.id)
        if outcome.code == ErrorCode.CANCELLED.value and self._abort.is_set() and not user_cancel:
            log.info("job %s interrupted by shutdown; re-queued", job.id)
            self._queue.requeue(job.id)
            return
        self._queue.finish_error(job.id, outcome.code, outcome.message)
