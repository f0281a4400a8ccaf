"""Where `visage fill` gets its audio: the daemon's engine in this process, or a running daemon.

Both take a batch of `ShotJob` values and report each job's progress and end through callbacks, so the
fill loop can record a finished shot the moment its file is complete. ``--jobs N`` is the batch: N shots
share one engine call (their 5-s windows are generated together), or N jobs are queued on the daemon
at once (it batches them on its GPU). Both send the same `GenerateSpec` options, so a shot is made,
refused and recorded alike either way. Only `LocalGenerator` imports torch, and only when it loads.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from visage.bridge import const
from visage.bridge.client import DaemonAddress, DaemonUnavailable, JobFailed, VisageClient
from visage.bridge.engine import Engine, GenerateSpec, JobDone
from visage.bridge.osc_protocol import Progress

if TYPE_CHECKING:  # pragma: no cover
    from visage.model.inference.pipeline import VideoToAmbisonics

ProgressCallback = Callable[[int, float, str], None]  # (job index in batch, fraction 0..1, stage)
FinishedCallback = Callable[[int, "Exception | None"], None]  # (job index in batch, error or None)


class GeneratorUnavailable(RuntimeError):
    """The model could not be loaded (missing weights offline, bad checkpoint, no such device)."""


class ShotFailed(RuntimeError):
    """The engine in this process failed a shot; ``code`` is the error code a daemon would send."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ShotJob:
    """One shot to generate.

    Attributes:
        media: the video file (absolute).
        start_s: media seconds where the shot's media starts.
        end_s: media seconds where it ends.
        yaw_deg: camera yaw (AmbiX, positive left), used when there is no curve.
        pitch_deg: camera pitch (positive up).
        curve: a direction-curve file (absolute), overriding yaw/pitch over time.
        seed: sampling seed.
        output: the WAV to write (absolute).
    """

    media: Path
    start_s: float
    end_s: float
    yaw_deg: float
    pitch_deg: float
    curve: Path | None
    seed: int
    output: Path


@dataclass(frozen=True)
class GenerationSettings:
    """Options shared by every shot of a run (``equirect``, ``look``: 360° media, see ``--equirect``)."""

    guidance_mode: str = "joint"
    guidance_scale: float = 2.5
    sample_rate: int = 48000
    subtype: str = "PCM_24"  # or "FLOAT"
    equirect: bool = False
    look: str | None = None


class ShotGenerator(Protocol):
    """Generates batches of shots; ``model_id`` names the weights in keys and metadata."""

    model_id: str

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        """Generate ``jobs``; call ``finished(i, error)`` exactly once per job, as soon as it ends."""
        ...  # pragma: no cover


# Recorded under "request" in each sidecar a run makes without a daemon (here or on Ray actors).
LOCAL_METADATA: Mapping[str, object] = {"visage_fill": True}


def engine_options(settings: GenerationSettings) -> dict[str, object]:
    """The engine options of every shot (``GenerateSpec.extra``), sent to a daemon or the local engine."""
    extra: dict[str, object] = {"binaural_preview": False}  # the edit references the AmbiX files only
    if settings.guidance_mode != "joint":
        extra["guidance_mode"] = settings.guidance_mode
    if settings.subtype == "FLOAT":
        extra["format"] = "float"
    if settings.equirect:
        extra["equirect"] = True
    if settings.look is not None:
        extra["look"] = settings.look
    return extra


def shot_specs(jobs: Sequence[ShotJob], settings: GenerationSettings) -> list[GenerateSpec]:
    """The engine's specs for ``jobs``, each with the run's settings (as a daemon would receive them)."""
    extra = engine_options(settings)
    return [
        GenerateSpec(
            media=job.media,
            start=job.start_s,
            end=job.end_s,
            yaw=job.yaw_deg,
            pitch=job.pitch_deg,
            direction_curve=job.curve,
            guidance=settings.guidance_scale,
            seed=job.seed,
            sample_rate=settings.sample_rate,
            output=job.output,  # replaced if there: its name is the shot's key (same key, same audio)
            extra=extra,
        )
        for job in jobs
    ]


def load_engine(model_id: str, device: str, metadata: Mapping[str, object] | None) -> Engine:
    """The daemon's engine for ``model_id`` in this process (``metadata``: see `VisageEngine`).

    Raises:
        GeneratorUnavailable: loading failed; the message says why.
    """
    from visage.model.inference.daemon_engine import create_engine

    try:
        return create_engine(model_id, device, metadata=metadata)
    except Exception as exc:  # weights, network, device: one line for the user
        raise GeneratorUnavailable(f"cannot load {model_id}: {exc}") from exc


def run_specs(
    engine: Engine,
    specs: Sequence[GenerateSpec],
    progress: ProgressCallback,
    finished: FinishedCallback,
    cancelled: Callable[[int], bool],
) -> None:
    """Run ``specs`` as one engine batch, calling ``finished(i, error)`` once per spec: as soon as its
    file is in place (the pipeline reports "write" 1.0 then), or with its outcome's `ShotFailed`."""
    reported: set[int] = set()

    def on_progress(i: int, fraction: float, stage: str) -> None:
        progress(i, fraction, stage)
        if stage == "write" and fraction >= 1.0 and i not in reported:
            reported.add(i)
            finished(i, None)

    outcomes = engine.run_batch(specs, on_progress, cancelled)
    for i, outcome in enumerate(outcomes):
        if i not in reported:
            error = None if isinstance(outcome, JobDone) else ShotFailed(outcome.code, outcome.message)
            finished(i, error)


