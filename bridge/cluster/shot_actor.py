"""What runs inside one Ray actor: a model loaded once, and batches of shots streamed back as events.

`ShotWorker` is a plain class (tests drive it in-process); `ray_generator` makes it a Ray actor with
two threads, so that `cancel` can reach it while `run` is generating. `run` is a generator: Ray streams
each `ShotEvent` to the driver as it is yielded, so a shot is recorded the moment its file is complete,
not when the whole batch ends. The batch's jobs share the engine's batched windows, as in ``visage fill``
without Ray (`LocalGenerator`).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from visage.bridge.fill.generators import GenerationSettings, LocalGenerator, ShotFailed, ShotJob
from visage.model.files.output_files import remove_stale_parts

from .preflight import SharedFiles, check_shared_files
from .ray_session import RayNode

_PROGRESS_EVERY_S = 0.5  # a shot's progress is sent this often at most (and at each new stage)


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
        settings: guidance, sample rate and format of every shot.
        checkpoint: what `LocalGenerator` loads (``tiny-random`` for the offline test models).
        device: torch device; a GPU actor sees only its own GPUs, so ``cuda`` is its GPU.
        threads: torch intra-op threads (the CPUs the actor holds); None keeps torch's default.
    """

    def __init__(
        self, settings: GenerationSettings, checkpoint: str | None, device: str, threads: int | None
    ) -> None:
        self._generator = LocalGenerator(settings, checkpoint=checkpoint, device=device)
        self._threads = threads
        self._cancel = threading.Event()

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
        return self._generator.engine().model_id

    def cancel(self) -> None:
        """Stop the running batch between decoder steps; its unfinished shots end ``cancelled``."""
        self._cancel.set()

    def run(self, batch: Sequence[tuple[int, ShotJob]]) -> Iterator[ShotEvent]:
        """Generate ``batch`` ((driver index, job) pairs) together, yielding progress and ends as they come.

        Every job ends with exactly one ``ended`` event. Temporary files an interrupted earlier attempt
        left next to an output (a killed actor's) are removed first.
        """
        for _, job in batch:
            remove_stale_parts(job.output)
        events: queue.Queue[ShotEvent | None] = queue.Queue()
        last_sent: dict[int, tuple[str, float]] = {}

        def progress(i: int, fraction: float, stage: str) -> None:
            now = time.monotonic()
            sent = last_sent.get(i)
            if sent is None or sent[0] != stage or now - sent[1] >= _PROGRESS_EVERY_S:
                last_sent[i] = (stage, now)
                events.put(ShotEvent(batch[i][0], fraction, stage))

        ended: set[int] = set()

        def finished(i: int, error: Exception | None) -> None:
            ended.add(i)
            code = error.code if isinstance(error, ShotFailed) else None
            message = None if error is None else (str(error) or type(error).__name__)
            events.put(ShotEvent(batch[i][0], 1.0, "done", ended=True, error=message, code=code))

        def work() -> None:
            try:
                self._generator.run(
                    [job for _, job in batch], progress, finished, cancelled=lambda i: self._cancel.is_set()
                )
            except Exception as exc:  # the engine broke its contract: the shots it left end with this
                for i in range(len(batch)):
                    if i not in ended:
                        finished(i, RuntimeError(f"{type(exc).__name__}: {exc}"))
            finally:
                events.put(None)

        threading.Thread(target=work, name="visage-shot-batch", daemon=True).start()
        while (event := events.get()) is not None:
            yield event


def this_node() -> RayNode:
    """The node this process runs on, as Ray names it (inside a Ray worker)."""
    import ray

    context = ray.get_runtime_context()
    return RayNode(
        node_id=context.get_node_id(), hostname=socket.gethostname(), ip=ray.util.get_node_ip_address()
    )
