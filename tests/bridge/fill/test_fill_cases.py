"""`visage fill` on edits shaped as other tools write them: titles over the picture, tracks trimmed their
own way, a re-fill of its own FCP XML output, an engine returning short audio, EDLs the FCP XML writer
cannot hold, 29.97 non-drop EDLs. Generation is a stand-in that writes silent WAVs (no model)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf
from opentimelineio.opentime import RationalTime, TimeRange

from visage.bridge.fill.edit_files import EditFileError, drop_frame_of, read_edit
from visage.bridge.fill.fill_edit import FillOptions, FillReport, ShotStatus, fill_edit
from visage.bridge.fill.generators import GenerationSettings, ShotJob
from visage.bridge.fill.manifest import MANIFEST_NAME
from visage.bridge.fill.report import format_summary

SAMPLE_RATE = 8000
SETTINGS = GenerationSettings(sample_rate=SAMPLE_RATE)


class SilentWavs:
    """Writes a silent 4-channel WAV per job, ``seconds`` long (default: the job's own length)."""

    model_id = "silent"

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        self.jobs: list[ShotJob] = []

    def run(self, jobs: Sequence[ShotJob], progress, finished) -> None:  # type: ignore[no-untyped-def]
        for i, job in enumerate(jobs):
            self.jobs.append(job)
            seconds = self.seconds if self.seconds is not None else job.end_s - job.start_s
            sf.write(str(job.output), np.zeros((round(seconds * SAMPLE_RATE), 4), np.float32), SAMPLE_RATE)
            finished(i, None)


def _clip(name: str, frames: int, start: int = 0, rate: int = 24, **kwargs: object) -> otio.schema.Clip:
    reference = kwargs.pop(
        "reference",
        otio.schema.ExternalReference(
            f"/elsewhere/{name}.mov", TimeRange(RationalTime(0, rate), RationalTime(10**5, rate))
        ),
    )
    return otio.schema.Clip(
        name=name,
        media_reference=reference,
        source_range=TimeRange(RationalTime(start, rate), RationalTime(frames, rate)),
        **kwargs,
    )


def _generator(name: str, kind: str, frames: int, **metadata: object) -> otio.schema.Clip:
    return _clip(
        name, frames, reference=otio.schema.GeneratorReference(generator_kind=kind), metadata=metadata
    )


def _gap(frames: int) -> otio.schema.Gap:
    return otio.schema.Gap(duration=RationalTime(frames, 24))


def _fill(
    tmp_path: Path, tracks: list[otio.schema.Track], out: str = "out.otio", **options: object
) -> FillReport:
    """Write ``tracks`` as an edit, make a media file for every clip name, and fill it."""
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    timeline = otio.schema.Timeline(tracks=tracks, global_start_time=RationalTime(0, 24))
    for clip in timeline.find_clips():
        (media / f"{clip.name}.mov").write_bytes(clip.name.encode())
    edit = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(edit))
    generator = options.pop("generator", SilentWavs())
    fill_options = FillOptions(edit, tmp_path / out, media_roots=(media,), settings=SETTINGS, **options)  # type: ignore[arg-type]
    return fill_edit(fill_options, generator)  # type: ignore[arg-type]


def _audio_clips(path: Path) -> list[tuple[str, TimeRange]]:
    (track,) = read_edit(path).audio_tracks()
    return [(c.name, track.range_of_child(c)) for c in track if isinstance(c, otio.schema.Clip)]


def _frames(frames: int, start: int = 0) -> TimeRange:
    return TimeRange(RationalTime(start, 24), RationalTime(frames, 24))


# -- item 8: titles and other generators ------------------------------------------------------------


