"""`RayGenerator`: the `ShotGenerator` that spreads a run's shots over the actors of a Ray cluster.

Each actor loads the model once (`shot_actor.ShotWorker`) and takes batches of up to ``batch_size``
shots, whose 5-s windows the engine generates together; an actor gets its next batch as soon as it is
free, and batches shrink towards the end so that every actor gets a share. The driver long-polls each
running batch's events, so the caller records a shot the moment its file is complete (fill's manifest,
its progress).

Before the first shot, every actor checks on its node that it sees the run's files (`preflight`); a
node that does not stops the run with its name. When an actor or its node dies, its unfinished shots go
back in the queue, each alone in its own batch (a shot that kills actors then fails by itself), up to
``retries`` times, after which the shot fails with the node and the reason; a replacement actor is
started where the cluster has room. Interrupted (Ctrl-C), the running batches are cancelled between
decoder steps, the actors are stopped and the temporary files of unfinished shots removed, so that only
complete files remain at output paths (the engine writes each result atomically).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from visage.bridge.engine import GenerateSpec
from visage.bridge.errors import ErrorCode
from visage.bridge.fill.generators import (
    LOCAL_METADATA,
    FinishedCallback,
    GenerationSettings,
    GeneratorUnavailable,
    ProgressCallback,
    ShotFailed,
    ShotJob,
    model_name,
    shot_specs,
)
from visage.model.files.output_files import remove_stale_parts

from .actor_plan import ActorShape, actor_count, actor_shape, batch_size
from .preflight import SharedFiles, preflight_message, shared_files
from .ray_session import RayNode, RaySession, RayUnavailable, connect
from .shot_actor import BatchNews, Readiness, ShotEvent, ShotWorker

_WAIT_S = 0.5  # the longest the driver waits without looking at the clock or a Ctrl-C
_POLL_S = 1.0  # how long an actor holds a poll of its batch's events when there are none
_SETTLE_S = 5.0  # how long a failed preflight waits for the other actors' checks to finish


class ActorLost(RuntimeError):
    """A shot's actor (or its node) died more often than the retries allow."""


@dataclass(frozen=True)
class RayOptions:
    """How a run uses the cluster.

    Attributes:
        address: ``--ray``: ``local``, ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT``.
        cpus_per_actor: CPUs each actor holds.
        gpus_per_actor: GPUs each actor holds; None = 1 when the cluster has GPUs, else 0.
        max_actors: at most this many actors; None = as many as the cluster holds.
        retries: times a shot goes to another actor after its actor died.
        batch_size: shots an actor generates together (``--jobs``).
        resources: custom Ray resources each actor also needs (to keep actors on chosen nodes).
        placement_timeout_s: how long actors may wait for room on the cluster before the run fails.
        cancel_grace_s: how long cancelled batches may take to stop before their actors are killed.
        local_cpus: CPUs a ``local`` Ray instance offers (None: all).
        local_object_store_mb: a ``local`` instance's object store (None: Ray's default).
    """

    address: str
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None
    max_actors: int | None = None
    retries: int = 2
    batch_size: int = 4
    resources: Mapping[str, float] = field(default_factory=dict)
    placement_timeout_s: float = 120.0
    cancel_grace_s: float = 10.0
    local_cpus: int | None = None
    local_object_store_mb: int | None = None


def ray_options(args: argparse.Namespace, *, batch_size: int) -> RayOptions:
    """`RayOptions` from `cli_arguments.add_ray_arguments`'s options.

    Raises:
        ValueError: a count or size out of range, or a malformed address (named as on the command line).
    """
    from .ray_session import parse_ray_address

    parse_ray_address(args.ray)
    if args.ray_actors is not None and args.ray_actors < 1:
        raise ValueError("--ray-actors must be at least 1")
    if args.ray_retries < 0:
        raise ValueError("--ray-retries cannot be negative")
    if args.ray_cpus_per_actor < 0 or (args.ray_gpus_per_actor is not None and args.ray_gpus_per_actor < 0):
        raise ValueError("--ray-cpus-per-actor and --ray-gpus-per-actor cannot be negative")
    return RayOptions(
        address=args.ray,
        cpus_per_actor=args.ray_cpus_per_actor,
        gpus_per_actor=args.ray_gpus_per_actor,
        max_actors=args.ray_actors,
        retries=args.ray_retries,
        batch_size=batch_size,
    )


