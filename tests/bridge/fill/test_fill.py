"""`visage fill` end to end: every shared sample edit, resume, failing shots, formats, Resolve, daemons.

Videos are synthesised for the names each sample references (EDL sources get the start timecode their
source ranges count from); generation runs the offline tiny-random models (one pipeline per module).
The samples in ``../shared/otio_samples`` are read in place and checked byte-identical afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import av
import opentimelineio as otio
import pytest
import soundfile as sf
from bridge_fixtures import address_of, fake_settings, fast_engine
from media_factory import make_test_video
from opentimelineio.opentime import RationalTime, TimeRange

from visage.bridge.daemon import Daemon
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.fill.commands import add_fill_arguments, run_fill
from visage.bridge.fill.edit_files import read_edit
from visage.bridge.fill.fill_edit import (
    FillError,
    FillOptions,
    FillReport,
    ShotStatus,
    _media_seconds,
    fill_edit,
)
from visage.bridge.fill.generators import (
    DaemonGenerator,
    GenerationSettings,
    LocalGenerator,
    ShotGenerator,
    ShotJob,
)
from visage.bridge.fill.manifest import MANIFEST_NAME, ShotOptions, result_file_name, shot_key
from visage.bridge.fill.otio_ambisonics_track import TRACK_NAME
from visage.bridge.fill.otio_shots import choose_video_tracks, list_shots
from visage.bridge.fill.report import TqdmProgress, format_summary
from visage.model.inference.daemon_engine import VisageEngine
from visage.model.inference.pipeline import VideoToAmbisonics

SETTINGS = GenerationSettings()

# What each sample references: (file name, seconds, fps, start timecode or None). Names are what the
# edit gives (target base name, clip name or EDL reel); durations differ so every file is distinct.
MEDIA: dict[str, list[tuple[str, float, int, str | None]]] = {
    "simple_cut.otio": [
        ("titles.mov", 0.40, 24, None),
        ("wind-up.mov", 0.45, 24, None),
        ("punchline.mov", 0.50, 24, None),
        ("credits.mov", 0.55, 24, None),
    ],
    "clip_example.otio": [("Clip-001.mp4", 0.5, 24, None)],
    "transition_test.otio": [("A.mp4", 2.1, 24, None), ("B.mp4", 2.2, 24, None), ("C.mp4", 2.3, 24, None)],
    "nested_example.otio": [
        ("Normal Clip 1.mp4", 15.6, 24, None),
        ("Clip Inside A Stack 1.mp4", 17.0, 24, None),
        ("Normal Clip 2.mp4", 5.6, 24, None),
        ("Clip Inside A Stack 2.mp4", 19.0, 24, None),
        ("Normal Clip 3.mp4", 10.1, 24, None),
        ("Clip Inside A Track.mp4", 19.8, 24, None),
        ("Normal Clip 4.mp4", 15.7, 24, None),
    ],
    "multitrack.otio": [
        ("tech.fux (loop)-HD.mp4", 30.1, 24, None),
        ("out-b (loop)-HD.mp4", 30.2, 24, None),
        ("brokchrd (loop)-HD.mp4", 30.3, 24, None),
        ("t-hawk (loop)-HD.mp4", 20.1, 24, None),
        ("KOLL-HD.mp4", 26.8, 24, None),
    ],
    "25fps.edl": [
        ("sq001_s001.mov", 6.5, 25, "01:00:00:00"),
        ("sq001_s002.mov", 8.1, 25, "01:00:00:00"),
        ("sq001_s003.mov", 3.5, 25, "01:00:00:00"),
        ("sq001_s004.mov", 2.0, 25, "01:00:00:00"),
    ],
    "gap_test.edl": [
        ("shot1.mov", 1.1, 24, "00:10:00:00"),
        ("SHOT2.mov", 1.2, 24, "23:00:00:00"),  # found by the reel name
        ("shot3.mov", 1.3, 24, "10:00:00:00"),
    ],
    "dissolve_test.edl": [("TST.mov", 9.0, 24, "01:00:00:00")],  # one reel for both clips
}
RATES = {"25fps.edl": 25.0}
# multitrack's five shots hold 113 s of picture: it runs through a daemon with the fake engine
# (test_daemon_fills_the_multitrack_sample) to keep this module under a minute on two cores.
LOCAL_SAMPLES = sorted(set(MEDIA) - {"multitrack.otio"})


def make_video(path: Path, seconds: float, fps: int, timecode: str | None = None) -> Path:
    """A small synthetic video; with ``timecode``, a QuickTime file carrying that start timecode."""
    if timecode is None:
        return make_test_video(path, duration=seconds, fps=fps, size=(32, 24), gop=fps * 4).path
    plain = make_test_video(path.with_suffix(".plain.mp4"), duration=seconds, fps=fps, size=(32, 24)).path
    with av.open(str(plain)) as source, av.open(str(path), "w", format="mov") as target:
        target.metadata["timecode"] = timecode
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    plain.unlink()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of synthetic media per sample."""
    root = tmp_path_factory.mktemp("media")
    for sample, files in MEDIA.items():
        (root / sample).mkdir()
        for name, seconds, fps, timecode in files:
            make_video(root / sample / name, seconds, fps, timecode)
    return root


