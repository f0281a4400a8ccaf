"""Where `visage fill` gets its audio: the generate pipeline in this process, or a running daemon.

Both take a batch of `ShotJob` values and report each job's progress and end through callbacks, so the
fill loop can record a finished shot the moment its file is complete. ``--jobs N`` is the batch: N shots
share one pipeline call (their 5-s windows are generated together), or N jobs are queued on the daemon
at once (it batches them on its GPU). Only `LocalGenerator` imports torch, and only when it loads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from visage.bridge.client import DaemonAddress, DaemonUnavailable, JobFailed, VisageClient
from visage.bridge.osc_protocol import Progress

if TYPE_CHECKING:  # pragma: no cover
    from visage.model.inference.pipeline import VideoToAmbisonics

ProgressCallback = Callable[[int, float, str], None]  # (job index in batch, fraction 0..1, stage)
FinishedCallback = Callable[[int, "Exception | None"], None]  # (job index in batch, error or None)


class GeneratorUnavailable(RuntimeError):
    """The model could not be loaded (missing weights offline, bad checkpoint, no such device)."""


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
    """Options shared by every shot of a run."""

    guidance_mode: str = "joint"
    guidance_scale: float = 2.5
    sample_rate: int = 48000
    subtype: str = "PCM_24"  # or "FLOAT"


class ShotGenerator(Protocol):
    """Generates batches of shots; ``model_id`` names the weights in keys and metadata."""

    model_id: str

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        """Generate ``jobs``; call ``finished(i, error)`` exactly once per job, as soon as it ends."""
        ...  # pragma: no cover


class LocalGenerator:
    """Runs the generate pipeline in this process (loaded on the first batch unless given).

    Args:
        settings: guidance, sample rate and format.
        checkpoint: what `VideoToAmbisonics.load` loads: a repo id or folder, ``tiny-random`` for the
            offline test models, None for the released checkpoint.
        device: torch device (``auto``, ``cpu``, ``cuda``, ...).
        pipeline: an already loaded pipeline (tests share one per session).
    """

    def __init__(
        self,
        settings: GenerationSettings,
        *,
        checkpoint: str | None = None,
        device: str = "auto",
        pipeline: VideoToAmbisonics | None = None,
    ) -> None:
        if pipeline is None and checkpoint is None:
            from visage.model.network.checkpoint import DEFAULT_REPO_ID

            checkpoint = DEFAULT_REPO_ID
        self.settings = settings
        self.device = device
        self._pipeline = pipeline
        self.model_id: str = pipeline.checkpoint if pipeline is not None else str(checkpoint)

    def pipeline(self) -> VideoToAmbisonics:
        """The loaded pipeline (loads it on first use).

        Raises:
            GeneratorUnavailable: loading failed; the message says why.
        """
        if self._pipeline is None:
            from visage.model.inference.pipeline import VideoToAmbisonics

            try:
                self._pipeline = VideoToAmbisonics.load(self.model_id, device=self.device)
            except Exception as exc:  # weights, network, device: one line for the user
                raise GeneratorUnavailable(f"cannot load {self.model_id}: {exc}") from exc
        return self._pipeline

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        from visage.model.features.direction import CameraDirection, DirectionSource, load_direction_curve
        from visage.model.inference.pipeline import GenerationOutput, GenerationRequest
        from visage.model.network.generation import Guidance

        requests: list[GenerationRequest] = []
        index: list[int] = []  # job index of each request
        for i, job in enumerate(jobs):
            try:
                direction: DirectionSource = (
                    load_direction_curve(job.curve)
                    if job.curve is not None
                    else CameraDirection(job.yaw_deg, job.pitch_deg)
                )
                guidance = Guidance(self.settings.guidance_mode, self.settings.guidance_scale)
            except (ValueError, OSError) as exc:  # DirectionError is a ValueError
                finished(i, exc)
                continue
            requests.append(
                GenerationRequest(
                    media=job.media,
                    start=job.start_s,
                    end=job.end_s,
                    direction=direction,
                    guidance=guidance,
                    seed=job.seed,
                    output=job.output,
                    sample_rate=self.settings.sample_rate,
                    subtype=self.settings.subtype,
                    overwrite=True,  # the file name is the shot's content key: same key, same audio
                    metadata={"visage_fill": True},
                )
            )
            index.append(i)
        if not requests:
            return
        reported: set[int] = set()

        def on_progress(j: int, fraction: float, stage: str) -> None:
            progress(index[j], fraction, stage)
            if stage == "write" and fraction >= 1.0 and j not in reported:
                reported.add(j)  # the pipeline reports "write" 1.0 once the file is in place
                finished(index[j], None)

        results = self.pipeline().generate(requests, progress=on_progress)
        for j, result in enumerate(results):
            if j not in reported:
                finished(index[j], None if isinstance(result, GenerationOutput) else result)


class DaemonGenerator:
    """Sends shots to a running daemon (``visage serve``) and waits for them.

    Paths sent are absolute; the daemon refuses media or outputs outside its ``--allow-dir`` folders
    (``path_not_allowed``), which fails those shots with the daemon's message.

    Args:
        settings: guidance, sample rate and format.
        address: the daemon (`client.find_daemon`).
        token: the daemon's token, if it needs one (default ``$VISAGE_TOKEN``).
        timeout_s: how long a request may go unanswered.
    """

    def __init__(
        self,
        settings: GenerationSettings,
        address: DaemonAddress,
        *,
        token: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.address = address
        self.token = token
        self.timeout_s = timeout_s
        with self._client() as client:
            self.model_id = client.ping().model_id

    def _client(self) -> VisageClient:
        return VisageClient(self.address, token=self.token, timeout_s=self.timeout_s)

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        extra: dict[str, object] = {"binaural_preview": False}  # the edit references the AmbiX files only
        if self.settings.guidance_mode != "joint":
            extra["guidance_mode"] = self.settings.guidance_mode
        if self.settings.subtype == "FLOAT":
            extra["format"] = "float"
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
