"""`visage fill`: spatial audio for a whole edit, editorial file in, editorial file with an AmbiX track out.

The run, in order (each step's rules live in the module named):

1. read the edit with whatever OTIO adapter its suffix names (`edit_files`), and check before any work
   that the output can be written (its suffix has a writer; an existing file needs ``force``);
2. list the shots of the chosen video tracks (`otio_shots`), find each shot's media file
   (`media_relink`) and where its source range falls in that file (the reference's
   ``available_range``, else the file's start timecode, `media_timecode`), and its direction;
3. key each shot by content (`manifest`); with ``resume``, shots whose result is intact are reused;
4. generate the rest, ``jobs`` at a time, locally or on a daemon (`generators`), checking that each
   returned file holds its shot's length and recording it in the manifest at once, so an interrupted
   run loses only the shots in flight;
5. add the "Ambisonics (AmbiX)" track (`otio_ambisonics_track`) to a copy of the timeline, replacing the
   track of an earlier fill (known by name and metadata, or by its clips' media: WAVs this fill made),
   and write it atomically. The input file is never written.

A shot that cannot be made (no media, a range outside the file, a bad direction, the model failed, a
result shorter than the shot) is reported and left as a gap; the others go on. Generated pictures
(colour, bars) are skipped; one that hides the video below it (an opaque solid) names what it hides.
"""

from __future__ import annotations

import enum
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentimelineio as otio
from opentimelineio.opentime import RationalTime

from visage.model.files.result_files import REQUEST_KEY, sidecar_path

from .edit_files import check_writable, drop_frame_of, probe_write, read_edit, write_edit
from .generators import GenerationSettings, ShotGenerator, ShotJob
from .manifest import FillManifest, ManifestError, ShotOptions, result_file_name, seed_for, shot_key
from .media_relink import MediaFinder, MediaNotFound
from .media_timecode import read_start_timecode, timecode_origin
from .otio_ambisonics_track import (
    TRACK_NAME,
    FilledShot,
    Provenance,
    build_ambisonics_track,
    is_ambisonics_track,
)
from .otio_shots import (
    DirectionOverride,
    Shot,
    ShotList,
    choose_video_tracks,
    is_from_resolve,
    list_shots,
)
from .shot_generation import FillProgress, PlannedResult, generate_and_record, run_shot_options, short_result

_EPSILON_S = 1e-6  # media times this close to the file's start count as its start (float error)


class FillError(ValueError):
    """The run cannot start (unreadable edit, output exists, output folder holds another run, ...)."""


class ShotStatus(str, enum.Enum):
    PENDING = "pending"  # ready to generate
    GENERATED = "generated"
    REUSED = "reused"  # an intact result of an earlier run (--resume)
    SKIPPED = "skipped"  # nothing to generate (a colour or title generator)
    FAILED = "failed"


@dataclass(frozen=True)
class FillOptions:
    """One `visage fill` run.

    Attributes:
        edit: the editorial file to read (never written).
        output: the editorial file to write; its suffix picks the format.
        video_tracks: ``--video-track`` selectors (numbers from 1 = V1, or names); empty = all.
        yaw_deg: default camera yaw for shots whose metadata sets none.
        pitch_deg: default camera pitch.
        media_roots: folders searched for media by name.
        output_dir: where the WAVs and the manifest go; default ``<output stem>.ambix`` beside it.
        resume: reuse intact results of an earlier run in ``output_dir``.
        force: replace an existing output, and regenerate over an earlier run's results.
        jobs: shots generated together.
        rate: frame rate for EDLs (they do not record one).
        seed: sampling seed for every shot; None = one derived from each shot's content key.
        settings: guidance, sample rate, sample format.
    """

    edit: Path
    output: Path
    video_tracks: tuple[str, ...] = ()
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    media_roots: tuple[Path, ...] = ()
    output_dir: Path | None = None
    resume: bool = False
    force: bool = False
    jobs: int = 4
    rate: float | None = None
    seed: int | None = None
    settings: GenerationSettings = field(default_factory=GenerationSettings)

    @property
    def results_dir(self) -> Path:
        return self.output_dir or self.output.with_name(f"{self.output.stem}.ambix")


