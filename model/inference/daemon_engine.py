"""The daemon's engine: `visage.bridge` job specs in, the generate pipeline, job outcomes out.

The bridge never imports torch; it finds this module by name (``bridge.engine.MODEL_ENGINE_FACTORY``)
and calls :func:`create_engine` once when ``visage serve`` starts. Options a request may carry besides
the bridge's own (guidance, seed, sample rate, output, direction curve): ``guidance_mode`` (joint,
directional, visual, dual, none), ``direction_scale`` (dual mode), ``format`` (``pcm24`` or ``float``),
``top_k``, ``temperature``, ``binaural_preview`` (default true: a stereo ``<output>.binaural.wav`` for
headphones beside the result, named under ``preview`` in its sidecar, which hosts place for monitoring),
``loudness_target`` (LUFS: W normalised to it, all channels one gain).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from visage.bridge.engine import GenerateSpec, JobDone, JobFailed, JobOutcome, cancelled_outcome
from visage.model.audio.loudness import LoudnessError
from visage.model.features.direction import CameraDirection, DirectionError, load_direction_curve
from visage.model.files.audio_io import OutputExistsError
from visage.model.files.video_io import RangeError, VideoError
from visage.model.network.checkpoint import DEFAULT_REPO_ID
from visage.model.network.generation import GUIDANCE_MODES, Guidance

from .pipeline import TINY_RANDOM, GenerationCancelled, GenerationOutput, GenerationRequest, VideoToAmbisonics

log = logging.getLogger(__name__)

_FORMATS = {"pcm24": "PCM_24", "float": "FLOAT"}
ENGINE_OPTIONS = (
    "guidance_mode",
    "direction_scale",
    "format",
    "top_k",
    "temperature",
    "binaural_preview",
    "loudness_target",
)


class BadOption(ValueError):
    """An engine option of a request has the wrong type or value."""


class VisageEngine:
    """Runs batches of daemon jobs through one loaded :class:`VideoToAmbisonics`."""

    def __init__(self, pipeline: VideoToAmbisonics, model_id: str) -> None:
        self.pipeline = pipeline
        self.model_id = model_id
        self.device = str(pipeline.device)

    def batch_key(self, spec: GenerateSpec) -> Hashable:
        """Jobs share a GPU call when they sample the same way (the pipeline batches their windows)."""
        try:
            request = self.request(spec)
        except (BadOption, DirectionError, OSError):
            return ("invalid", id(spec))  # fails alone in run_batch, with its own message
        return (request.guidance, request.top_k, request.temperature)

    def request(self, spec: GenerateSpec) -> GenerationRequest:
        """The pipeline request for a job (raises :class:`BadOption` / :class:`DirectionError`)."""
        extra = spec.extra
        unknown = sorted(set(extra) - set(ENGINE_OPTIONS))
        if unknown:
            raise BadOption(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(ENGINE_OPTIONS)}")
        mode = _option(extra, "guidance_mode", str, "joint")
        if mode not in GUIDANCE_MODES:
            raise BadOption(f"option guidance_mode must be one of {', '.join(GUIDANCE_MODES)}, got {mode!r}")
        fmt = _option(extra, "format", str, "pcm24")
        if fmt not in _FORMATS:
            raise BadOption(f"option format must be pcm24 or float, got {fmt!r}")
        direction = (
            load_direction_curve(spec.direction_curve)
            if spec.direction_curve is not None
            else CameraDirection(spec.yaw, spec.pitch)
        )
        return GenerationRequest(
            media=spec.media,
            start=spec.start,
            end=spec.end,
            direction=direction,
            guidance=Guidance(mode, spec.guidance, _option(extra, "direction_scale", float, None)),
            seed=spec.seed,
            output=spec.output,
            sample_rate=spec.sample_rate,
            subtype=_FORMATS[fmt],
            overwrite=True,  # the daemon refused existing outputs when it accepted the job
            top_k=_option(extra, "top_k", int, 256),
            temperature=_option(extra, "temperature", float, 1.0),
            metadata={"daemon_model_id": self.model_id},
            binaural_preview=_option(extra, "binaural_preview", bool, True),
            loudness_target=_option(extra, "loudness_target", float, None),
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
            except (DirectionError, OSError) as exc:
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


def _option(extra: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    if key not in extra:
        return default
    value = extra[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadOption(f"option {key} must be a {kind.__name__}, got {value!r}")
    return value


def model_identity(checkpoint: str, folder: Path | None) -> str:
    """A model id for the result cache: the checkpoint name plus a digest of its resolved folder
    (a Hugging Face snapshot folder names its commit, so a new release gets a new id)."""
    if folder is None:
        return checkpoint
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    return f"{checkpoint}@{digest}"


def create_engine(model: str, device: str) -> VisageEngine:
    """The factory ``visage serve`` calls: ``model`` is ``visage`` (the released checkpoint), a repo id
    or folder, or ``tiny-random`` (offline, noise)."""
    from visage.model.environment import quiet_libraries
    from visage.model.network.checkpoint import resolve_checkpoint_dir

    quiet_libraries()  # the daemon's log, not per-tensor loading bars
    checkpoint = DEFAULT_REPO_ID if model in ("visage", "") else model
    folder = None if checkpoint == TINY_RANDOM else resolve_checkpoint_dir(checkpoint)
    pipeline = VideoToAmbisonics.load(folder or checkpoint, device=device)
    pipeline.checkpoint = checkpoint
    return VisageEngine(pipeline, model_identity(checkpoint, folder))