def test_a_title_with_alpha_over_the_edit_leaves_every_shot_its_audio(tmp_path: Path) -> None:
    # As reported: a "Slug"/title with an alpha channel spanning most of a six-shot edit.
    camera = otio.schema.Track(name="V1", children=[_clip(f"shot{i}", 10, 100 * i) for i in range(6)])
    title = otio.schema.Track(
        name="V2", children=[_gap(5), _generator("Slug", "Slug", 50, fcp_xml={"alphatype": "straight"})]
    )
    report = _fill(tmp_path, [camera, title])
    assert [(o.shot.name, o.status) for o in report.outcomes] == [
        (f"shot{i}", ShotStatus.GENERATED) for i in range(6)
    ]
    assert report.exit_code == 0
    assert [name for name, _ in _audio_clips(tmp_path / "out.otio")] == [f"shot{i} (AmbiX)" for i in range(6)]


def test_an_opaque_solid_that_hides_shots_is_reported(tmp_path: Path) -> None:
    camera = otio.schema.Track(name="V1", children=[_clip("a", 10), _clip("b", 10, 50)])
    black = otio.schema.Track(name="V2", children=[_gap(8), _generator("fade", "SolidColor", 4)])
    report = _fill(tmp_path, [camera, black])
    assert [(o.shot.name, o.status) for o in report.outcomes] == [
        ("a", ShotStatus.GENERATED),
        ("fade", ShotStatus.SKIPPED),
        ("b", ShotStatus.GENERATED),
    ]
    assert "it hides 'a', 'b' below it" in report.outcomes[1].message
    summary = format_summary(report)
    assert (
        "warning: 1 generated picture(s) hide video below them, which gets no audio there: 'a', 'b'"
        in summary
    )


# -- item 9: tracks trimmed differently -------------------------------------------------------------


def test_tracks_trimmed_differently_are_filled_in_the_stacks_time(tmp_path: Path) -> None:
    low = otio.schema.Track(name="V1", children=[_clip("low", 20, 100)])
    low.source_range = _frames(20, start=-4)  # its content starts 4 frames into the stack
    high = otio.schema.Track(name="V2", children=[_gap(10), _clip("high", 6)])
    high.source_range = _frames(12, start=4)  # its gap's last 6 frames, then high
    report = _fill(tmp_path, [low, high])
    assert report.exit_code == 0
    assert [(o.shot.name, o.shot.record, o.media_range_s) for o in report.outcomes] == [
        ("low", _frames(2, 4), (100 / 24, 102 / 24)),
        ("high", _frames(6, 6), (0.0, 6 / 24)),
        ("low", _frames(8, 12), (108 / 24, 116 / 24)),
    ]
    written = read_edit(tmp_path / "out.otio")
    (audio,) = written.audio_tracks()
    assert audio.source_range is None  # its clips are in the stack's time
    assert written.tracks.range_of_child(audio) == _frames(20)
    audio_clips = [r for _, r in _audio_clips(tmp_path / "out.otio")]
    assert audio_clips == [_frames(2, 4), _frames(6, 6), _frames(8, 12)]


# -- item 10: re-filling an FCP XML output ----------------------------------------------------------


def test_refilling_its_own_fcp_xml_output_replaces_the_ambix_track(tmp_path: Path) -> None:
    first = _fill(
        tmp_path, [otio.schema.Track(name="V1", children=[_clip("a", 10), _clip("b", 8, 40)])], "one.xml"
    )
    assert first.exit_code == 0
    once = read_edit(tmp_path / "one.xml")
    assert [t.name for t in once.audio_tracks()] == [""]  # FCP XML drops our track's name and metadata
    again = FillOptions(
        tmp_path / "one.xml",
        tmp_path / "two.xml",
        media_roots=(tmp_path / "media",),
        output_dir=tmp_path / "one.ambix",
        resume=True,
        settings=SETTINGS,
    )
    report = fill_edit(again, SilentWavs())
    assert {o.status for o in report.outcomes} == {ShotStatus.REUSED}
    twice = read_edit(tmp_path / "two.xml")
    assert len(twice.audio_tracks()) == 1
    assert _audio_clips(tmp_path / "two.xml") == _audio_clips(tmp_path / "one.xml")