@pytest.fixture
def samples_untouched(otio_samples_dir: Path) -> Iterator[None]:
    """Fail a test that changes, adds or removes anything in the shared samples folder."""
    before = {p.name: sha256(p) for p in otio_samples_dir.iterdir()}
    yield
    assert {p.name: sha256(p) for p in otio_samples_dir.iterdir()} == before


@pytest.fixture
def local(pipeline: VideoToAmbisonics) -> LocalGenerator:
    return LocalGenerator(SETTINGS, pipeline=pipeline)


class Recording:
    """Wraps a generator: remembers every job, and can crash the run after ``crash_after`` shots."""

    def __init__(self, inner: ShotGenerator, crash_after: int | None = None) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.crash_after = crash_after
        self.jobs: list[ShotJob] = []
        self.finished = 0

    def run(self, jobs: Sequence[ShotJob], progress, finished) -> None:  # type: ignore[no-untyped-def]
        self.jobs.extend(jobs)

        def counted(i: int, error: Exception | None) -> None:
            finished(i, error)
            self.finished += 1
            if self.crash_after is not None and self.finished >= self.crash_after:
                raise KeyboardInterrupt  # the process dies between two shots

        self.inner.run(jobs, progress, counted)


def check_filled(edit: Path, out: Path, report: FillReport, rate: float | None = None) -> otio.schema.Track:
    """The invariants of every fill: one new audio track, clips exactly under their shots, gaps elsewhere,
    WAVs of the shots' length, the original tracks unchanged."""
    before, after = read_edit(edit, rate=rate), read_edit(out, rate=rate)
    assert len(after.tracks) == len(before.tracks) + 1
    for old, new in zip(before.tracks, after.tracks, strict=False):
        assert otio.adapters.write_to_string(new) == otio.adapters.write_to_string(old)
    track = after.tracks[-1]
    assert track.kind == otio.schema.TrackKind.Audio and track.name == TRACK_NAME
    video = choose_video_tracks(before, ())
    shots = list_shots(video)
    assert [o.shot for o in report.outcomes] == list(shots.shots)
    with_audio = [o for o in report.outcomes if o.status in (ShotStatus.GENERATED, ShotStatus.REUSED)]
    clips = [item for item in track if isinstance(item, otio.schema.Clip)]
    assert len(clips) == len(with_audio)
    assert all(isinstance(item, (otio.schema.Clip, otio.schema.Gap)) for item in track)
    for clip, outcome in zip(clips, with_audio, strict=True):
        record = track.range_of_child(clip)
        assert record == outcome.shot.record  # exact RationalTime values, timeline rate
        assert record.start_time.rate == shots.rate
        assert record.start_time.value == int(record.start_time.value)
        assert record.duration.value == int(record.duration.value) > 0
        wav = Path(otio.url_utils.filepath_from_url(clip.media_reference.target_url))
        info = sf.info(str(wav))
        seconds = record.duration.to_seconds() * (outcome.shot.speed or 1.0)
        assert (info.channels, info.samplerate) == (4, 48000)
        assert abs(info.frames - seconds * 48000) <= 1
        assert clip.metadata["visage"]["layout"]["format"] == "AmbiX"
    end = max(t.available_range().end_time_exclusive() for t in video)
    assert track.available_range().end_time_exclusive() == end
    assert track.source_range == video[0].source_range
    return track