def death_reason(error: BaseException) -> str:
    """Why Ray says an actor died, in a few words (its messages span a dozen lines)."""
    text = str(error)
    unavailable = re.search(r"The actor \w+ is unavailable: (.+?)\. The task may or may not", text, re.S)
    if unavailable is not None:  # its raylet or node stopped answering (ActorUnavailableError)
        rpc = re.search(r"RPC Error message: (.+?);", unavailable.group(1))
        return "it stopped answering" + (f" ({rpc.group(1)})" if rpc else "")
    because = re.search(r"The actor is dead because (.+?)\.(?:\s|$)", text)
    if because is None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
        return first.removeprefix("The actor died ").rstrip(".")  # "unexpectedly before finishing ..."
    detail = re.search(r"Worker exit detail: (.+?)\.(?:\s|$)", text)
    return because.group(1) + (f" ({detail.group(1)})" if detail else "")


class FilesNotShared(GeneratorUnavailable):
    """A node cannot read a run's media or write its outputs at the driver's paths (`preflight`)."""


class _State(enum.Enum):
    CHECKING = "checking"  # placed or waiting for room; checking the run's files on its node
    LOADING = "loading"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(eq=False)
class _Actor:
    handle: Any
    state: _State
    waiting: Any  # the ObjectRef of its check, load or running batch's poll
    since: float  # when the current check was sent (placement timeout)
    checked: SharedFiles | None = None  # the files of its latest check
    node: RayNode | None = None
    model_id: str | None = None  # once its model has loaded
    batch: list[int] = field(default_factory=list)  # the running batch's unfinished shots
    batch_id: int = -1

    @property
    def where(self) -> str:
        return f"node {self.node.label}" if self.node is not None else "a node not yet known"


