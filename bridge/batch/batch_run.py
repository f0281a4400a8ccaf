"""`visage batch`: a job list of clips in, one AmbiX WAV per clip out, with `visage fill`'s resume rules.

The run, in order:

1. read the job list (`job_list`): any bad row stops the run before anything is generated (after the
   rows that parsed are checked as below, so that every problem is reported in one go);
2. plan every clip: its media must be a readable video holding the range (an ``end`` left out is the
   media's end), its curve file a valid one; key it by content (`fill.manifest.shot_key`, the job's
   seed or ``--seed`` among the options) and name its output (the job's ``output``, else
   ``<media stem>_<key prefix>.wav``). Two jobs with one key, or one output, are an error, as is an
   existing file the folder's manifest does not list (a user's file) unless ``force``, or unless its
   sidecar says a run made it for this very clip without recording it (interrupted). All these problems
   are reported together, each with its line;
3. with ``resume``, a clip whose recorded result is its output file, intact (digest and length), is
   reused; the rest are generated ``jobs`` at a time, locally, on a daemon or on Ray
   (`fill.shot_generation`), each recorded in the manifest (``visage-fill.json``) the moment it is
   written, so an interrupted run loses only the clips in flight.

A clip the generator fails is reported and the others go on (exit status 1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from visage.bridge.fill.fill_edit import ShotStatus
from visage.bridge.fill.generators import GenerationSettings, ShotGenerator, ShotJob
from visage.bridge.fill.manifest import FillManifest, ShotOptions, result_file_name, seed_for, shot_key
from visage.bridge.fill.shot_generation import (
    FillProgress,
    PlannedResult,
    generate_and_record,
    run_shot_options,
    short_result,
)
from visage.model.files.result_files import (
    REQUEST_KEY,
    SAMPLING_KEY,
    SOURCE_KEY,
    CurveError,
    read_curve_file,
    sidecar_path,
    wrap_yaw,
)

from .job_list import BatchJob, JobListError, read_job_list

_END_SLACK_FRAMES = 0.5  # an end this many frames past the media's last frame still lies in it


class BatchError(ValueError):
    """The run cannot start (the output folder is a file, or holds results of an earlier run)."""


@dataclass(frozen=True)
class BatchOptions:
    """One `visage batch` run.

    Attributes:
        job_list: the ``.csv``/``.jsonl`` file of clips.
        output_dir: where the WAVs, their sidecars and the manifest go.
        yaw_deg: camera yaw of jobs that give no direction.
        pitch_deg: camera pitch of jobs that give no direction.
        seed: sampling seed of jobs that give none; None = one derived from each clip's content key.
        resume: reuse intact results of an earlier run in ``output_dir``.
        force: regenerate over an earlier run's results, and replace files it did not make.
        jobs: clips generated together.
        settings: guidance, sample rate, sample format.
    """

    job_list: Path
    output_dir: Path
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    seed: int | None = None
    resume: bool = False
    force: bool = False
    jobs: int = 4
    settings: GenerationSettings = field(default_factory=GenerationSettings)


@dataclass
class ClipOutcome:
    """What happened to one job.

    Attributes:
        job: the job.
        media_range_s: the media seconds generated from (an open ``end`` resolved).
        direction: ``{"yaw", "pitch"}`` or ``{"curve": path}``.
        key: the content key.
        seed: the sampling seed.
        wav: the result file (absolute).
        status: pending, generated, reused or failed.
        message: why it failed.
    """

    job: BatchJob
    media_range_s: tuple[float, float]
    direction: dict[str, Any]
    key: str
    seed: int
    wav: Path
    status: ShotStatus = ShotStatus.PENDING
    message: str = ""


@dataclass(frozen=True)
class BatchReport:
    """Every job's outcome, in job-list order, and where they went."""

    outcomes: tuple[ClipOutcome, ...]
    output_dir: Path
    model: str
    look: str | None = None  # "auto": each window looked where things move, not at the job's yaw/pitch

    @property
    def failed(self) -> list[ClipOutcome]:
        return [o for o in self.outcomes if o.status is ShotStatus.FAILED]

    @property
    def exit_code(self) -> int:
        """0 when every clip has its file, 1 when any failed."""
        return 1 if self.failed else 0