@pytest.mark.parametrize("sample", LOCAL_SAMPLES)
def test_every_sample_gets_an_aligned_ambisonics_track(
    sample: str,
    otio_samples_dir: Path,
    media_root: Path,
    local: LocalGenerator,
    tmp_path: Path,
    samples_untouched: None,
) -> None:
    edit = otio_samples_dir / sample
    out = tmp_path / f"{edit.stem}.filled.otio"
    options = FillOptions(edit, out, media_roots=(media_root / sample,), rate=RATES.get(sample), jobs=8)
    report = fill_edit(options, local)
    assert [o.status for o in report.outcomes] == [ShotStatus.GENERATED] * len(report.outcomes)
    assert report.exit_code == 0 and not report.resolve
    check_filled(edit, out, report, RATES.get(sample))


def test_otio_in_fcp_xml_and_otioz_out(
    otio_samples_dir: Path, media_root: Path, local: LocalGenerator, tmp_path: Path, samples_untouched: None
) -> None:
    edit = otio_samples_dir / "transition_test.otio"
    common = {"media_roots": (media_root / "transition_test.otio",), "output_dir": tmp_path / "audio"}
    first = fill_edit(FillOptions(edit, tmp_path / "cut.xml", **common), local)
    # Same shots, same folder: the other formats reuse the WAVs instead of generating them again.
    bundle = fill_edit(FillOptions(edit, tmp_path / "cut.otioz", resume=True, **common), local)
    assert {o.status for o in bundle.outcomes} == {ShotStatus.REUSED}

    xml = read_edit(tmp_path / "cut.xml")  # FCP 7 XML keeps positions and file paths (not names, metadata)
    (audio,) = xml.audio_tracks()
    clips = [c for c in audio if isinstance(c, otio.schema.Clip)]
    assert [audio.range_of_child(c) for c in clips] == [o.shot.record for o in first.outcomes]
    assert [Path(otio.url_utils.filepath_from_url(c.media_reference.target_url)) for c in clips] == [
        o.wav for o in first.outcomes
    ]

    with zipfile.ZipFile(tmp_path / "cut.otioz") as archive:  # the bundle carries the WAVs
        assert {f"media/{o.wav.name}" for o in bundle.outcomes} <= set(archive.namelist())
    (tmp_path / "x").mkdir()
    extracted = otio.adapters.read_from_file(
        str(tmp_path / "cut.otioz"), extract_to_directory=str(tmp_path / "x")
    )
    (track,) = [t for t in extracted.audio_tracks() if t.name == TRACK_NAME]
    for clip in track.find_clips():
        path = tmp_path / "x" / otio.url_utils.filepath_from_url(clip.media_reference.target_url)
        assert sf.info(str(path)).channels == 4