class RayGenerator:
    """Generates shots on a Ray cluster's actors (see the module docstring).

    Connects and starts its actors on the first `run`; they stay (model loaded) for later runs until
    `close`. Usable as a context manager.

    Args:
        settings: guidance, sample rate and format of every shot of `run` (`run_specs`' specs carry
            their own).
        options: the cluster and the actors' sizes.
        checkpoint: what each actor loads (a repo id or folder, ``tiny-random``; None: the released one).
        log: receives one-line notes for the user (the cluster found, actors lost).
        metadata: recorded under ``request`` in each sidecar (None: the daemon engine's default).
    """

    def __init__(
        self,
        settings: GenerationSettings,
        options: RayOptions,
        *,
        checkpoint: str | None = None,
        log: Callable[[str], None] | None = None,
        metadata: Mapping[str, object] | None = LOCAL_METADATA,
    ) -> None:
        self.settings = settings
        self.options = options
        self.model_id: str = model_name(checkpoint)  # as without Ray
        self.metadata = metadata
        self._log = log or (lambda message: None)
        self._exit = contextlib.ExitStack()
        self._session: RaySession | None = None
        self._shape: ActorShape | None = None
        self._target = 0
        self._started = 0
        self._actors: list[_Actor] = []
        self._batch_ids = itertools.count()

    def __enter__(self) -> RayGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def actor_count(self) -> int:
        """Actors planned for the cluster (0 before the first run)."""
        return self._target

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        self.run_specs(shot_specs(jobs, self.settings), progress, finished)

    def run_specs(
        self,
        specs: Sequence[GenerateSpec],
        progress: ProgressCallback,
        finished: FinishedCallback,
        cancelled: Callable[[int], bool] | None = None,
    ) -> None:
        """Generate the daemon engine's ``specs`` on the actors; ``finished(i, error)`` once per spec, as
        in `run`. ``cancelled(i)`` true ends spec ``i`` with a ``cancelled`` `ShotFailed` (between
        decoder steps when it is being generated)."""
        if not specs:
            return
        self._open()
        run = _Run(self, specs, progress, finished, cancelled or (lambda i: False))
        try:
            run.generate()
        except FilesNotShared:  # nothing was generated: the actors stay for another run (a daemon's)
            if any(actor.state is _State.BUSY for actor in self._actors):
                run.stop()
                self.close()
            raise
        except BaseException:
            run.stop()
            self.close()
            raise

    def start(self) -> str:
        """Connect and start the actors now, and wait until one has loaded the model (a daemon does this
        before it answers anyone); returns that engine's model id. The others go on loading."""
        self._open()
        run = _Run(self, (), lambda i, f, s: None, lambda i, e: None, lambda i: False)
        try:
            return run.first_load()
        except BaseException:
            run.stop()
            self.close()
            raise

    def close(self) -> None:
        """Stop the actors and leave the cluster (a ``local`` Ray instance stops)."""
        if self._actors:  # Ray was imported then (without actors it may not even be installed)
            import ray

            for actor in self._actors:
                _kill(ray, actor)
        self._actors = []
        self._started = 0  # a later run connects again and starts its actors afresh (a daemon's next batch)
        self._session = None
        self._exit.close()

    # --- the actors ----------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._session is not None:
            return
        options = self.options
        try:
            self._session = self._exit.enter_context(
                connect(
                    options.address,
                    num_cpus=options.local_cpus,
                    object_store_mb=options.local_object_store_mb,
                )
            )
        except (RayUnavailable, ValueError) as exc:
            raise GeneratorUnavailable(str(exc)) from exc
        nodes = self._session.nodes()
        try:
            self._shape = actor_shape(
                nodes,
                cpus_per_actor=options.cpus_per_actor,
                gpus_per_actor=options.gpus_per_actor,
                resources=options.resources,
            )
        except ValueError as exc:
            raise GeneratorUnavailable(str(exc)) from exc
        self._target = actor_count(nodes, self._shape, options.max_actors)
        if self._target == 0:
            needs = ", ".join(f"{amount:g} {name}" for name, amount in self._shape.needs().items())
            raise GeneratorUnavailable(
                f"no node of the Ray cluster has room for one actor ({needs}): {self._session.describe()}"
            )
        kind = f"{self._shape.gpus:g} GPU" if self._shape.gpus > 0 else f"{self._shape.cpus:g} CPU"
        asked = options.max_actors
        fewer = (
            f" ({asked} asked for; the cluster holds {self._target})"
            if asked and asked > self._target
            else ""
        )
        self._log(f"{self._session.describe()}; {self._target} actor(s) of {kind} each{fewer}")

    def _spawn(self, files: SharedFiles) -> _Actor:
        import ray

        assert self._shape is not None
        shape = self._shape
        worker = ray.remote(ShotWorker).options(
            num_cpus=shape.cpus,
            num_gpus=shape.gpus,
            resources=dict(shape.resources) or None,
            max_concurrency=3,  # `poll` and `cancel` reach it while a batch generates
            max_restarts=0,
            max_task_retries=0,
            scheduling_strategy="SPREAD",
        )
        handle = worker.remote(self.model_id, shape.device, shape.threads, self.metadata)
        self._started += 1
        actor = _Actor(handle, _State.CHECKING, handle.check.remote(files), time.monotonic(), files)
        self._actors.append(actor)
        return actor

    def _may_replace(self) -> bool:
        """Room for a replacement: fewer live actors than planned, and not a crash loop."""
        live = sum(actor.state is not _State.DEAD for actor in self._actors)
        return live < self._target and self._started < self._target * (self.options.retries + 2)