@dataclass
class ShotOutcome:
    """What happened to one shot.

    Attributes:
        shot: the shot.
        status: generated, reused, skipped or failed.
        message: why it failed or was skipped.
        media: the media file found, if any.
        media_range_s: the media seconds generated from.
        direction: ``{"yaw", "pitch"}`` or ``{"curve": path}``.
        wav: the result file.
        seed: the sampling seed.
        key: the content key.
    """

    shot: Shot
    status: ShotStatus = ShotStatus.FAILED
    message: str = ""
    media: Path | None = None
    media_range_s: tuple[float, float] | None = None
    direction: dict[str, Any] = field(default_factory=dict)
    wav: Path | None = None
    seed: int | None = None
    key: str = ""


@dataclass(frozen=True)
class FillReport:
    """The result of a run: every shot's outcome, and where things were written."""

    outcomes: tuple[ShotOutcome, ...]
    output: Path
    results_dir: Path
    rate: float
    start: RationalTime  # timeline time of record time 0 (global start time less the tracks' trim)
    resolve: bool
    model: str
    drop_frame: bool | None = None  # the edit's own timecode flag (an EDL's FCM); None: it does not say
    look: str | None = None  # "auto": each window looked where things move, not at the shot's yaw/pitch

    @property
    def failed(self) -> list[ShotOutcome]:
        return [o for o in self.outcomes if o.status is ShotStatus.FAILED]

    @property
    def exit_code(self) -> int:
        """0 when every shot has its audio (or needs none), 1 when any failed."""
        return 1 if self.failed else 0


def fill_edit(
    options: FillOptions,
    generator: ShotGenerator,
    progress: FillProgress | None = None,
) -> FillReport:
    """Run `visage fill` (see the module docstring).

    Raises:
        FillError: the run could not start; nothing was generated or written.
        EditFileError: the edit could not be read or the output written.
    """
    progress = progress or FillProgress()
    edit, output = options.edit, options.output
    if output.resolve() == edit.resolve():
        raise FillError(f"{output}: the output would replace the input edit; choose another name")
    timeline = read_edit(edit, rate=options.rate)
    check_writable(output, force=options.force)
    try:
        tracks = choose_video_tracks(timeline, options.video_tracks)
        rate = timeline.global_start_time.rate if timeline.global_start_time else None
        shots = list_shots(tracks, rate=rate)
    except ValueError as exc:
        raise FillError(f"{edit}: {exc}") from exc
    results_dir = options.results_dir
    manifest = FillManifest.load(results_dir)
    if manifest.results and not (options.resume or options.force):
        raise FillError(
            f"{results_dir} holds results of an earlier run: use --resume to keep them, "
            "--force to regenerate, or --output-dir for another folder"
        )
    shot_options = run_shot_options(options.settings, options.seed, generator)
    missing_roots = [str(r) for r in options.media_roots if not r.is_dir()]
    if missing_roots:
        raise FillError(f"--media-root: no such folder: {', '.join(missing_roots)}")
    finder = MediaFinder(edit.parent.absolute(), [r.absolute() for r in options.media_roots])
    defaults = DirectionOverride(options.yaw_deg, options.pitch_deg)
    outcomes = [
        _prepare(shot, finder, defaults, edit.parent.absolute(), manifest, shot_options, options)
        for shot in shots.shots
    ]
    resolve = is_from_resolve(timeline)
    planned = [o for o in outcomes if o.status in (ShotStatus.PENDING, ShotStatus.REUSED)]
    _check_format(_output_timeline(timeline, shots, planned, generator.model_id, options, resolve), output)
    results_dir.mkdir(parents=True, exist_ok=True)
    _generate(outcomes, generator, manifest, options.jobs, progress)
    done = [o for o in outcomes if o.status in (ShotStatus.GENERATED, ShotStatus.REUSED)]
    result = _output_timeline(timeline, shots, done, generator.model_id, options, resolve)
    write_edit(result, output, force=options.force)
    start = timeline.global_start_time or RationalTime(0, shots.rate)
    if shots.source_range is not None:  # records count in the tracks' content; a trimmed track shows
        start -= shots.source_range.start_time  # its source_range start at the timeline's start
    return FillReport(
        tuple(outcomes),
        output,
        results_dir,
        shots.rate,
        start,
        resolve,
        generator.model_id,
        drop_frame_of(edit),
        options.settings.look,
    )