def test_bundles_keep_ranges_of_media_not_on_this_machine(
    otio_samples_dir: Path, media_root: Path, local: LocalGenerator, tmp_path: Path, samples_untouched: None
) -> None:
    # simple_cut's clip 4 has no source_range: its duration comes from its (absent) file's available range
    edit = otio_samples_dir / "simple_cut.otio"
    out = tmp_path / "cut.otioz"
    fill_edit(FillOptions(edit, out, media_roots=(media_root / "simple_cut.otio",)), local)
    (tmp_path / "x").mkdir()
    back = otio.adapters.read_from_file(str(out), extract_to_directory=str(tmp_path / "x"))
    credits = back.video_tracks()[0][3]
    assert isinstance(credits.media_reference, otio.schema.MissingReference)
    assert credits.media_reference.metadata["original_target_url"] == "file:///folder/credits.mov"
    assert credits.trimmed_range() == TimeRange(RationalTime(100, 24), RationalTime(6, 24))


def test_edl_output_is_refused_before_generating(
    otio_samples_dir: Path, media_root: Path, local: LocalGenerator, tmp_path: Path, samples_untouched: None
) -> None:
    recording = Recording(local)
    edit = otio_samples_dir / "gap_test.edl"
    with pytest.raises(FillError, match="does not keep the Ambisonics"):
        fill_edit(FillOptions(edit, tmp_path / "out.edl", media_roots=(media_root / edit.name,)), recording)
    assert recording.jobs == [] and list(tmp_path.iterdir()) == []  # nothing written


def test_resume_after_a_crash_between_shots(
    otio_samples_dir: Path, media_root: Path, local: LocalGenerator, tmp_path: Path, samples_untouched: None
) -> None:
    edit = otio_samples_dir / "simple_cut.otio"
    out = tmp_path / "cut.otio"
    options = FillOptions(edit, out, media_roots=(media_root / "simple_cut.otio",), jobs=1, seed=5)
    crashing = Recording(local, crash_after=2)
    with pytest.raises(KeyboardInterrupt):
        fill_edit(options, crashing)
    assert not out.exists() and len(crashing.jobs) == 2
    kept = {job.output: (sha256(job.output), job.output.stat().st_mtime_ns) for job in crashing.jobs}
    manifest = json.loads((out.with_name("cut.ambix") / MANIFEST_NAME).read_text())
    assert len(manifest["results"]) == 2

    with pytest.raises(FillError, match="--resume"):  # an earlier run's results are never silently redone
        fill_edit(options, Recording(local))

    (tampered,) = [j.output for j in crashing.jobs[1:]]
    tampered.write_bytes(tampered.read_bytes()[:-4])  # a damaged result does not count
    again = Recording(local)
    report = fill_edit(replace(options, resume=True), again)
    assert [o.status for o in report.outcomes] == [
        ShotStatus.REUSED,
        ShotStatus.GENERATED,
        ShotStatus.GENERATED,
        ShotStatus.GENERATED,
    ]
    assert [j.output for j in again.jobs] == [o.wav for o in report.outcomes[1:]]
    first = crashing.jobs[0].output
    assert (sha256(first), first.stat().st_mtime_ns) == kept[first]  # untouched
    check_filled(edit, out, report)