class LocalGenerator:
    """Runs the daemon's engine (``visage serve``'s `VisageEngine`) in this process, loaded on the first
    batch unless a pipeline is given.

    Args:
        settings: guidance, sample rate and format.
        checkpoint: what the engine factory loads: a repo id or folder, ``tiny-random`` for the offline
            test models, None for the released checkpoint.
        device: torch device (``auto``, ``cpu``, ``cuda``, ...).
        pipeline: an already loaded pipeline to wrap in the engine (tests share one per session).
    """

    def __init__(
        self,
        settings: GenerationSettings,
        *,
        checkpoint: str | None = None,
        device: str = "auto",
        pipeline: VideoToAmbisonics | None = None,
    ) -> None:
        self.settings = settings
        self.device = device
        self.model_id: str = pipeline.checkpoint if pipeline is not None else model_name(checkpoint)
        self._engine: Engine | None = None
        if pipeline is not None:
            from visage.model.inference.daemon_engine import VisageEngine

            self._engine = VisageEngine(pipeline, self.model_id, metadata=LOCAL_METADATA)

    def engine(self) -> Engine:
        """The loaded engine (loads it on first use).

        Raises:
            GeneratorUnavailable: loading failed; the message says why.
        """
        if self._engine is None:
            self._engine = load_engine(self.model_id, self.device, LOCAL_METADATA)
        return self._engine

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        run_specs(self.engine(), shot_specs(jobs, self.settings), progress, finished, lambda i: False)


def model_name(checkpoint: str | None) -> str:
    """The model a run names in its keys and records: ``checkpoint``, or the released one for None."""
    if checkpoint is None:
        from visage.model.network.checkpoint import DEFAULT_REPO_ID

        return DEFAULT_REPO_ID
    return checkpoint


@runtime_checkable
class GroupsRuns(Protocol):
    """A generator that can show a run's jobs as one group (a daemon's web page does)."""

    def begin_run(self, label: str, total: int) -> None:
        """The next jobs belong to one run called ``label``, of ``total`` jobs."""
        ...  # pragma: no cover


class DaemonGenerator:
    """Sends shots to a running daemon (``visage serve``) and waits for them.

    Paths sent are absolute; the daemon refuses media or outputs outside its ``--allow-dir`` folders
    (``path_not_allowed``), which fails those shots with the daemon's message.

    Args:
        settings: guidance, sample rate and format.
        address: the daemon (`client.find_daemon`).
        token: the daemon's token, if it needs one (default ``$VISAGE_TOKEN``).
        timeout_s: how long a request may go unanswered.
        command: the stage that runs it (``fill``, ``batch``): a run's group id on the daemon is
            ``<command>:<label>:<run id>`` (see `begin_run`).
    """

    def __init__(
        self,
        settings: GenerationSettings,
        address: DaemonAddress,
        *,
        token: str | None = None,
        timeout_s: float | None = None,
        command: str = "fill",
    ) -> None:
        self.settings = settings
        self.address = address
        self.token = token
        self.timeout_s = timeout_s
        self.command = command
        self._group: dict[str, object] = {}
        with self._client() as client:
            self.model_id = client.ping().model_id

    def _client(self) -> VisageClient:
        return VisageClient(self.address, token=self.token, timeout_s=self.timeout_s)

    def begin_run(self, label: str, total: int) -> None:
        """Send the next jobs as one group: the daemon's web page shows the run's counts and time left."""
        run_id = uuid.uuid4().hex[:8]
        self._group = {
            "group": f"{self.command}:{label}:{run_id}"[: const.MAX_GROUP_CHARS],
            "group_label": f"{self.command} {label}"[: const.MAX_GROUP_CHARS],
            "group_total": total,
        }

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        # The group options travel with the engine's but the daemon keeps them with the job
        # (osc_protocol.GenerateOptions): they change neither the audio nor its cache key.
        extra = {**engine_options(self.settings), **self._group}
        ended: set[int] = set()

        def end(i: int, error: Exception | None) -> None:
            ended.add(i)
            finished(i, error)

        with self._client() as client:
            submitted: list[tuple[int, str]] = []
            try:
                for i, job in enumerate(jobs):
                    try:
                        job_id = client.submit(
                            job.media,
                            yaw=job.yaw_deg,
                            pitch=job.pitch_deg,
                            start=job.start_s,
                            end=job.end_s,
                            output=job.output,
                            guidance=self.settings.guidance_scale,
                            seed=job.seed,
                            sample_rate=self.settings.sample_rate,
                            direction_curve=job.curve,
                            overwrite=True,
                            extra=extra,
                        )
                    except JobFailed as exc:
                        end(i, exc)
                        continue
                    submitted.append((i, job_id))
                for i, job_id in submitted:

                    def report(event: Progress, i: int = i) -> None:
                        progress(i, event.fraction, event.stage)

                    try:
                        client.wait(job_id, progress=report)
                        end(i, None)
                    except JobFailed as exc:
                        end(i, exc)
            except DaemonUnavailable as exc:
                for i in range(len(jobs)):
                    if i not in ended:
                        end(i, exc)
            finally:
                for i, job_id in submitted:  # interrupted: do not leave our jobs running
                    if i not in ended:
                        try:
                            client.cancel(job_id)
                        except (DaemonUnavailable, JobFailed):
                            pass
