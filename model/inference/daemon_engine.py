"""The daemon's engine: `visage.bridge` job specs in, the generate pipeline, job outcomes out.

The bridge never imports torch; it finds this module by name (``bridge.engine.MODEL_ENGINE_FACTORY``)
and calls :func:`create_engine` once when ``visage serve`` starts. Options a request may carry besides
the bridge's own (guidance, seed, sample rate, output, direction curve): ``guidance_mode`` (joint,
directional, visual, dual, none), ``direction_scale`` (dual mode), ``format`` (``pcm24`` or ``float``),
``top_k``, ``temperature``, ``binaural_preview`` (default true: a stereo ``<output>.binaural.wav`` for
headphones beside the result, named under ``preview`` in its sidecar, which hosts place for monitoring),
``loudness_target`` (LUFS: W normalised to it, all channels one gain), ``equirect`` (read the media as
a 360° panorama without spherical metadata), ``look`` (``auto``: a 360° video's windows look where
things move). A 360° file the pipeline cannot read (cubemap, stereo, tilted pose, ``look`` on a flat
video) fails with ``unsupported_video``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from visage.bridge.engine import GenerateSpec, JobDone, JobFailed, JobOutcome, cancelled_outcome
from visage.model.audio.loudness import LoudnessError
from visage.model.features.direction import DirectionError
from visage.model.files.audio_io import OutputExistsError
from visage.model.files.video_io import RangeError, VideoError
from visage.model.network.checkpoint import DEFAULT_REPO_ID

from .job_request import BadOption, JobOptions, job_request
from .panorama_input import UnsupportedVideo
from .pipeline import GenerationCancelled, GenerationOutput, GenerationRequest, VideoToAmbisonics
from .tiny_random_bundle import TINY_RANDOM

log = logging.getLogger(__name__)

# A daemon job writes a headphone preview unless it says otherwise; hosts place it for monitoring.
DAEMON_OPTIONS = JobOptions(binaural_preview=True)


class VisageEngine:
    """Runs batches of daemon jobs through one loaded :class:`VideoToAmbisonics`.

    Args:
        pipeline: the loaded models.
        model_id: names the weights (result-cache keys, ``ping``).
        metadata: keys recorded under ``request`` in every sidecar; default ``{"daemon_model_id": ...}``.
    """

    def __init__(
        self, pipeline: VideoToAmbisonics, model_id: str, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        self.pipeline = pipeline
        self.model_id = model_id
        self.device = str(pipeline.device)
        self.metadata = dict(metadata) if metadata is not None else {"daemon_model_id": model_id}

    def batch_key(self, spec: GenerateSpec) -> Hashable:
        """Jobs share a GPU call when they sample the same way (the pipeline batches their windows)."""
        try:
            request = self.request(spec)
        except ValueError:  # BadOption, DirectionError
            return ("invalid", id(spec))  # fails alone in run_batch, with its own message
        return (request.guidance, request.top_k, request.temperature)

    def request(self, spec: GenerateSpec) -> GenerationRequest:
        """The pipeline request for a job (raises :class:`BadOption` / :class:`DirectionError`)."""
        return job_request(
            spec.media,
            output=spec.output,
            start=spec.start,
            end=spec.end,
            yaw_deg=spec.yaw,
            pitch_deg=spec.pitch,
            direction_curve=spec.direction_curve,
            guidance_scale=spec.guidance,
            seed=spec.seed,
            sample_rate=spec.sample_rate,
            overwrite=True,  # the daemon refused existing outputs when it accepted the job
            options=JobOptions.from_json(spec.extra, DAEMON_OPTIONS),
            metadata=self.metadata,
        )

    def run_batch(
        self,
        specs: Sequence[GenerateSpec],
        progress: Callable[[int, float, str], None],
        cancelled: Callable[[int], bool],
    ) -> list[JobOutcome]:
        """One outcome per spec, in order; never raises for a bad job."""
        outcomes: list[JobOutcome | None] = [None] * len(specs)
        requests: list[GenerationRequest] = []
        index: list[int] = []  # position in specs of each request
        for i, spec in enumerate(specs):
            try:
                requests.append(self.request(spec))
                index.append(i)
            except BadOption as exc:
                outcomes[i] = JobFailed("bad_options", str(exc))
            except DirectionError as exc:  # an unreadable curve file too (it names the file)
                outcomes[i] = JobFailed("bad_direction", str(exc))
        results = self.pipeline.generate(
            requests,
            progress=lambda j, fraction, stage: progress(index[j], fraction, stage),
            cancelled=lambda j: cancelled(index[j]),
        )
        for j, result in enumerate(results):
            outcomes[index[j]] = _outcome(result)
        return [o if o is not None else JobFailed("internal", "no outcome") for o in outcomes]

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees."""


def _outcome(result: GenerationOutput | Exception) -> JobOutcome:
    if isinstance(result, GenerationOutput):
        assert result.written is not None  # every daemon request names an output
        return JobDone(result.written.path, result.written.sidecar)
    if isinstance(result, GenerationCancelled):
        return cancelled_outcome()
    if isinstance(result, UnsupportedVideo):
        return JobFailed("unsupported_video", str(result))
    if isinstance(result, RangeError):
        return JobFailed("bad_range", str(result))
    if isinstance(result, VideoError):
        return JobFailed("media_error", str(result))
    if isinstance(result, OutputExistsError):
        return JobFailed("output_exists", str(result))
    if isinstance(result, DirectionError):
        return JobFailed("bad_direction", str(result))
    if isinstance(result, LoudnessError):
        return JobFailed("bad_options", str(result))
    log.error("job failed: %s: %s", type(result).__name__, result)
    return JobFailed("engine_error", f"{type(result).__name__}: {result}")


def model_identity(checkpoint: str, folder: Path | None) -> str:
    """A model id for the result cache: the checkpoint name plus a digest of its resolved folder
    (a Hugging Face snapshot folder names its commit, so a new release gets a new id)."""
    if folder is None:
        return checkpoint
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    return f"{checkpoint}@{digest}"


def create_engine(model: str, device: str, *, metadata: Mapping[str, Any] | None = None) -> VisageEngine:
    """The factory ``visage serve`` (and ``visage fill`` without a daemon) calls: ``model`` is ``visage``
    (the released checkpoint), a repo id or folder, or ``tiny-random`` (offline, noise); ``metadata``
    as in :class:`VisageEngine`."""
    from visage.model.environment import quiet_libraries
    from visage.model.network.checkpoint import resolve_checkpoint_dir

    quiet_libraries()  # the daemon's log, not per-tensor loading bars
    checkpoint = DEFAULT_REPO_ID if model in ("visage", "") else model
    folder = None if checkpoint == TINY_RANDOM else resolve_checkpoint_dir(checkpoint)
    pipeline = VideoToAmbisonics.load(folder or checkpoint, device=device)
    pipeline.checkpoint = checkpoint
    return VisageEngine(pipeline, model_identity(checkpoint, folder), metadata=metadata)