class _Run:
    """One `RayGenerator.run` call: its queue, retries and the events of its shots."""

    def __init__(
        self,
        owner: RayGenerator,
        specs: Sequence[GenerateSpec],
        progress: ProgressCallback,
        finished: FinishedCallback,
        cancelled: Callable[[int], bool],
    ) -> None:
        self.owner = owner
        self.jobs = specs
        self.progress = progress
        self.finished = finished
        self.cancelled = cancelled
        self.told: set[int] = set()  # shots whose actor was told to cancel them
        self.files = shared_files(
            [spec.media for spec in specs]
            + [spec.direction_curve for spec in specs if spec.direction_curve is not None],
            [spec.output for spec in specs],
        )
        self.queue: deque[int] = deque(range(len(specs)))
        self.solo: deque[int] = deque()  # shots whose actor died: retried alone
        self.attempts = [0] * len(specs)
        self.ended: set[int] = set()
        self.last_loss = ""
        self.unread: deque[ShotEvent] = deque()  # events received but not yet handled (a Ctrl-C came)

    @property
    def actors(self) -> list[_Actor]:
        return self.owner._actors

    def generate(self) -> None:

        for actor in self.actors:  # actors of an earlier run check this run's files
            if actor.state in (_State.IDLE, _State.CHECKING):
                actor.state, actor.waiting = _State.CHECKING, actor.handle.check.remote(self.files)
                actor.checked = self.files
                actor.since = time.monotonic()
        while len(self.actors) < self.owner._target:
            self.owner._spawn(self.files)
        checked = False  # every first actor has answered its check (or the rest are still waiting for room)
        # Until every shot has ended and every batch has said it is over (so that the next run finds
        # its actors idle, not finishing a batch whose shots all ended).
        while len(self.ended) < len(self.jobs) or any(a.state is _State.BUSY for a in self.actors):
            self._cancel_asked()
            if not checked:
                checked = self._first_checks_done()
            if checked:
                self._dispatch()
            active = [a for a in self.actors if a.state in (_State.CHECKING, _State.LOADING, _State.BUSY)]
            if not active and not any(a.state is _State.IDLE for a in self.actors):
                self._fail_rest(self.last_loss or "no Ray actor is left to generate it")
                return
            self._take_answers(active)

    def first_load(self) -> str:
        """Start the planned actors and wait until one has loaded the model; its engine's model id."""

        while len(self.actors) < self.owner._target:
            self.owner._spawn(self.files)
        while not (loaded := [a.model_id for a in self.actors if a.model_id and a.state is not _State.DEAD]):
            active = [a for a in self.actors if a.state in (_State.CHECKING, _State.LOADING)]
            if not active:
                raise GeneratorUnavailable(self.last_loss or "no Ray actor is left to load the model")
            self._take_answers(active)
        return loaded[0]

    def _take_answers(self, active: list[_Actor]) -> None:
        """Wait up to `_WAIT_S` for ``active`` actors' answers and take those that came; first give up on
        placement when none is usable (all are still checking, or waiting for room) for too long."""
        import ray

        if active and not self._usable():
            waited = time.monotonic() - min(a.since for a in active)
            if waited > self.owner.options.placement_timeout_s:
                self._no_room(waited)
        ready, _ = ray.wait([a.waiting for a in active], num_returns=1, timeout=_WAIT_S)
        for waitable in ready:
            self._answer(next(a for a in active if a.waiting == waitable))  # Ray Client answers copies

    def _cancel_asked(self) -> None:
        """End the queued shots the caller cancelled, and tell actors to stop the running ones."""
        for waiting in (self.queue, self.solo):
            for i in [i for i in waiting if self.cancelled(i)]:
                waiting.remove(i)
                self._end(i, ShotFailed(ErrorCode.CANCELLED.value, "cancelled"))
        for actor in self.actors:
            if actor.state is _State.BUSY:
                stop = [i for i in actor.batch if i not in self.told and self.cancelled(i)]
                if stop:
                    self.told.update(stop)
                    actor.handle.cancel.remote(actor.batch_id, stop)

    def _usable(self) -> bool:
        return any(a.state in (_State.LOADING, _State.IDLE, _State.BUSY) for a in self.actors)

    def _first_checks_done(self) -> bool:
        """True once no actor is checking, or those left have waited out the placement timeout while
        others are ready: nothing is generated before every placed actor has passed its check."""
        checking = [a for a in self.actors if a.state is _State.CHECKING]
        if not checking:
            return True
        waited = time.monotonic() - min(a.since for a in checking)
        return self._usable() and waited > self.owner.options.placement_timeout_s

    def _no_room(self, waited: float) -> None:
        assert self.owner._shape is not None and self.owner._session is not None
        needs = ", ".join(f"{amount:g} {name}" for name, amount in self.owner._shape.needs().items())
        message = (
            f"no Ray actor ({needs}) could be placed in {waited:.0f} s: {self.owner._session.describe()}"
        )
        if not self.ended:
            raise GeneratorUnavailable(message)
        self._fail_rest(f"{self.last_loss}; {message}" if self.last_loss else message)

    def _dispatch(self) -> None:
        """Give every idle actor a batch: a retried shot alone, else its share of the shots left (queued
        or being generated), so that actors that start at different moments still get equal batches."""
        usable = sum(a.state in (_State.LOADING, _State.IDLE, _State.BUSY) for a in self.actors)
        remaining = len(self.queue) + sum(len(a.batch) for a in self.actors)
        size = batch_size(remaining, usable, self.owner.options.batch_size)
        for actor in self.actors:
            if actor.state is not _State.IDLE:
                continue
            if self.solo:
                batch = [self.solo.popleft()]
            elif self.queue:
                batch = [self.queue.popleft() for _ in range(min(size, len(self.queue)))]
            else:
                return
            actor.batch, actor.batch_id = batch, next(self.owner._batch_ids)
            actor.state = _State.BUSY
            actor.handle.start.remote(actor.batch_id, [(i, self.jobs[i]) for i in batch])
            actor.waiting = actor.handle.poll.remote(actor.batch_id, _POLL_S)

    def _answer(self, actor: _Actor) -> None:
        """Take the answer ``actor.waiting`` has ready."""
        import ray

        if actor.state is _State.BUSY:
            try:
                news: BatchNews = ray.get(actor.waiting)
            except Exception as exc:  # ActorDiedError, a lost node, an OOM kill
                self._lost(actor, exc)
                return
            self.unread.extend(news.events)
            while self.unread:
                self._event(actor, self.unread.popleft())
            if news.over:  # every shot had its end event
                for i in actor.batch:
                    self._end(i, RuntimeError("the actor ended its batch without this shot's result"))
                actor.batch, actor.state, actor.waiting = [], _State.IDLE, None
            else:
                actor.waiting = actor.handle.poll.remote(actor.batch_id, _POLL_S)
            return
        try:
            answer = ray.get(actor.waiting)
        except ray.exceptions.RayTaskError as exc:  # the model did not load there
            cause = exc.cause if exc.cause is not None else exc
            raise GeneratorUnavailable(f"on Ray node {actor.where}: {cause}") from exc
        except Exception as exc:
            self._lost(actor, exc)
            return
        if actor.state is _State.CHECKING:
            readiness: Readiness = answer
            actor.node = readiness.node
            if readiness.problems:
                self._settle_checks()
                raise FilesNotShared(preflight_message(readiness.node.label, list(readiness.problems)))
            if actor.model_id is None:
                actor.state, actor.waiting = _State.LOADING, actor.handle.load.remote()
            else:
                actor.state, actor.waiting = _State.IDLE, None
            return
        actor.model_id = answer
        if actor.checked != self.files:  # it was loading when this run began: check this run's files
            actor.state, actor.waiting = _State.CHECKING, actor.handle.check.remote(self.files)
            actor.checked, actor.since = self.files, time.monotonic()
        else:
            actor.state, actor.waiting = _State.IDLE, None

    def _settle_checks(self) -> None:
        """Let the other placed actors finish their checks before the run stops and kills them, so that
        none is killed between creating its probe file and removing it."""
        import ray

        checking = [a.waiting for a in self.actors if a.state is _State.CHECKING]
        ray.wait(checking, num_returns=len(checking), timeout=_SETTLE_S)  # unplaced ones never answer

    def _event(self, actor: _Actor, event: ShotEvent) -> None:
        i = event.index
        if i in self.ended:
            return
        if not event.ended:
            self.progress(i, event.fraction, event.stage)
            return
        actor.batch.remove(i)
        if event.error is None:
            self._end(i, None)
        else:
            from visage.bridge.fill.generators import ShotFailed

            self._end(i, ShotFailed(event.code or "engine_error", event.error))

    def _lost(self, actor: _Actor, error: BaseException) -> None:
        """``actor`` died: requeue its unfinished shots (alone) or fail those out of retries."""
        import ray

        _kill(ray, actor)
        reason = f"actor on {actor.where} died: {death_reason(error)}"
        self.last_loss = reason
        self.owner._log(reason)
        for i in actor.batch:
            remove_stale_parts(self.jobs[i].output)  # what the killed writer left (shared filesystem)
            self.attempts[i] += 1
            if self.attempts[i] > self.owner.options.retries:
                self._end(i, ActorLost(reason))
            else:
                self.solo.append(i)
        actor.batch = []
        if self.owner._may_replace():
            self.owner._spawn(self.files)

    def _end(self, i: int, error: Exception | None) -> None:
        if i not in self.ended:
            self.ended.add(i)
            self.finished(i, error)

    def _fail_rest(self, reason: str) -> None:
        for i in range(len(self.jobs)):
            self._end(i, ActorLost(reason))

    def stop(self) -> None:
        """Interrupted: cancel the running batches, wait a little for them, then kill every actor and
        remove the temporary files of the shots that did not end. Ended shots are left as they are, and
        shots whose files were completed meanwhile end as finished (`_record_finished`)."""
        import ray

        busy = [a for a in self.actors if a.state is _State.BUSY]
        try:
            self._record_finished(self.unread)
            for actor in busy:
                actor.handle.cancel.remote(actor.batch_id)
            deadline = time.monotonic() + self.owner.options.cancel_grace_s
            while busy and time.monotonic() < deadline:
                ready, _ = ray.wait([a.waiting for a in busy], num_returns=1, timeout=_WAIT_S)
                for waitable in ready:
                    actor = next(a for a in busy if a.waiting == waitable)
                    if not _drain_one(ray, actor, self._record_finished):
                        busy.remove(actor)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        finally:
            for actor in self.actors:
                _kill(ray, actor)
            for actor in busy:  # killed mid-batch: wait until it is gone before removing its files
                _await_death(ray, actor, self._record_finished)
            for i in range(len(self.jobs)):
                if i not in self.ended:
                    remove_stale_parts(self.jobs[i].output)

    def _record_finished(self, events: Iterable[ShotEvent]) -> None:
        """While stopping: end the shots whose file an actor completed, so that they are recorded (and
        ``--resume`` does not make them again); the cancelled ones stay unended."""
        for event in events:
            if event.ended and event.error is None:
                self._end(event.index, None)


def _drain_one(ray: Any, actor: _Actor, record: Callable[[Iterable[ShotEvent]], None]) -> bool:
    """Take one answer of a cancelled batch's polls, passing its events to ``record``; False once the
    batch is over (or its actor gone)."""
    try:
        news: BatchNews = ray.get(actor.waiting)
    except Exception:
        return False
    record(news.events)
    if news.over:
        return False
    actor.waiting = actor.handle.poll.remote(actor.batch_id, _POLL_S)
    return True


def _await_death(
    ray: Any, actor: _Actor, record: Callable[[Iterable[ShotEvent]], None], timeout_s: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _ = ray.wait([actor.waiting], num_returns=1, timeout=_WAIT_S)
        if ready and not _drain_one(ray, actor, record):
            return


def _kill(ray: Any, actor: _Actor) -> None:
    if actor.state is not _State.DEAD:
        actor.state = _State.DEAD
        with contextlib.suppress(Exception):  # already gone
            ray.kill(actor.handle, no_restart=True)
