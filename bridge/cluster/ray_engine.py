"""`RayEngine`: the daemon's `Engine` on a Ray cluster, so that ``visage serve --ray ADDRESS`` hands its
batches to a farm and a right-click in an editor uses it.

The daemon stays as it is (queue, cache, OSC, web page, its one worker thread); only the engine changes:
each batch the worker takes is spread over the cluster's actors (`RayGenerator.run_specs`), which run
the same engine as a local daemon, so a job gives the same file and sidecar either way. The actors start
and load the model when the daemon starts; the model id a daemon reports (and keys its cache with) is
the one the actors' engine gives, with the weights' digest. Every node must see the allowed folders at
the same paths, checked per batch before it runs, as for ``visage fill --ray``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from visage.bridge.engine import (
    CancelledCallback,
    GenerateSpec,
    JobDone,
    JobFailed,
    JobOutcome,
    ProgressCallback,
)
from visage.bridge.fill.generators import GenerationSettings, GeneratorUnavailable, ShotFailed
from visage.model.files.result_files import sidecar_path

from .ray_generator import FilesNotShared, RayGenerator, RayOptions


class RayEngine:
    """Generates the daemon's batches on the actors of a Ray cluster.

    Args:
        model: what each actor loads (``visage`` or a repo id or folder; ``tiny-random`` for tests).
        options: the cluster and the actors' sizes; ``batch_size`` is the most jobs per actor call.
        log: receives one-line notes (the cluster found, actors lost).

    Raises:
        GeneratorUnavailable: no actor could be placed, or the model did not load.
    """

    def __init__(self, model: str, options: RayOptions, *, log: Callable[[str], None] | None = None) -> None:
        # The daemon's specs carry their own options: the settings of `RayGenerator.run` stay unused,
        # and sidecars get the daemon engine's metadata (``metadata=None``), as without Ray.
        self._generator = RayGenerator(
            GenerationSettings(), options, checkpoint=model, log=log, metadata=None
        )
        self.model_id: str = self._generator.start()
        self.device = f"ray ({self._generator.actor_count} actors)"

    @property
    def actor_count(self) -> int:
        """Actors planned for the cluster."""
        return self._generator.actor_count

    def batch_key(self, spec: GenerateSpec) -> Hashable:
        """Any jobs may share a batch: each actor's engine groups them by how they sample."""
        return "ray"

    def run_batch(
        self, specs: Sequence[GenerateSpec], progress: ProgressCallback, cancelled: CancelledCallback
    ) -> list[JobOutcome]:
        """One outcome per spec, in order; a cluster that cannot run the batch fails its jobs with why."""
        outcomes: list[JobOutcome | None] = [None] * len(specs)
        self._run_part(specs, list(range(len(specs))), outcomes, progress, cancelled)
        return [o if o is not None else JobFailed("engine_error", "no outcome from Ray") for o in outcomes]

    def _run_part(
        self,
        specs: Sequence[GenerateSpec],
        part: list[int],
        outcomes: list[JobOutcome | None],
        progress: ProgressCallback,
        cancelled: CancelledCallback,
    ) -> None:
        """Run ``specs[i]`` for ``i`` in ``part``, filling their ``outcomes``.

        The daemon's batch mixes unrelated jobs: when a node cannot see the files of some of them (a
        media file or output folder removed since its job was accepted, or a job of a folder only the
        daemon's machine sees), the part is split in two and each half checked and run again, so that
        only the jobs whose files are missing fail, each with its own files named.
        """

        def finished(j: int, error: Exception | None) -> None:
            i = part[j]
            if error is None:
                outcomes[i] = JobDone(specs[i].output, sidecar_path(specs[i].output))
            elif isinstance(error, ShotFailed):
                outcomes[i] = JobFailed(error.code, str(error))
            else:  # an actor lost more often than the retries allow
                outcomes[i] = JobFailed("engine_error", str(error))

        try:
            self._generator.run_specs(
                [specs[i] for i in part],
                lambda j, fraction, stage: progress(part[j], fraction, stage),
                finished,
                lambda j: cancelled(part[j]),
            )
        except FilesNotShared as exc:
            left = [i for i in part if outcomes[i] is None]
            if len(left) > 1:
                half = len(left) // 2
                self._run_part(specs, left[:half], outcomes, progress, cancelled)
                self._run_part(specs, left[half:], outcomes, progress, cancelled)
            elif left:
                outcomes[left[0]] = JobFailed("engine_error", f"Ray: {exc}")
        except GeneratorUnavailable as exc:  # the next batch connects and starts actors again
            for i in part:
                if outcomes[i] is None:
                    outcomes[i] = JobFailed("engine_error", f"Ray: {exc}")

    def close(self) -> None:
        """Stop the actors and leave the cluster."""
        self._generator.close()