def test_a_fill_result_is_known_by_its_sidecar_without_a_manifest(tmp_path: Path) -> None:
    _fill(tmp_path, [otio.schema.Track(name="V1", children=[_clip("a", 10)])], "one.xml")
    results = tmp_path / "one.ambix"
    (results / MANIFEST_NAME).unlink()  # e.g. results copied elsewhere without it
    for wav in results.glob("*.wav"):  # what the engine writes for a fill (its request metadata)
        sidecar = {"format": "AmbiX", "file": wav.name, "request": {"visage_fill": True}}
        (results / f"{wav.name}.json").write_text(json.dumps(sidecar))
    options = FillOptions(
        tmp_path / "one.xml", tmp_path / "two.xml", media_roots=(tmp_path / "media",), settings=SETTINGS
    )
    fill_edit(options, SilentWavs())
    assert len(read_edit(tmp_path / "two.xml").audio_tracks()) == 1


def test_an_audio_track_of_other_ambix_files_is_kept(tmp_path: Path) -> None:
    # A result of `visage generate` placed by the user has an AmbiX sidecar, but no fill made it.
    theirs = tmp_path / "theirs.wav"
    sf.write(str(theirs), np.zeros((800, 4), np.float32), SAMPLE_RATE)
    (tmp_path / "theirs.wav.json").write_text(json.dumps({"format": "AmbiX", "file": "theirs.wav"}))
    user_audio = otio.schema.Track(
        name="",
        kind=otio.schema.TrackKind.Audio,
        children=[
            _clip(
                "theirs",
                10,
                reference=otio.schema.ExternalReference(otio.url_utils.url_from_filepath(str(theirs))),
            )
        ],
    )
    video = otio.schema.Track(name="V1", children=[_clip("a", 10)])
    _fill(tmp_path, [video, user_audio])
    assert [len(t) for t in read_edit(tmp_path / "out.otio").audio_tracks()] == [1, 1]  # theirs, and ours


# -- item 12: results shorter than their shots ------------------------------------------------------


def test_a_result_shorter_than_its_shot_fails_the_shot(tmp_path: Path) -> None:
    track = otio.schema.Track(name="V1", children=[_clip("long", 48), _clip("short", 12, 100)])
    report = _fill(tmp_path, [track], generator=SilentWavs(seconds=1.0))  # an engine capped at 1 s
    assert [o.status for o in report.outcomes] == [ShotStatus.FAILED, ShotStatus.GENERATED]
    assert "holds 1.000 s of audio; the shot needs 2.000 s" in report.outcomes[0].message
    assert report.exit_code == 1
    assert [name for name, _ in _audio_clips(tmp_path / "out.otio")] == ["short (AmbiX)"]
    manifest = json.loads((tmp_path / "out.ambix" / MANIFEST_NAME).read_text())
    assert [r["file"] for r in manifest["results"].values()] == [report.outcomes[1].wav.name]


