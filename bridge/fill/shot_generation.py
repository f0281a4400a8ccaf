"""The generate-and-record loop that `visage fill` and `visage batch` share.

Each planned result (one content key, one `ShotJob`) is generated ``jobs`` at a time by a `ShotGenerator`
(locally, on a daemon, ...). The moment a job ends, its file is checked (readable, as long as its media
range) and, when sound, recorded in the output folder's manifest, so an interrupted run loses only the
results in flight and ``--resume`` finds the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from visage.bridge.client import JobFailed
from visage.bridge.result_cache import file_sha256

from .generators import GenerationSettings, GroupsRuns, ShotGenerator, ShotJob
from .manifest import FillManifest, ShotOptions, ShotResult

_SHORT_RESULT_S = 1e-3  # a result this much shorter than its media range fails


def run_shot_options(settings: GenerationSettings, seed: int | None, generator: ShotGenerator) -> ShotOptions:
    """What a run's content keys hold besides each result's media, range and direction."""
    return ShotOptions(
        guidance_mode=settings.guidance_mode,
        guidance_scale=settings.guidance_scale,
        seed=seed,
        model=generator.model_id,
        sample_rate=settings.sample_rate,
        subtype=settings.subtype,
        equirect=settings.equirect,
        look=settings.look,
    )


class FillProgress:
    """Receives progress events; `report.TqdmProgress` draws them. This base class ignores them."""

    def start(self, total: int, done: int) -> None:
        """The run has ``total`` results to generate, ``done`` of them already finished (reused)."""

    def batch(self, labels: list[str]) -> None:
        """A batch of results (one label each) starts."""

    def update(self, index: int, fraction: float, stage: str) -> None:
        """Result ``index`` of the current batch is ``fraction`` done."""

    def finish(self, index: int, ok: bool) -> None:
        """Result ``index`` of the current batch ended."""

    def close(self) -> None:
        """The run is over."""


@dataclass(frozen=True)
class PlannedResult:
    """One result to generate.

    Attributes:
        key: its content key (`manifest.shot_key`); the manifest records it under this key.
        label: what the progress bars call it (a shot or clip name).
        job: what to generate; ``job.output`` lies in the manifest's folder.
    """

    key: str
    label: str
    job: ShotJob


def generate_and_record(
    planned: Sequence[PlannedResult],
    generator: ShotGenerator,
    manifest: FillManifest,
    jobs: int,
    progress: FillProgress,
    *,
    reused: int = 0,
    noun: str = "shot",
) -> dict[str, str | None]:
    """Generate ``planned``, ``jobs`` at a time, recording each sound result in ``manifest`` at once.

    Args:
        planned: the results, one per key.
        generator: where they are made.
        manifest: the output folder's manifest.
        jobs: results per generator batch.
        progress: receives progress events; closed at the end, interrupted or not.
        reused: results already there, for the progress display.
        noun: what a result stands for in messages ("shot", "clip").

    Returns:
        key -> None when its file was made and recorded, else why it failed.
    """
    problems: dict[str, str | None] = {}
    progress.start(len(planned), reused)
    if isinstance(generator, GroupsRuns):  # a daemon's web page shows the run as one group
        generator.begin_run(manifest.folder.name, len(planned))
    try:
        for first in range(0, len(planned), max(1, jobs)):
            batch = planned[first : first + max(1, jobs)]
            progress.batch([p.label for p in batch])

            def finished(i: int, error: Exception | None, batch: Sequence[PlannedResult] = batch) -> None:
                item = batch[i]
                needed_s = item.job.end_s - item.job.start_s
                problem: str | None
                if error is not None:
                    problem = job_error_message(error)
                else:
                    problem = short_result(item.job.output, needed_s, noun)
                if problem is None:
                    _record(manifest, item, generator.model_id)
                problems[item.key] = problem
                progress.finish(i, problem is None)

            generator.run([p.job for p in batch], progress.update, finished)
            for item in batch:  # a generator that forgot a job: never leave it looking done
                problems.setdefault(item.key, "no result")
    finally:
        progress.close()
    return problems


def short_result(wav: Path, needed_s: float, noun: str = "shot") -> str | None:
    """Why a result cannot stand for its ``noun`` (unreadable, or shorter than its ``needed_s`` of media),
    or None: it can."""
    import soundfile

    try:
        info = soundfile.info(str(wav))
    except (RuntimeError, OSError) as exc:  # soundfile reports unreadable files as RuntimeError
        return f"the result {wav.name} cannot be read: {exc}"
    seconds = info.frames / info.samplerate
    if seconds < needed_s - _SHORT_RESULT_S:
        return f"the result {wav.name} holds {seconds:.3f} s of audio; the {noun} needs {needed_s:.3f} s"
    return None


def job_error_message(error: Exception) -> str:
    """One line for a failed job: the daemon's error code and message, or the exception's text."""
    if isinstance(error, JobFailed):
        return f"daemon: {error.code}: {error.message}"
    text = str(error) or type(error).__name__
    return text if not text.startswith(("[Errno", "Errno")) else f"{type(error).__name__}: {text}"


def _record(manifest: FillManifest, item: PlannedResult, model: str) -> None:
    job = item.job
    file = job.output.absolute().relative_to(manifest.folder.absolute()).as_posix()
    result = ShotResult(file, file_sha256(job.output), job.seed, model, job.end_s - job.start_s)
    manifest.record(item.key, result)
