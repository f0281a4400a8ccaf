"""Jobs without a network: the state machine, SQLite persistence, batching, the result cache,
cancellation and shutdown re-queueing, driven through JobQueue + Worker + FakeEngine."""

from __future__ import annotations

import itertools
import json
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from bridge_fixtures import fast_engine, wait_for, write_media

from visage.bridge.database import StateDatabase
from visage.bridge.engine import GenerateSpec, JobDone, JobFailed, JobOutcome
from visage.bridge.errors import ErrorCode, RequestError
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.job_queue import JobQueue
from visage.bridge.job_store import DuplicateJob, JobStore
from visage.bridge.jobs import InvalidTransition, Job, JobState, check_transition, select_batch
from visage.bridge.osc_protocol import Accepted, Done, Error, Progress, Reply
from visage.bridge.result_cache import ResultCache, cache_key
from visage.bridge.worker import Worker

# ------------------------------------------------------------------------------------------------
# helpers


class RecordingSink:
    """An EventSink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Reply]] = []
        self.routes: dict[str, object] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def bind(self, job_id: str, route: object) -> None:
        self.routes[job_id] = route

    def emit(self, job: Job, reply: Reply) -> None:
        with self._changed:
            self.events.append((job.id, reply))
            self._changed.notify_all()

    def of(self, job_id: str) -> list[Reply]:
        with self._lock:
            return [r for j, r in self.events if j == job_id]

    def terminal(self, job_id: str) -> list[Reply]:
        return [r for r in self.of(job_id) if isinstance(r, (Done, Error))]

    def wait_terminal(self, job_ids: Sequence[str], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                finished = {j for j, r in self.events if isinstance(r, (Done, Error))}
                if finished >= set(job_ids):
                    return
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"unfinished: {set(job_ids) - finished}"
                self._changed.wait(remaining)


_ids = itertools.count()


def make_job(
    media: Path,
    out_dir: Path,
    *,
    yaw: float = 0.0,
    seconds: float = 0.05,
    use_cache: bool = True,
    job_id: str | None = None,
    rate: int = 48_000,
    **extra: object,
) -> Job:
    job_id = job_id or f"job{next(_ids)}"
    spec = GenerateSpec(
        media=media,
        start=0.0,
        end=seconds,
        yaw=yaw,
        pitch=0.0,
        direction_curve=None,
        guidance=2.5,
        seed=1,
        sample_rate=rate,
        output=out_dir / f"{job_id}.wav",
        extra=extra,
    )
    return Job(
        id=job_id,
        seq=0,
        state=JobState.ACCEPTED,
        spec=spec,
        fingerprint=f"{yaw}/{seconds}/{rate}",
        use_cache=use_cache,
    )


class Harness:
    """Store + queue + cache (+ worker) on a temporary database."""

    def __init__(self, root: Path, engine: FakeEngine | None = None, max_batch: int = 4) -> None:
        self.root = root
        self.out = root / "out"
        self.out.mkdir(exist_ok=True)
        self.db = StateDatabase(root / "jobs.sqlite3")
        self.store = JobStore(self.db)
        self.sink = RecordingSink()
        self.queue = JobQueue(self.store, self.sink)
        self.cache = ResultCache(self.db)
        self.engine = engine or fast_engine()
        self.worker = Worker(self.queue, self.cache, self.engine, max_batch)

    def submit(self, media: Path, **kw: object) -> str:
        job, created = self.queue.submit(make_job(media, self.out, **kw), route="r")  # type: ignore[arg-type]
        assert created
        return job.id

    def close(self) -> None:
        self.worker.stop()
        self.db.close()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return write_media(tmp_path)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def assert_complete_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 4
        assert w.getnframes() > 0
        assert len(w.readframes(w.getnframes())) == w.getnframes() * 4 * 2


# ------------------------------------------------------------------------------------------------
# state machine and batching (pure)

ALLOWED = {
    (JobState.ACCEPTED, JobState.QUEUED),
    (JobState.ACCEPTED, JobState.DONE),
    (JobState.ACCEPTED, JobState.ERROR),
    (JobState.ACCEPTED, JobState.CANCELLED),
    (JobState.QUEUED, JobState.RUNNING),
    (JobState.QUEUED, JobState.ERROR),
    (JobState.QUEUED, JobState.CANCELLED),
    (JobState.RUNNING, JobState.QUEUED),
    (JobState.RUNNING, JobState.DONE),
    (JobState.RUNNING, JobState.ERROR),
    (JobState.RUNNING, JobState.CANCELLED),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(JobState, JobState)))
def test_transition_table(old: JobState, new: JobState) -> None:
    if (old, new) in ALLOWED:
        check_transition(old, new)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(old, new)


def test_terminal_states() -> None:
    assert {s for s in JobState if s.terminal} == {JobState.DONE, JobState.ERROR, JobState.CANCELLED}


def test_select_batch_keeps_fifo_head_and_groups_by_key(tmp_path: Path) -> None:
    jobs = [make_job(tmp_path, tmp_path, rate=r) for r in (1, 2, 1, 1, 2, 1, 1)]
    key: Callable[[Job], object] = lambda j: j.spec.sample_rate  # noqa: E731
    assert select_batch([], key, 4) == []
    assert select_batch(jobs, key, 3) == [jobs[0], jobs[2], jobs[3]]
    assert select_batch(jobs[1:], key, 4) == [jobs[1], jobs[4]]
    assert select_batch(jobs, key, 1) == [jobs[0]]


# ------------------------------------------------------------------------------------------------
# persistence


def test_store_insert_transition_and_reopen(tmp_path: Path, media: Path) -> None:
    db = StateDatabase(tmp_path / "jobs.sqlite3")
    store = JobStore(db)
    a = store.insert(make_job(media, tmp_path, job_id="a"))
    b = store.insert(make_job(media, tmp_path, job_id="b"))
    assert b.seq > a.seq
    with pytest.raises(DuplicateJob) as dup:
        store.insert(make_job(media, tmp_path, job_id="a"))
    assert dup.value.existing.id == "a"
    store.transition("a", JobState.QUEUED, cache_key="k")
    store.transition("a", JobState.RUNNING, attempts=1)
    store.transition("b", JobState.CANCELLED, error_code="cancelled")
    with pytest.raises(InvalidTransition):
        store.transition("b", JobState.QUEUED)
    db.close()

    db = StateDatabase(tmp_path / "jobs.sqlite3")
    store = JobStore(db)
    a2 = store.get("a")
    assert a2 is not None and a2.state is JobState.RUNNING and a2.cache_key == "k" and a2.spec == a.spec
    resumed = store.recover()
    assert [j.id for j in resumed] == ["a"]
    assert resumed[0].state is JobState.QUEUED and resumed[0].attempts == 1
    assert store.prune(older_than_s=-1.0) == 1  # the cancelled job
    assert store.get("b") is None
    db.close()


# ------------------------------------------------------------------------------------------------
# queue: submit, idempotency, limits, cancel


def test_submit_emits_accepted_with_queue_position(harness: Harness, media: Path) -> None:
    first = harness.submit(media)
    second = harness.submit(media)
    assert harness.sink.of(first) == [Accepted(first, 0)]
    assert harness.sink.of(second) == [Accepted(second, 1)]


def test_resubmitting_the_same_id_is_idempotent_but_other_parameters_are_refused(
    harness: Harness, media: Path
) -> None:
    job = make_job(media, harness.out, job_id="same")
    assert harness.queue.submit(job, "r1")[1] is True
    stored, created = harness.queue.submit(job, "r2")
    assert not created and stored.id == "same" and harness.sink.routes["same"] == "r2"
    with pytest.raises(RequestError) as info:
        harness.queue.submit(make_job(media, harness.out, job_id="same", yaw=45.0), "r3")
    assert info.value.code is ErrorCode.DUPLICATE_ID
    assert len(harness.sink.of("same")) == 1


def test_queue_full(tmp_path: Path, media: Path) -> None:
    db = StateDatabase(tmp_path / "jobs.sqlite3")
    queue = JobQueue(JobStore(db), RecordingSink(), max_pending=2)
    queue.submit(make_job(media, tmp_path), "r")
    queue.submit(make_job(media, tmp_path), "r")
    with pytest.raises(RequestError) as info:
        queue.submit(make_job(media, tmp_path), "r")
    assert info.value.code is ErrorCode.QUEUE_FULL
    db.close()


def test_cancel_waiting_job(harness: Harness, media: Path) -> None:
    job_id = harness.submit(media)
    reply, emitted = harness.queue.cancel(job_id)
    assert emitted and reply == Error(job_id, "cancelled", "cancelled by request")
    assert harness.sink.terminal(job_id) == [reply]
    assert harness.store.get(job_id).state is JobState.CANCELLED  # type: ignore[union-attr]
    again, emitted = harness.queue.cancel(job_id)  # already over: just the latest event
    assert again == reply and not emitted
    assert len(harness.sink.terminal(job_id)) == 1
    with pytest.raises(RequestError) as info:
        harness.queue.cancel("nope")
    assert info.value.code is ErrorCode.UNKNOWN_JOB


# ------------------------------------------------------------------------------------------------
# worker: batching, outputs, events


def test_every_job_finishes_once_in_order_and_batches_fill(tmp_path: Path, media: Path) -> None:
    engine = FakeEngine(FakeSettings(delay_s=0.1, steps=2, seconds=0.05))
    h = Harness(tmp_path, engine, max_batch=4)
    try:
        ids = [h.submit(media, yaw=float(i), rate=48_000 if i % 3 else 24_000) for i in range(12)]
        h.worker.start()
        h.sink.wait_terminal(ids)
    finally:
        h.close()
    for job_id in ids:
        events = h.sink.of(job_id)
        assert isinstance(events[0], Accepted)
        assert [type(e) for e in events[1:-1]] == [Progress] * (len(events) - 2)
        fractions = [e.fraction for e in events if isinstance(e, Progress)]
        assert fractions == sorted(fractions)
        (done,) = h.sink.terminal(job_id)
        assert isinstance(done, Done) and not done.cached
        assert_complete_wav(Path(done.output))
        assert Path(done.metadata).is_file()
    assert max(engine.batch_sizes) <= 4
    assert sum(engine.batch_sizes) == 12
    assert len(engine.batch_sizes) < 12  # jobs with equal keys shared engine calls
    assert not list(h.out.glob("*.visage-part"))


def test_engine_exception_fails_the_batch_and_the_worker_survives(harness: Harness, media: Path) -> None:
    bad = harness.submit(media, fake_raise=True)
    harness.worker.start()
    harness.sink.wait_terminal([bad])
    good = harness.submit(media, yaw=10.0)
    harness.sink.wait_terminal([good])
    (error,) = harness.sink.terminal(bad)
    assert isinstance(error, Error) and error.code == ErrorCode.ENGINE_ERROR.value
    assert isinstance(harness.sink.terminal(good)[0], Done)


def test_engine_reported_failure_keeps_its_code(harness: Harness, media: Path) -> None:
    job_id = harness.submit(media, fake_fail="bad_range")
    harness.worker.start()
    harness.sink.wait_terminal([job_id])
    assert harness.sink.terminal(job_id)[0] == Error(job_id, "bad_range", "fake engine asked to fail")
    assert harness.store.get(job_id).state is JobState.ERROR  # type: ignore[union-attr]


class CountingEngine:
    """Returns a wrong number of outcomes."""

    model_id = "broken"
    device = "cpu"

    def batch_key(self, spec: GenerateSpec) -> int:
        return 0

    def run_batch(self, specs, progress, cancelled) -> list[JobOutcome]:  # type: ignore[no-untyped-def]
        return []


def test_wrong_outcome_count_is_an_engine_error(tmp_path: Path, media: Path) -> None:
    h = Harness(tmp_path)
    h.worker = Worker(h.queue, h.cache, CountingEngine(), 4)  # type: ignore[arg-type]
    try:
        job_id = h.submit(media)
        h.worker.start()
        h.sink.wait_terminal([job_id])
        assert h.sink.terminal(job_id)[0].code == ErrorCode.ENGINE_ERROR.value  # type: ignore[union-attr]
    finally:
        h.close()


def test_media_removed_before_it_runs(harness: Harness, media: Path) -> None:
    job_id = harness.submit(media)
    media.unlink()
    harness.worker.start()
    harness.sink.wait_terminal([job_id])
    assert harness.sink.terminal(job_id)[0].code == ErrorCode.MEDIA_NOT_FOUND.value  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------
# cancellation of a running job, shutdown re-queue


def test_cancel_running_job_between_steps(tmp_path: Path, media: Path) -> None:
    engine = FakeEngine(FakeSettings(delay_s=2.0, steps=40, seconds=0.05))
    h = Harness(tmp_path, engine)
    try:
        job_id = h.submit(media)
        h.worker.start()
        wait_for(lambda: any(isinstance(e, Progress) and e.stage == "decoding" for e in h.sink.of(job_id)))
        reply, emitted = h.queue.cancel(job_id)
        assert reply == Progress(job_id, reply.fraction, "cancelling") and not emitted  # type: ignore[union-attr]
        started = time.monotonic()
        h.sink.wait_terminal([job_id])
        assert time.monotonic() - started < 1.0  # stopped at the next step, not after 2 s
        assert h.sink.terminal(job_id) == [Error(job_id, "cancelled", "cancelled")]
        assert h.store.get(job_id).state is JobState.CANCELLED  # type: ignore[union-attr]
        assert not (h.out / f"{job_id}.wav").exists()
    finally:
        h.close()


def test_shutdown_requeues_the_running_batch_and_the_next_worker_finishes_it(
    tmp_path: Path, media: Path
) -> None:
    slow = FakeEngine(FakeSettings(delay_s=5.0, steps=50, seconds=0.05))
    h = Harness(tmp_path, slow, max_batch=2)
    ids = [h.submit(media, yaw=float(i)) for i in range(3)]
    h.worker.start()
    wait_for(lambda: h.store.count([JobState.RUNNING]) == 2)
    assert h.worker.stop(graceful_s=0.05, cancel_grace_s=2.0)
    states = {job_id: h.store.get(job_id).state for job_id in ids}  # type: ignore[union-attr]
    assert set(states.values()) == {JobState.QUEUED}
    assert all(not h.sink.terminal(job_id) for job_id in ids)
    h.db.close()

    h2 = Harness(tmp_path, fast_engine(), max_batch=2)
    try:
        assert {j.id for j in h2.store.recover()} == set(ids)
        h2.worker.start()
        h2.sink.wait_terminal(ids)
        for job_id in ids:
            (done,) = h2.sink.terminal(job_id)
            assert isinstance(done, Done)
            assert_complete_wav(Path(done.output))
        # the two interrupted jobs ran twice, the one that was still queued once
        assert [h2.store.get(j).attempts for j in ids] == [2, 2, 1]  # type: ignore[union-attr]
    finally:
        h2.close()


# ------------------------------------------------------------------------------------------------
# result cache


def test_identical_request_is_answered_from_the_cache(harness: Harness, media: Path) -> None:
    harness.worker.start()
    first = harness.submit(media, yaw=30.0)
    harness.sink.wait_terminal([first])
    second = harness.submit(media, yaw=30.0)
    other = harness.submit(media, yaw=31.0)
    harness.sink.wait_terminal([second, other])
    (d1,), (d2,), (d3,) = (harness.sink.terminal(j) for j in (first, second, other))
    assert isinstance(d1, Done) and isinstance(d2, Done) and isinstance(d3, Done)
    assert (d1.cached, d2.cached, d3.cached) == (False, True, False)
    assert d2.output != d1.output and Path(d2.output).read_bytes() == Path(d1.output).read_bytes()
    first_sidecar, second_sidecar = (json.loads(Path(d.metadata).read_text()) for d in (d1, d2))
    copy = Path(d2.output)
    # it names its own file and its own copy of the preview
    assert second_sidecar == {**first_sidecar, "file": copy.name, "preview": copy.stem + ".binaural.wav"}
    assert (copy.parent / second_sidecar["preview"]).is_file()
    assert Path(d2.metadata) == Path(d2.output + ".json")  # the sidecar: OUT.wav -> OUT.wav.json
    assert sum(harness.engine.batch_sizes) == 2


def test_identical_jobs_waiting_together_are_computed_once(harness: Harness, media: Path) -> None:
    ids = [harness.submit(media, yaw=12.0) for _ in range(3)]  # all prepared before any of them ran
    harness.worker.start()
    harness.sink.wait_terminal(ids)
    dones = [harness.sink.terminal(j)[0] for j in ids]
    assert all(isinstance(d, Done) for d in dones)
    assert sorted(d.cached for d in dones) == [False, True, True]  # type: ignore[union-attr]
    assert harness.engine.batch_sizes == [1]
    for done in dones:
        assert_complete_wav(Path(done.output))  # type: ignore[union-attr]


def test_cache_misses_after_media_or_output_change_or_when_disabled(harness: Harness, media: Path) -> None:
    harness.worker.start()

    def run(**kw: object) -> Done:
        job_id = harness.submit(media, yaw=30.0, **kw)
        harness.sink.wait_terminal([job_id])
        (done,) = harness.sink.terminal(job_id)
        assert isinstance(done, Done)
        return done

    first = run()
    assert run(use_cache=False).cached is False
    Path(first.output).write_bytes(b"tampered")  # the cached file changed: recompute
    assert run().cached is False
    assert run().cached is True
    media.write_bytes(media.read_bytes() + b"more")  # new content: new key
    assert run().cached is False


def test_cache_key_covers_every_input(tmp_path: Path) -> None:
    job = make_job(tmp_path / "m.mp4", tmp_path)
    base = cache_key(job.spec, "d" * 64, None, "m1")
    from dataclasses import replace

    variants = [
        cache_key(replace(job.spec, start=0.5), "d" * 64, None, "m1"),
        cache_key(replace(job.spec, end=None), "d" * 64, None, "m1"),
        cache_key(replace(job.spec, pitch=1.0), "d" * 64, None, "m1"),
        cache_key(replace(job.spec, guidance=3.0), "d" * 64, None, "m1"),
        cache_key(replace(job.spec, seed=None), "d" * 64, None, "m1"),
        cache_key(replace(job.spec, sample_rate=44_100), "d" * 64, None, "m1"),
        cache_key(replace(job.spec, extra={"x": 1}), "d" * 64, None, "m1"),
        cache_key(job.spec, "e" * 64, None, "m1"),
        cache_key(job.spec, "d" * 64, "c" * 64, "m1"),
        cache_key(job.spec, "d" * 64, None, "m2"),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert cache_key(replace(job.spec, output=tmp_path / "elsewhere.wav"), "d" * 64, None, "m1") == base


def test_engine_done_without_file_is_an_error(tmp_path: Path, media: Path) -> None:
    class Liar(FakeEngine):
        def run_batch(self, specs, progress, cancelled):  # type: ignore[no-untyped-def]
            return [JobDone(s.output, s.output.with_suffix(".json")) for s in specs]

    h = Harness(tmp_path, Liar())
    try:
        job_id = h.submit(media)
        h.worker.start()
        h.sink.wait_terminal([job_id])
        assert h.sink.terminal(job_id)[0].code == ErrorCode.ENGINE_ERROR.value  # type: ignore[union-attr]
    finally:
        h.close()


def test_failed_outcome_type_is_error_state() -> None:
    assert JobFailed("x", "y").code == "x"