def run_batch_jobs(
    options: BatchOptions, generator: ShotGenerator, progress: FillProgress | None = None
) -> BatchReport:
    """Run `visage batch` (see the module docstring).

    Raises:
        JobListError: the job list, or a file it names, has problems; nothing was generated.
        BatchError: the output folder cannot take this run.
        ManifestError: the folder's manifest is not one this version wrote.
    """
    try:
        jobs, listed = read_job_list(options.job_list), []
    except JobListError as exc:
        if not exc.jobs:
            raise
        jobs, listed = exc.jobs, exc.problems
    folder = options.output_dir
    if folder.exists() and not folder.is_dir():
        raise BatchError(f"{folder}: not a folder")
    manifest = FillManifest.load(folder)
    if manifest.results and not (options.resume or options.force):
        raise BatchError(
            f"{folder} holds results of an earlier run: use --resume to keep them, "
            "--force to regenerate, or another folder"
        )
    shot_options = run_shot_options(options.settings, options.seed, generator)
    outcomes = _plan(jobs, str(options.job_list), manifest, shot_options, options, listed)
    pending = [o for o in outcomes if o.status is ShotStatus.PENDING]
    for outcome in pending:
        outcome.wav.parent.mkdir(parents=True, exist_ok=True)
    planned = [PlannedResult(o.key, f"{o.job.line}: {o.job.media.name}", _shot_job(o)) for o in pending]
    reused = len(outcomes) - len(pending)
    progress = progress or FillProgress()
    problems = generate_and_record(
        planned, generator, manifest, options.jobs, progress, reused=reused, noun="clip"
    )
    for outcome in pending:
        problem = problems[outcome.key]
        outcome.status = ShotStatus.GENERATED if problem is None else ShotStatus.FAILED
        outcome.message = problem or ""
    return BatchReport(tuple(outcomes), folder, generator.model_id, options.settings.look)


def _plan(
    jobs: list[BatchJob],
    name: str,
    manifest: FillManifest,
    shot_options: ShotOptions,
    options: BatchOptions,
    listed: list[str],
) -> list[ClipOutcome]:
    """Each job's range, direction, key and output; reused or pending.

    Raises:
        JobListError: every job that cannot run, with its line, merged in line order with ``listed``
            (the job list's own problems).
    """
    problems: list[str] = list(listed)
    outcomes: list[ClipOutcome] = []
    durations: dict[Path, tuple[float, float]] = {}  # media -> (duration, slack), probed once per file
    keys: dict[str, int] = {}  # key -> first line with it
    outputs: dict[str, int] = {}  # case-folded output -> first line writing it
    ours = {result.file.casefold() for result in manifest.results.values()}
    folder = manifest.folder.absolute()
    for job in jobs:
        where = f"{name}:{job.line}"
        try:
            media_range = _media_range(job, durations)
            direction, direction_key = _direction(job, options, manifest)
            seed = job.seed if job.seed is not None else options.seed
            key = shot_key(
                manifest.media_sha256(job.media),
                *media_range,
                direction_key,
                replace(shot_options, seed=seed),
            )
        except _JobProblem as exc:
            problems.append(f"{where}: {exc}")
            continue
        except OSError as exc:
            problems.append(f"{where}: field 'media': cannot read {job.media}: {exc.strerror or exc}")
            continue
        relative = job.output.as_posix() if job.output is not None else result_file_name(job.media.stem, key)
        outcome = ClipOutcome(job, media_range, direction, key, seed_for(key, seed), folder / relative)
        if key in keys:
            problems.append(
                f"{where}: the same clip as line {keys[key]} (media, range, direction and seed): "
                "drop it or give it another seed"
            )
            continue
        keys[key] = job.line
        if relative.casefold() in outputs:
            problems.append(
                f"{where}: output {relative} is also written by line {outputs[relative.casefold()]}"
            )
            continue
        outputs[relative.casefold()] = job.line
        recorded = manifest.intact(key) if options.resume else None
        needed_s = media_range[1] - media_range[0]
        if recorded is not None and recorded.file == relative and short_result(outcome.wav, needed_s) is None:
            outcome.status = ShotStatus.REUSED
        elif relative.casefold() not in ours and not options.force and not _unrecorded_result(outcome):
            existing = [p for p in (outcome.wav, sidecar_path(outcome.wav)) if p.exists()]
            if existing:
                problems.append(
                    f"{where}: {existing[0]} exists and no earlier run of this batch made it; "
                    "use --force to replace it"
                )
                continue
        outcomes.append(outcome)
    if problems:
        at = re.compile(rf"{re.escape(name)}:(\d+):")
        raise JobListError(sorted(problems, key=lambda p: int(m[1]) if (m := at.match(p)) else 0))
    return outcomes