def test_shots_that_cannot_be_made_leave_gaps(local: LocalGenerator, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "good.mov", 1.0, 24)
    make_video(media / "short.mov", 0.5, 24)
    make_video(media / "late.mov", 1.0, 24, "01:00:10:00")  # starts after the shot's source in
    (media / "broken.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + bytes(300))
    (tmp_path / "pan.json").write_text(json.dumps({"time": [0, 0.5], "yaw": [-90, 90], "pitch": [0, 10]}))

    def clip(name: str, start: int = 0, frames: int = 12, **metadata: object) -> otio.schema.Clip:
        return otio.schema.Clip(
            name=name,
            media_reference=otio.schema.MissingReference(),
            source_range=TimeRange(RationalTime(start, 24), RationalTime(frames, 24)),
            metadata={"visage": metadata} if metadata else {},
        )

    bars = otio.schema.Clip(
        name="bars",
        media_reference=otio.schema.GeneratorReference(generator_kind="SMPTEBars"),
        source_range=TimeRange(RationalTime(0, 24), RationalTime(6, 24)),
    )
    children = [
        clip("good", yaw=90.0),
        clip("absent"),
        clip("short", frames=24),
        clip("late", start=86400 + 24 * 5),
        clip("broken"),
        bars,
        clip("good", start=2, frames=6, pitch=120.0),
        clip("good", start=2, frames=6, direction_curve="pan.json"),
    ]
    timeline = otio.schema.Timeline(tracks=[otio.schema.Track(name="V1", children=children)])
    edit = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(edit))
    report = fill_edit(FillOptions(edit, tmp_path / "out.otio", media_roots=(media,)), local)

    by_index = {o.shot.index: o for o in report.outcomes}
    statuses = [o.status.value for o in report.outcomes]
    assert statuses == ["generated", "failed", "failed", "failed", "failed", "skipped", "failed", "generated"]
    assert "media not found" in by_index[1].message and "'absent'" in by_index[1].message
    assert "beyond the end of the video" in by_index[2].message
    assert "before the first frame of late.mov" in by_index[3].message
    assert "start timecode 01:00:10:00" in by_index[3].message
    assert "broken.mov" in by_index[4].message
    assert "pitch must lie in [-90, 90]" in by_index[6].message
    assert report.exit_code == 1
    track = check_filled(edit, tmp_path / "out.otio", report)
    good, curved = track.find_clips()
    sidecar = json.loads(Path(str(by_index[0].wav) + ".json").read_text())
    assert sidecar["direction"]["yaw_deg"] == 90.0  # the clip's metadata reached the model
    assert good.metadata["visage"]["direction"]["yaw"] == 90.0
    assert curved.metadata["visage"]["direction"]["curve"] == str(tmp_path / "pan.json")
    assert json.loads(Path(str(by_index[7].wav) + ".json").read_text())["direction"]["curve"] is True