def _prepare(
    shot: Shot,
    finder: MediaFinder,
    defaults: DirectionOverride,
    edit_dir: Path,
    manifest: FillManifest,
    shot_options: ShotOptions,
    options: FillOptions,
) -> ShotOutcome:
    """Resolve a shot's media, range, direction and key; failed, skipped, reused or ready to generate."""
    outcome = ShotOutcome(shot)
    if shot.generator:
        outcome.status, outcome.message = ShotStatus.SKIPPED, "generated picture (no camera to hear)"
        if shot.hides:
            hidden = ", ".join(repr(name) for name in shot.hides)
            outcome.message += f"; it hides {hidden} below it, which get no audio here"
        return outcome
    if shot.problem:
        outcome.message = shot.problem
        return outcome
    if shot.media.kind == "image_sequence":
        outcome.message = "image sequences are not supported; render the shot to a video file"
        return outcome
    try:
        media = finder.find(shot.media).absolute()
        outcome.media = media
        start_s, end_s = _media_seconds(shot, media)
        outcome.media_range_s = (start_s, end_s)
        direction, direction_key = _direction(shot.direction.under(defaults), edit_dir, manifest)
        outcome.direction = direction
        key = shot_key(manifest.media_sha256(media), start_s, end_s, direction_key, shot_options)
    except (MediaNotFound, ValueError, OSError) as exc:
        outcome.message = str(exc)
        return outcome
    outcome.key = key
    outcome.seed = seed_for(key, options.seed)
    outcome.wav = manifest.folder.absolute() / result_file_name(shot.name, key)
    outcome.status = ShotStatus.PENDING
    if options.resume and manifest.intact(key) is not None:
        reused = manifest.folder.absolute() / manifest.results[key].file
        if short_result(reused, end_s - start_s) is not None:
            return outcome  # made by a run that did not check lengths: generate it again
        outcome.status, outcome.wav = ShotStatus.REUSED, reused
    return outcome


def _media_seconds(shot: Shot, media: Path) -> tuple[float, float]:
    """The shot's media range in seconds from the file's first frame.

    Raises:
        ValueError: the range starts before the file does.
    """
    media_range = shot.media_range
    rate = media_range.start_time.rate
    origin = shot.media.origin
    how = "the edit's available range"
    if origin is None:
        timecode = read_start_timecode(media)
        origin = timecode_origin(timecode, rate) if timecode else RationalTime(0, rate)
        how = f"the file's start timecode {timecode}" if timecode else "the file (no start timecode)"
    start_s = (media_range.start_time - origin).to_seconds()
    # Shot edges are whole frames of the timeline: a clip starting inside a frame (media at another rate,
    # retimed nesting) has its shot start up to half a frame (times its speed) before its source in.
    slack = 0.5 / shot.record.duration.rate * max(1.0, abs(shot.speed)) + _EPSILON_S
    if start_s < -slack:
        try:
            source_in = otio.opentime.to_timecode(media_range.start_time, rate)
        except ValueError:  # a rate SMPTE timecode cannot express (15 fps): keep the real message
            source_in = f"{media_range.start_time.value:g}@{rate:g}"
        raise ValueError(
            f"the shot's source in {source_in} lies {-start_s:.3f} s before the first frame of {media.name} "
            f"(media start from {how})"
        )
    start_s = max(start_s, 0.0)
    return start_s, start_s + media_range.duration.to_seconds()


