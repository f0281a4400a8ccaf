"""The seam between the daemon and the model: `GenerateSpec` in, `JobOutcome` out, through `Engine`.

The daemon never imports torch. An `Engine` is built once per daemon by an `EngineFactory`, chosen
from the ``--model`` string: ``fake[:k=v,...]`` is `fake_engine.FakeEngine`; anything else goes to
the factory passed to `cli.run_serve` or, failing that, to `MODEL_ENGINE_FACTORY`
(``visage.model.inference.daemon_engine:create_engine``, imported lazily, only when the daemon starts).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import ErrorCode

# Where the real engine lives; "module:function" with signature EngineFactory.
MODEL_ENGINE_FACTORY = "visage.model.inference.daemon_engine:create_engine"


@dataclass(frozen=True)
class GenerateSpec:
    """One job's inputs, already validated (paths resolved, allowed and existing).

    Attributes:
        media: the video file (resolved absolute path).
        start: seconds into the media where the clip starts.
        end: seconds where it ends; None = to the end of the media.
        yaw: camera yaw in degrees, AmbiX convention (+ = left), in [-180, 180).
        pitch: camera pitch in degrees (+ = up), in [-90, 90].
        direction_curve: optional per-time yaw/pitch file (resolved), overriding yaw/pitch over time.
        guidance: classifier-free guidance scale.
        seed: sampling seed; None = nondeterministic.
        sample_rate: output sample rate in Hz.
        output: final .wav path; the engine writes it atomically (temporary file + rename).
        extra: the request's other option keys, passed through untouched.
    """

    media: Path
    start: float
    end: float | None
    yaw: float
    pitch: float
    direction_curve: Path | None
    guidance: float
    seed: int | None
    sample_rate: int
    output: Path
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobDone:
    """The engine wrote ``output`` (4-channel AmbiX WAV) and ``metadata`` (JSON sidecar)."""

    output: Path
    metadata: Path


@dataclass(frozen=True)
class JobFailed:
    """The job failed; ``code`` is an `ErrorCode` value (e.g. "cancelled", "bad_range") or engine-specific."""

    code: str
    message: str


JobOutcome = JobDone | JobFailed


def cancelled_outcome() -> JobFailed:
    """The outcome an engine reports for a job whose ``cancelled(i)`` turned true."""
    return JobFailed(ErrorCode.CANCELLED.value, "cancelled")


ProgressCallback = Callable[[int, float, str], None]  # (index in batch, fraction 0..1, stage)
CancelledCallback = Callable[[int], bool]  # (index in batch) -> stop this job now?


@runtime_checkable
class Engine(Protocol):
    """A loaded model that turns batches of specs into AmbiX files.

    Contract:
        * ``run_batch`` returns exactly one outcome per spec, in order, and should not raise (if it
          does, every job of the batch fails with ``engine_error``).
        * It calls ``progress(i, fraction, stage)`` as it goes and checks ``cancelled(i)`` between
          decoder steps, returning `cancelled_outcome()` for those jobs.
        * It writes each output atomically, so a killed daemon never leaves a partial file at
          ``spec.output`` (``visage.model.files.output_files``: its temporaries are what the worker
          removes before a job runs again), and names its JSON sidecar ``OUT.wav.json``
          (``visage.model.files.result_files``).
        * It is called from one worker thread at a time.
    """

    model_id: str  # identifies the weights; part of the result-cache key
    device: str

    def batch_key(self, spec: GenerateSpec) -> Hashable:
        """Jobs with equal keys may share one GPU call."""
        ...

    def run_batch(
        self,
        specs: Sequence[GenerateSpec],
        progress: ProgressCallback,
        cancelled: CancelledCallback,
    ) -> list[JobOutcome]:
        """Generate every spec; see the class docstring for the contract."""
        ...


EngineFactory = Callable[[str, str], Engine]  # (model string, device) -> loaded engine


class EngineUnavailable(RuntimeError):
    """The ``--model`` string names no engine this installation can build."""


def _import_factory(target: str) -> EngineFactory:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailable(
            f"the model engine {target} is not available ({exc}); use --model fake for a test engine"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise EngineUnavailable(f"{target} is not a callable engine factory")
    return factory  # type: ignore[no-any-return]


def resolve_engine_factory(model: str, model_factory: EngineFactory | None = None) -> EngineFactory:
    """Pick the factory for a ``--model`` string.

    Args:
        model: "fake" or "fake:delay=0.2,steps=4,..." for `FakeEngine`; anything else is a model name or
            checkpoint path understood by the model-side factory.
        model_factory: the model-side factory injected by the caller (the ``visage`` command); when None,
            `MODEL_ENGINE_FACTORY` is imported.
    """
    if model == "fake" or model.startswith("fake:"):
        from .fake_engine import create_fake_engine

        return create_fake_engine
    if model_factory is not None:
        return model_factory
    return _import_factory(MODEL_ENGINE_FACTORY)