def test_local_generation_runs_the_daemons_engine(local: LocalGenerator, tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mov", 1.0, 24)
    jobs = [
        ShotJob(video, 0.0, 0.5, 30.0, 0.0, None, 7, tmp_path / "a.wav"),
        ShotJob(video, 0.0, 0.5, 0.0, 120.0, None, 7, tmp_path / "b.wav"),
        ShotJob(video, 0.0, 5.0, 0.0, 0.0, None, 7, tmp_path / "c.wav"),
    ]
    ended: dict[int, Exception | None] = {}
    local.run(jobs, lambda *a: None, ended.__setitem__)
    assert ended[0] is None and set(ended) == {0, 1, 2}
    # the error codes a daemon answers with, so a shot fails alike with or without one
    assert [getattr(ended[i], "code", None) for i in (1, 2)] == ["bad_direction", "bad_range"]
    assert "pitch_deg must lie in [-90, 90]" in str(ended[1])
    sidecar = json.loads((tmp_path / "a.wav.json").read_text())
    assert sidecar["request"] == {"visage_fill": True} and sidecar["direction"]["yaw_deg"] == 30.0
    assert "preview" not in sidecar and not (tmp_path / "a.binaural.wav").exists()  # as the daemon is told


def test_progress_bars(
    otio_samples_dir: Path,
    media_root: Path,
    local: LocalGenerator,
    tmp_path: Path,
    monkeypatch,
    samples_untouched: None,
) -> None:
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # no monitor thread in tests
    stream = io.StringIO()
    edit = otio_samples_dir / "gap_test.edl"
    options = FillOptions(edit, tmp_path / "gap.otio", media_roots=(media_root / edit.name,), jobs=2)
    fill_edit(options, local, TqdmProgress(stream, enabled=True))
    text = stream.getvalue()
    assert "shots: 100%" in text and "3/3" in text  # the overall bar
    assert "shot1" in text and "generate" in text  # a bar per shot with its stage


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_fill_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_line(
    otio_samples_dir: Path,
    media_root: Path,
    local: LocalGenerator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    samples_untouched: None,
) -> None:
    edit = str(otio_samples_dir / "gap_test.edl")
    roots = ("--media-root", str(media_root / "gap_test.edl"))
    out = tmp_path / "gap.otio"
    assert run_fill(_args(edit, "-o", str(out), *roots, "--no-progress"), generator=local) == 0
    printed = capsys.readouterr().out
    assert "00:00:01:16-00:00:02:16" in printed and "3 generated" in printed  # shot 2's record timecodes
    assert run_fill(_args(edit, "-o", str(out), *roots, "--no-progress"), generator=local) == 2  # OUT exists
    assert "exists; use --force" in capsys.readouterr().err
    again = ("--force", "--resume", "--no-progress")
    assert run_fill(_args(edit, "-o", str(out), *roots, *again), generator=local) == 0
    assert "3 reused" in capsys.readouterr().out
    other = ("--force", "--output-dir", str(tmp_path / "b"), "--no-progress")
    assert run_fill(_args(edit, "-o", str(out), *other), generator=local) == 1
    assert "media not found" in capsys.readouterr().out  # no --media-root: every shot fails, reported
    assert run_fill(_args(edit, "-o", edit, "--force"), generator=local) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert run_fill(_args(edit, "-o", str(tmp_path / "x.otio"), "--video-track", "A1"), generator=local) == 2
    assert "no such video track" in capsys.readouterr().err
    assert run_fill(_args(edit, "-o", str(tmp_path / "x.otio"), "--jobs", "0"), generator=local) == 2
    typo = ("--media-root", str(tmp_path / "no such folder"))
    assert run_fill(_args(edit, "-o", str(tmp_path / "x.otio"), *typo), generator=local) == 2
    assert "--media-root: no such folder" in capsys.readouterr().err
    no_model = ("--daemon", "none", "--checkpoint", str(tmp_path / "no such checkpoint"), "--no-progress")
    assert run_fill(_args(edit, "-o", str(tmp_path / "y.otio"), *roots, *no_model)) == 2
    assert "cannot load" in capsys.readouterr().err


RESOLVE_EXPORT = """{
  "OTIO_SCHEMA": "Timeline.1",
  "metadata": {"Resolve_OTIO": {"Resolve OTIO Meta Version": "1.0"}},
  "name": "Timeline 1",
  "global_start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 86400.0},
  "tracks": {"OTIO_SCHEMA": "Stack.1", "metadata": {}, "name": "", "source_range": null, "effects": [],
    "markers": [], "enabled": true, "color": null, "children": [
    {"OTIO_SCHEMA": "Track.1", "metadata": {"Resolve_OTIO": {"Locked": false}}, "name": "Video 1",
     "source_range": null, "effects": [], "markers": [], "enabled": true, "color": null, "kind": "Video",
     "children": [
      {"OTIO_SCHEMA": "Clip.2", "metadata": {"Resolve_OTIO": {"Link Group ID": 1}}, "name": "cam A.mov",
       "source_range": {"OTIO_SCHEMA": "TimeRange.1",
         "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 86448.0},
         "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 30.0}},
       "effects": [], "markers": [], "enabled": true, "color": null,
       "media_references": {"DEFAULT_MEDIA": {"OTIO_SCHEMA": "ExternalReference.1", "metadata": {},
         "name": "cam A.mov", "target_url": "MEDIA/cam A.mov", "available_image_bounds": null,
         "available_range": {"OTIO_SCHEMA": "TimeRange.1",
           "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 86400.0},
           "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 96.0}}}},
       "active_media_reference_key": "DEFAULT_MEDIA"},
      {"OTIO_SCHEMA": "Gap.1", "metadata": {}, "name": "", "effects": [], "markers": [], "enabled": true,
       "color": null, "source_range": {"OTIO_SCHEMA": "TimeRange.1",
         "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 0.0},
         "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 12.0}}}
    ]},
    {"OTIO_SCHEMA": "Track.1", "metadata": {"Resolve_OTIO": {"Audio Type": "Stereo", "Locked": false,
     "SoloOn": false}}, "name": "Audio 1", "source_range": null, "effects": [], "markers": [],
     "enabled": true, "color": null, "kind": "Audio", "children": []}
  ]}
}"""


def test_an_edit_from_resolve_keeps_resolves_shapes(local: LocalGenerator, tmp_path: Path) -> None:
    # Modelled on the shapes documented in hosts_and_formats §2.5 (not an export made by Resolve here).
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "cam A.mov", 4.0, 24)
    edit = tmp_path / "from resolve.otio"
    edit.write_text(RESOLVE_EXPORT.replace("MEDIA/", media.as_posix() + "/"))
    out = tmp_path / "to resolve.otio"
    report = fill_edit(FillOptions(edit, out), local)
    assert report.resolve and [o.status for o in report.outcomes] == [ShotStatus.GENERATED]
    assert report.outcomes[0].media_range_s == pytest.approx((2.0, 3.25))  # 86448 - 86400 frames = 2 s
    track = check_filled(edit, out, report)
    written = json.loads(out.read_text())
    assert written["global_start_time"]["value"] == 86400.0
    (clip,) = track.find_clips()
    url = clip.media_reference.target_url
    assert not url.startswith("file:") and Path(url).is_file()  # a bare path, as Resolve writes them
    assert clip.media_reference.available_range.duration == RationalTime(30, 24)
    assert len(clip.metadata["Resolve_OTIO"]["Channels"]) == 4
    raw = written["tracks"]["children"][-1]["children"][0]
    assert raw["OTIO_SCHEMA"] == "Clip.2" and raw["active_media_reference_key"] == "DEFAULT_MEDIA"