def _unrecorded_result(outcome: ClipOutcome) -> bool:
    """The output holds a result of this very clip that a run wrote but never recorded (interrupted, or
    killed, between the file and the manifest): its sidecar marks a fill/batch result (``visage_fill``)
    made from the job's media with its seed. Such a file is regenerated; any other is the user's."""
    try:
        document = json.loads(sidecar_path(outcome.wav).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(document, dict):
        return False
    request, source, sampling = (document.get(k) for k in (REQUEST_KEY, SOURCE_KEY, SAMPLING_KEY))
    return (
        isinstance(request, dict)
        and request.get("visage_fill") is True
        and isinstance(source, dict)
        and source.get("media") == str(outcome.job.media)
        and isinstance(sampling, dict)
        and sampling.get("seed") == outcome.seed
    )


class _JobProblem(ValueError):
    """A job that cannot run; the message names the field."""


def _media_range(job: BatchJob, durations: dict[Path, tuple[float, float]]) -> tuple[float, float]:
    """The job's media seconds, an open end resolved to the media's end; checked against the media."""
    from visage.model.files.video_io import VideoError, probe_video

    if job.media not in durations:
        if job.media.is_dir():
            raise _JobProblem(f"field 'media': {job.media} is a folder, not a video")
        if not job.media.is_file():
            raise _JobProblem(f"field 'media': {job.media} not found")
        try:
            info = probe_video(job.media)
        except VideoError as exc:
            raise _JobProblem(f"field 'media': {exc}") from None
        if not info.has_video or info.duration <= 0:
            raise _JobProblem(f"field 'media': {job.media} has no video to hear")
        slack = _END_SLACK_FRAMES / float(info.frame_rate) if info.frame_rate else 1e-3
        durations[job.media] = (info.duration, slack)
    duration, slack = durations[job.media]
    if job.start_s >= duration:
        raise _JobProblem(
            f"field 'start': {job.start_s:g} s is not before the end of {job.media.name} ({duration:.3f} s)"
        )
    if job.end_s is None:
        return job.start_s, duration
    if job.end_s > duration + slack:
        raise _JobProblem(
            f"field 'end': {job.end_s:g} s is past the end of {job.media.name} ({duration:.3f} s)"
        )
    return job.start_s, job.end_s


def _direction(
    job: BatchJob, options: BatchOptions, manifest: FillManifest
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(direction for the job and the summary, direction for the key): angles, or the curve's digest."""
    if job.curve is not None:
        try:
            read_curve_file(job.curve)
        except CurveError as exc:
            raise _JobProblem(f"field 'direction_curve': {exc}") from None
        return {"curve": str(job.curve)}, {"curve": manifest.media_sha256(job.curve)}
    yaw = job.yaw_deg if job.yaw_deg is not None else wrap_yaw(options.yaw_deg)
    pitch = job.pitch_deg if job.pitch_deg is not None else options.pitch_deg
    angles = {"yaw": yaw, "pitch": pitch}
    return angles, angles


def _shot_job(outcome: ClipOutcome) -> ShotJob:
    curve = outcome.direction.get("curve")
    return ShotJob(
        media=outcome.job.media,
        start_s=outcome.media_range_s[0],
        end_s=outcome.media_range_s[1],
        yaw_deg=float(outcome.direction.get("yaw", 0.0)),
        pitch_deg=float(outcome.direction.get("pitch", 0.0)),
        curve=Path(curve) if curve else None,
        seed=outcome.seed,
        output=outcome.wav,
    )