def _direction(
    override: DirectionOverride, edit_dir: Path, manifest: FillManifest
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(direction for jobs and metadata, direction for the key); curve paths are relative to the edit.

    Raises:
        ValueError: pitch outside [-90, 90] or a missing curve file.
    """
    if override.curve is not None:
        curve = Path(override.curve).expanduser()
        curve = curve if curve.is_absolute() else edit_dir / curve
        if not curve.is_file():
            raise ValueError(f"direction curve {curve} not found")
        return {"curve": str(curve)}, {"curve": manifest.media_sha256(curve)}
    yaw = override.yaw_deg or 0.0
    pitch = override.pitch_deg or 0.0
    if not (math.isfinite(yaw) and math.isfinite(pitch) and -90.0 <= pitch <= 90.0):
        raise ValueError(f"camera direction yaw {yaw}, pitch {pitch}: pitch must lie in [-90, 90] degrees")
    angles = {"yaw": yaw, "pitch": pitch}
    return angles, angles


def _generate(
    outcomes: list[ShotOutcome],
    generator: ShotGenerator,
    manifest: FillManifest,
    jobs: int,
    progress: FillProgress,
) -> None:
    """Generate every shot that still needs it, ``jobs`` at a time; shots with one key share one job."""
    by_key: dict[str, list[ShotOutcome]] = {}
    for outcome in outcomes:
        if outcome.status is ShotStatus.PENDING:
            by_key.setdefault(outcome.key, []).append(outcome)
    for group in by_key.values():
        for outcome in group[1:]:
            outcome.wav = group[0].wav  # one file for identical shots
    planned = [PlannedResult(key, group[0].shot.name, _job(group[0])) for key, group in by_key.items()]
    reused = sum(o.status is ShotStatus.REUSED for o in outcomes)
    problems = generate_and_record(planned, generator, manifest, jobs, progress, reused=reused)
    for key, group in by_key.items():
        for outcome in group:
            problem = problems[key]
            outcome.status = ShotStatus.GENERATED if problem is None else ShotStatus.FAILED
            outcome.message = problem or ""


def _job(outcome: ShotOutcome) -> ShotJob:
    assert outcome.media is not None and outcome.media_range_s is not None
    assert outcome.wav is not None and outcome.seed is not None
    curve = outcome.direction.get("curve")
    return ShotJob(
        media=outcome.media,
        start_s=outcome.media_range_s[0],
        end_s=outcome.media_range_s[1],
        yaw_deg=float(outcome.direction.get("yaw", 0.0)),
        pitch_deg=float(outcome.direction.get("pitch", 0.0)),
        curve=Path(curve) if curve else None,
        seed=outcome.seed,
        output=outcome.wav,
    )


def _output_timeline(
    timeline: otio.schema.Timeline,
    shots: ShotList,
    outcomes: list[ShotOutcome],
    model: str,
    options: FillOptions,
    resolve: bool,
) -> otio.schema.Timeline:
    """A copy of ``timeline`` with the Ambisonics track for ``outcomes`` (an earlier fill's replaced)."""
    filled = []
    for o in outcomes:
        assert o.wav is not None and o.media is not None and o.media_range_s is not None
        assert o.seed is not None
        start_s, end_s = o.media_range_s
        filled.append(FilledShot(o.shot, o.wav, o.media, start_s, end_s, o.direction, o.seed, o.key))
    provenance = Provenance(
        model=model,
        guidance_mode=options.settings.guidance_mode,
        guidance_scale=options.settings.guidance_scale,
        sample_rate=options.settings.sample_rate,
    )
    result = timeline.deepcopy()
    made_by_fill = _FillResults()
    earlier = [
        t for t in result.tracks if isinstance(t, otio.schema.Track) and is_ambisonics_track(t, made_by_fill)
    ]
    for track in earlier:
        result.tracks.remove(track)
    result.tracks.append(build_ambisonics_track(shots, filled, provenance, resolve=resolve))
    return result


class _FillResults:
    """Tells WAVs a fill made: listed in the fill manifest of their folder, or with a ``OUT.wav.json``
    sidecar that marks a fill result (``visage_fill``). A plain AmbiX result is not enough: a track the
    user placed must never be taken for ours and dropped."""

    def __init__(self) -> None:
        self._listed: dict[Path, set[str]] = {}  # folder -> result file names of its manifest

    def __call__(self, wav: Path) -> bool:
        if wav.suffix.lower() != ".wav" or not wav.is_file():
            return False
        return wav.name in self._manifest_files(wav.parent) or _sidecar_marks_fill(wav)

    def _manifest_files(self, folder: Path) -> set[str]:
        if folder not in self._listed:
            try:
                self._listed[folder] = {r.file for r in FillManifest.load(folder).results.values()}
            except ManifestError:
                self._listed[folder] = set()
        return self._listed[folder]


def _sidecar_marks_fill(wav: Path) -> bool:
    """The result's sidecar records a fill's request metadata (``{"visage_fill": true}``)."""
    try:
        document = json.loads(sidecar_path(wav).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    request = document.get(REQUEST_KEY) if isinstance(document, dict) else None
    return isinstance(request, dict) and request.get("visage_fill") is True


def _check_format(preview: otio.schema.Timeline, output: Path) -> None:
    """Before generating: the output format can write this edit and keeps the new track's clips.

    Raises:
        FillError: it drops them (an EDL has no place for them).
        EditFileError: its writer refuses the edit.
    """
    expected = Counter(clip.name for clip in preview.tracks[-1].find_clips())
    back = probe_write(preview, output)
    if back is None or not expected:
        return
    kept = Counter(clip.name for track in back.audio_tracks() for clip in track.find_clips())
    if expected - kept:
        raise FillError(
            f"{output}: the {output.suffix or 'chosen'} format does not keep the {TRACK_NAME} track's "
            "clips; write .otio, .otioz or .xml (FCP 7 XML) instead"
        )