def test_daemon_mode_with_the_real_engine(
    otio_samples_dir: Path,
    media_root: Path,
    pipeline: VideoToAmbisonics,
    tmp_path: Path,
    samples_untouched: None,
) -> None:
    edit = otio_samples_dir / "simple_cut.otio"
    roots = (media_root / "simple_cut.otio",)
    settings = fake_settings(tmp_path, model="tiny-random", allow_dirs=(tmp_path, media_root))
    with Daemon(settings, VisageEngine(pipeline, "tiny-random")) as daemon:
        generator = DaemonGenerator(SETTINGS, address_of(daemon))
        assert generator.model_id == "tiny-random"
        report = fill_edit(FillOptions(edit, tmp_path / "cut.otio", media_roots=roots, seed=3), generator)
    assert report.exit_code == 0 and report.model == "tiny-random"
    check_filled(edit, tmp_path / "cut.otio", report)
    # the same shots made here, in this process, give the same keys and file names
    here = fill_edit(
        FillOptions(edit, tmp_path / "here.otio", media_roots=roots, seed=3, output_dir=tmp_path / "here"),
        LocalGenerator(SETTINGS, pipeline=pipeline),
    )
    assert [o.wav.name for o in here.outcomes] == [o.wav.name for o in report.outcomes]


def test_daemon_fills_the_multitrack_sample(
    otio_samples_dir: Path, media_root: Path, tmp_path: Path, samples_untouched: None
) -> None:
    edit = otio_samples_dir / "multitrack.otio"
    settings = fake_settings(tmp_path, allow_dirs=(tmp_path, media_root))
    sent: list[dict] = []

    class RecordingEngine(FakeEngine):
        def run_batch(self, specs, progress, cancelled):  # type: ignore[no-untyped-def]
            sent.extend(dict(spec.extra) for spec in specs)
            return super().run_batch(specs, progress, cancelled)

    engine = RecordingEngine(FakeSettings(delay_s=0.0, steps=1, seconds=60.0))
    with Daemon(settings, engine) as daemon:
        generator = DaemonGenerator(SETTINGS, address_of(daemon))
        options = FillOptions(edit, tmp_path / "multi.otio", media_roots=(media_root / "multitrack.otio",))
        report = fill_edit(options, generator)
    assert report.exit_code == 0, [o.message for o in report.outcomes]
    assert sent and all(extra == {"binaural_preview": False} for extra in sent)  # the edit needs no preview
    track = check_filled(edit, tmp_path / "multi.otio", report)
    assert [c.metadata["visage"]["source"]["track"] for c in track.find_clips()] == [
        "Sequence",
        "Sequence 2",
        "Sequence",
        "Sequence 3",
        "Sequence",
    ]


