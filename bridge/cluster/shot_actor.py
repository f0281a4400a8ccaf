"""What runs inside one Ray actor: a model loaded once, and batches of engine specs reported back as events.

`ShotWorker` is a plain class; `ray_generator` makes it a Ray actor that runs its calls on several
threads, so that `poll` and `cancel` reach it while a batch generates. `start` begins a batch on a
thread; the driver long-polls its events (`poll` answers as soon as there are some), so a shot is
recorded the moment its file is complete, not when the whole batch ends. Polling rather than a Ray
streaming generator because those do not work through Ray Client (``ray://``). A batch is one call of
the daemon's engine (its specs share batched windows), as in ``visage fill`` without Ray (`LocalGenerator`)
or in ``visage serve``.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from visage.bridge.engine import Engine, GenerateSpec
from visage.bridge.fill.generators import ShotFailed, load_engine, run_specs
from visage.model.files.output_files import remove_stale_parts

from .preflight import SharedFiles, check_shared_files
from .ray_session import RayNode

_PROGRESS_EVERY_S = 0.5  # a shot's progress is sent this often at most (and at each new stage)
_START_WAIT_S = 0.01  # how often a poll that came before its batch's start looks again


@dataclass(frozen=True)
class ShotEvent:
    """A shot's progress, or its end, as the driver receives it.

    Attributes:
        index: the shot's place in the driver's job list.
        fraction: 0..1 through the current stage.
        stage: the engine's stage name (features, generate, decode, write).
        ended: the shot is over: its file is in place, or ``error`` says why not.
        error: why the shot failed (None: it succeeded, or it is still running).
        code: the engine's error code of a failure (``cancelled``, ``bad_range``, ...).
    """

    index: int
    fraction: float
    stage: str
    ended: bool = False
    error: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Readiness:
    """An actor's answer to `ShotWorker.check`: where it runs and what of the run's files it cannot use."""

    node: RayNode
    problems: tuple[str, ...]


class ShotWorker:
    """One actor's model and its batches.

    Args:
        model: what the engine factory loads (a repo id or folder; ``tiny-random`` for the test models).
        device: torch device; a GPU actor sees only its own GPUs, so ``cuda`` is its GPU.
        threads: torch intra-op threads (the CPUs the actor holds); None keeps torch's default.
        metadata: recorded under ``request`` in each sidecar (None: the daemon engine's default).
    """

    def __init__(
        self, model: str, device: str, threads: int | None, metadata: Mapping[str, object] | None
    ) -> None:
        self._model = model
        self._device = device
        self._threads = threads
        self._metadata = metadata
        self._engine: Engine | None = None
        self._batch: _Batch | None = None
        # Batch id -> the driver indices told to stop (None: all). Kept apart from the batch itself
        # because the actor runs calls on several threads: a cancel may arrive before its batch's start.
        self._cancelled: dict[int, set[int] | None] = {}
        self._lock = threading.Lock()

    def check(self, files: SharedFiles) -> Readiness:
        """This node, and which of ``files`` it cannot read or write (`preflight`)."""
        return Readiness(this_node(), tuple(check_shared_files(files)))

    def load(self) -> str:
        """Load the model (once); returns the engine's model id.

        Raises:
            GeneratorUnavailable: the model could not be loaded on this node.
        """
        if self._threads is not None:
            import torch

            torch.set_num_threads(max(1, self._threads))
        from visage.model.environment import quiet_libraries

        quiet_libraries()
        if self._engine is None:
            self._engine = load_engine(self._model, self._device, self._metadata)
        return self._engine.model_id

    def cancel(self, batch_id: int, indices: Sequence[int] | None = None) -> None:
        """Stop shots ``indices`` (driver indices; None: all) of batch ``batch_id`` between decoder steps;
        they end ``cancelled``."""
        with self._lock:
            if indices is None:
                self._cancelled[batch_id] = None
            elif (told := self._cancelled.setdefault(batch_id, set())) is not None:
                told.update(indices)

    def _is_cancelled(self, batch_id: int, index: int) -> bool:
        with self._lock:
            if batch_id not in self._cancelled:
                return False
            told = self._cancelled[batch_id]
            return told is None or index in told

    def start(self, batch_id: int, batch: Sequence[tuple[int, GenerateSpec]]) -> None:
        """Start generating ``batch`` ((driver index, spec) pairs) together, on a thread of its own; `poll`
        follows it. Every spec ends with exactly one ``ended`` event. Temporary files an interrupted
        earlier attempt left next to an output (a killed actor's) are removed first."""
        engine = self._engine
        assert engine is not None, "load before start"
        for _, spec in batch:
            remove_stale_parts(spec.output)
        with self._lock:  # the driver numbers batches in order: older ones are over
            self._cancelled = {b: told for b, told in self._cancelled.items() if b >= batch_id}
        running = _Batch(batch_id, queue.Queue())
        last_sent: dict[int, tuple[str, float]] = {}
        ended: set[int] = set()

        def progress(i: int, fraction: float, stage: str) -> None:
            now = time.monotonic()
            sent = last_sent.get(i)
            if sent is None or sent[0] != stage or now - sent[1] >= _PROGRESS_EVERY_S:
                last_sent[i] = (stage, now)
                running.events.put(ShotEvent(batch[i][0], fraction, stage))

        def finished(i: int, error: Exception | None) -> None:
            ended.add(i)
            code = error.code if isinstance(error, ShotFailed) else None
            message = None if error is None else (str(error) or type(error).__name__)
            running.events.put(ShotEvent(batch[i][0], 1.0, "done", ended=True, error=message, code=code))

        def work() -> None:
            try:
                run_specs(
                    engine,
                    [spec for _, spec in batch],
                    progress,
                    finished,
                    cancelled=lambda i: self._is_cancelled(batch_id, batch[i][0]),
                )
            except Exception as exc:  # the engine broke its contract: the shots it left end with this
                for i in range(len(batch)):
                    if i not in ended:
                        finished(i, RuntimeError(f"{type(exc).__name__}: {exc}"))
            finally:
                running.events.put(None)

        self._batch = running
        threading.Thread(target=work, name="visage-shot-batch", daemon=True).start()

    def poll(self, batch_id: int, wait_s: float) -> BatchNews:
        """The events of batch ``batch_id`` since the last poll, waiting up to ``wait_s`` for the first.

        The actor runs its calls on several threads, so a poll may arrive before its `start`: it then
        waits for it like for an event.
        """
        deadline = time.monotonic() + wait_s
        while (running := self._batch) is None or running.batch_id != batch_id:
            if time.monotonic() >= deadline:
                return BatchNews((), over=False)
            time.sleep(_START_WAIT_S)
        items: list[ShotEvent | None] = []
        try:
            items.append(running.events.get(timeout=max(0.0, deadline - time.monotonic())))
            while True:
                items.append(running.events.get_nowait())
        except queue.Empty:
            pass
        events = tuple(item for item in items if item is not None)
        return BatchNews(events, over=None in items)


@dataclass(frozen=True)
class BatchNews:
    """What `ShotWorker.poll` answers: the batch's events since the last poll; ``over``: it has ended."""

    events: tuple[ShotEvent, ...]
    over: bool


@dataclass(frozen=True)
class _Batch:
    batch_id: int
    events: queue.Queue[ShotEvent | None]  # None: the batch is over


def this_node() -> RayNode:
    """The node this process runs on, as Ray names it (inside a Ray worker)."""
    import ray

    context = ray.get_runtime_context()
    return RayNode(
        node_id=context.get_node_id(), hostname=socket.gethostname(), ip=ray.util.get_node_ip_address()
    )