def test_a_short_result_of_an_earlier_run_is_made_again(tmp_path: Path) -> None:
    track = otio.schema.Track(name="V1", children=[_clip("long", 48)])
    first = _fill(tmp_path, [track])
    wav = first.outcomes[0].wav
    sf.write(str(wav), np.zeros((SAMPLE_RATE, 4), np.float32), SAMPLE_RATE)  # as an unchecked run left it
    manifest_path = tmp_path / "out.ambix" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    for result in manifest["results"].values():  # recorded as intact
        import hashlib

        result["sha256"] = hashlib.sha256(wav.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    options = FillOptions(tmp_path / "cut.otio", tmp_path / "again.otio", media_roots=(tmp_path / "media",))
    again = SilentWavs()
    report = fill_edit(
        FillOptions(
            **{**options.__dict__, "output_dir": tmp_path / "out.ambix", "resume": True, "settings": SETTINGS}
        ),
        again,
    )
    assert [o.status for o in report.outcomes] == [ShotStatus.GENERATED] and len(again.jobs) == 1
    assert sf.info(str(wav)).frames == 2 * SAMPLE_RATE


# -- shots that start inside a frame ----------------------------------------------------------------


def test_a_clip_starting_inside_a_frame_is_generated_from_its_source_in(tmp_path: Path) -> None:
    # A 48 fps clip of one frame fills half a 24 fps frame: the next clip starts mid-frame, at its
    # media's first frame. Its shot starts on the frame edge, half a frame before: clamped, not refused.
    track = otio.schema.Track(name="V1", children=[_clip("a", 1), _clip("half", 1, rate=48), _clip("b", 2)])
    report = _fill(tmp_path, [track])
    assert report.exit_code == 0, [o.message for o in report.outcomes]
    assert report.outcomes[-1].shot.name == "b" and report.outcomes[-1].media_range_s == (0.0, 2 / 24)


# -- item 13: EDLs --------------------------------------------------------------------------------

BLACK_THEN_CLIP_EDL = """TITLE:   black then a clip
FCM: NON-DROP FRAME
001  BL       V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00
002  TST      V     C        01:00:04:05 01:00:05:05 01:00:01:00 01:00:02:00
* FROM CLIP NAME:  clip_A
"""


def test_an_edl_the_fcp_xml_writer_cannot_hold_says_what(tmp_path: Path) -> None:
    edit = tmp_path / "black.edl"
    edit.write_text(BLACK_THEN_CLIP_EDL)
    (tmp_path / "TST.mov").write_bytes(b"tst")
    options = FillOptions(edit, tmp_path / "out.xml", media_roots=(tmp_path,), rate=24, settings=SETTINGS)
    generator = SilentWavs()
    with pytest.raises(
        EditFileError, match=r"clip '001' \(EDL reel BL\), a generated picture \(black\) that did not"
    ):
        fill_edit(options, generator)
    assert generator.jobs == [] and not (tmp_path / "out.xml").exists()  # refused before generating


def test_summary_timecodes_keep_a_non_drop_frame_edls_flag(tmp_path: Path) -> None:
    edit = tmp_path / "ntsc.edl"
    edit.write_text(BLACK_THEN_CLIP_EDL)
    (tmp_path / "TST.mov").write_bytes(b"tst")
    options = FillOptions(edit, tmp_path / "out.otio", media_roots=(tmp_path,), rate=29.97, settings=SETTINGS)
    summary = format_summary(fill_edit(options, SilentWavs()))
    assert "01:00:00:00-01:00:01:00" in summary and "01:00:01:00-01:00:02:00" in summary
    assert re.search(r"\d;\d", summary) is None


def test_summary_says_look_auto_instead_of_the_unused_direction(tmp_path: Path) -> None:
    """With --look auto the shots' yaw/pitch only stand where nothing moves: the table says so."""
    edit = tmp_path / "ntsc.edl"
    edit.write_text(BLACK_THEN_CLIP_EDL)
    (tmp_path / "TST.mov").write_bytes(b"tst")
    for look, says, never in ((None, "yaw 0 pitch 0", "look auto"), ("auto", "look auto", "yaw 0 pitch 0")):
        settings = GenerationSettings(sample_rate=SAMPLE_RATE, equirect=True, look=look)
        out = tmp_path / f"out-{look}.otio"
        options = FillOptions(edit, out, media_roots=(tmp_path,), rate=29.97, settings=settings)
        summary = format_summary(fill_edit(options, SilentWavs()))
        assert says in summary and never not in summary, summary


@pytest.mark.parametrize(
    ("text", "drop"),
    [
        ("FCM: NON-DROP FRAME\n001  A V C 01:00:00:00 01:00:01:00 01:00:00:00 01:00:01:00\n", False),
        ("FCM: DROP FRAME\n001  A V C 01:00:00;00 01:00:01;00 01:00:00;00 01:00:01;00\n", True),
        ("001  A V C 01:00:00;00 01:00:01;00 01:00:00;00 01:00:01;00\n", True),  # no FCM: the separators
        ("001  A V C 01:00:00:00 01:00:01:00 01:00:00:00 01:00:01:00\n", False),
    ],
)
def test_drop_frame_flag_of_an_edl(tmp_path: Path, text: str, drop: bool) -> None:
    edit = tmp_path / "cut.edl"
    edit.write_text("TITLE: t\n" + text)
    assert drop_frame_of(edit) is drop
    assert drop_frame_of(tmp_path / "cut.otio") is None  # OTIO does not record it