def test_daemon_refusals_fail_only_their_shots(
    otio_samples_dir: Path, media_root: Path, tmp_path: Path, samples_untouched: None
) -> None:
    edit = otio_samples_dir / "simple_cut.otio"
    settings = fake_settings(tmp_path)  # the media folder is not allowed
    with Daemon(settings, fast_engine()) as daemon:
        generator = DaemonGenerator(SETTINGS, address_of(daemon))
        options = FillOptions(edit, tmp_path / "cut.otio", media_roots=(media_root / "simple_cut.otio",))
        report = fill_edit(options, generator)
    assert {o.status for o in report.outcomes} == {ShotStatus.FAILED}
    assert all("path_not_allowed" in o.message for o in report.outcomes)
    assert report.exit_code == 1 and (tmp_path / "cut.otio").exists()


def test_shot_keys() -> None:
    options = ShotOptions("joint", 2.5, None, "tiny-random", 48000, "PCM_24")
    key = shot_key("m" * 64, 1.0, 2.0, {"yaw": 10.0, "pitch": 0.0}, options)
    assert key == shot_key("m" * 64, 1.0 + 1e-9, 2.0, {"yaw": 10.0, "pitch": 0.0}, options)
    others = [
        shot_key("n" * 64, 1.0, 2.0, {"yaw": 10.0, "pitch": 0.0}, options),
        shot_key("m" * 64, 1.0, 2.5, {"yaw": 10.0, "pitch": 0.0}, options),
        shot_key("m" * 64, 1.0, 2.0, {"yaw": 11.0, "pitch": 0.0}, options),
        shot_key("m" * 64, 1.0, 2.0, {"yaw": 10.0, "pitch": 0.0}, replace(options, guidance_scale=3.0)),
    ]
    assert key not in others
    assert result_file_name("tech.fux (loop)/HD: 1", key) == f"tech.fux_loop_HD_1_{key[:12]}.wav"


class _Unused:
    """A generator for runs in which every shot fails before generation."""

    model_id = "unused"

    def run(self, jobs, progress, finished) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("nothing should be generated")


def test_summary_timecodes_count_from_the_tracks_trim(otio_samples_dir: Path, tmp_path: Path) -> None:
    # The EDL reader keeps the record start 01:00:00:00 as the track's source_range (-86400 frames).
    edit = otio_samples_dir / "dissolve_test.edl"
    report = fill_edit(FillOptions(edit, tmp_path / "cut.otio", media_roots=(tmp_path,)), _Unused())
    assert report.outcomes[0].status is ShotStatus.FAILED  # no media here
    assert "01:00:00:00-01:00:00:09" in format_summary(report)


def test_a_source_before_the_file_at_a_non_smpte_rate_says_so(tmp_path: Path) -> None:
    # 15 fps media in a 30 fps edit (hosts_and_formats 4.2): no SMPTE timecode exists at 15 fps
    clip = otio.schema.Clip(
        name="early",
        media_reference=otio.schema.ExternalReference(
            "early.mov", TimeRange(RationalTime(30, 15), RationalTime(150, 15))
        ),
        source_range=TimeRange(RationalTime(15, 15), RationalTime(15, 15)),
    )
    shot = list_shots([otio.schema.Track(children=[clip])], rate=30).shots[0]
    with pytest.raises(ValueError, match=r"15@15 lies 1\.000 s before the first frame of early\.mov"):
        _media_seconds(shot, tmp_path / "early.mov")
