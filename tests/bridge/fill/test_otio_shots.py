"""Shots of real and generated edits: record positions, source ranges, layers, nesting, speed, metadata.

The expected positions below were read off each sample by hand (frame numbers at the timeline's rate);
the property test checks the flattening against a frame-by-frame "top clip wins" brute force.
"""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentimelineio.opentime import RationalTime, TimeRange

from visage.bridge.fill.edit_files import read_edit
from visage.bridge.fill.otio_shots import (
    DirectionOverride,
    ShotError,
    choose_video_tracks,
    is_from_resolve,
    list_shots,
    media_hint,
    read_direction,
)

# sample -> [(record start, record duration, source start, speed)] at the timeline's rate
EXPECTED: dict[str, list[tuple[float, float, float, float]]] = {
    "simple_cut.otio": [(0, 3, 3, 1), (3, 6, 2, 1), (9, 4, 0, 1), (13, 6, 100, 1)],
    "clip_example.otio": [(8, 3, 3, 1)],  # after a gap, before a transition into a gap
    "transition_test.otio": [(0, 50, 0, 1), (50, 50, 0, 1), (100, 50, 0, 1)],  # transitions take no time
    # three layers, top wins: t-hawk (V2) cuts tech.fux short, KOLL (V3) cuts out-b's tail and head
    "multitrack.otio": [
        (0, 482, 0, 1),
        (482, 480, 0, 1),
        (962, 236, 159, 1),
        (1198, 640, 0, 1),
        (1957, 720, 0, 1),
    ],
    # nested stack trimmed 37 -> 31; a nested stack at 0.8545x (29 frames show 24 of media, 28 whole
    # frames); a nested track with a freeze frame (1 frame held for 4)
    "nested_example.otio": [
        (0, 238, 135, 1),
        (238, 31, 373, 1),
        (269, 33, 101, 1),
        (302, 28, 429, 0.8545454551724138),
        (331, 63, 179, 1),
        (394, 4, 471, 0),
        (398, 238, 135, 1),
    ],
    "25fps.edl": [(0, 161, 90000, 1), (161, 200, 90000, 1), (361, 86, 90000, 1), (447, 49, 90000, 1)],
    "gap_test.edl": [(0, 24, 14400, 1), (40, 24, 1987200, 1), (102, 24, 864000, 1)],
    "dissolve_test.edl": [(0, 9, 86501, 1), (9, 10, 86600, 1), (19, 1, 86610, 1)],
}
RATES = {"25fps.edl": 25}


def _shots(path: Path):
    timeline = read_edit(path, rate=RATES.get(path.name))
    return list_shots(choose_video_tracks(timeline, ()))


def test_every_sample_is_covered(otio_samples_dir: Path) -> None:
    samples = {p.name for p in otio_samples_dir.iterdir() if p.suffix in (".otio", ".edl")}
    assert samples == set(EXPECTED), "a new sample needs its expected shots here"


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_shots_of_each_sample(otio_samples_dir: Path, sample: str) -> None:
    shots = _shots(otio_samples_dir / sample)
    got = [
        (s.record.start_time.value, s.record.duration.value, s.source_start.value, s.speed)
        for s in shots.shots
    ]
    assert got == [tuple(map(float, row)) for row in EXPECTED[sample]]
    assert [s.index for s in shots.shots] == list(range(len(shots.shots)))
    for shot in shots.shots:  # positions in the timeline's rate, whole frames
        assert shot.record.start_time.rate == shots.rate and shot.record.duration.rate == shots.rate
        assert shot.problem is None and not shot.generator


def test_media_ranges_follow_speed(otio_samples_dir: Path) -> None:
    shots = _shots(otio_samples_dir / "nested_example.otio").shots
    retimed, frozen = shots[3], shots[5]
    assert retimed.media_range.duration.value == pytest.approx(28 * 0.8545454551724138)
    assert frozen.media_range == TimeRange(RationalTime(471, 24), RationalTime(4, 24))  # sound runs on


def test_edl_track_frame_is_kept(otio_samples_dir: Path) -> None:
    # The cmx_3600 reader records the record timecode start as the track's source_range; the new
    # track must share it to line up with the video track.
    shots = _shots(otio_samples_dir / "dissolve_test.edl")
    assert shots.source_range == TimeRange(RationalTime(-86400, 24), RationalTime(20, 24))
    assert shots.end == RationalTime(20, 24)


def test_media_hints_of_samples(otio_samples_dir: Path) -> None:
    simple = _shots(otio_samples_dir / "simple_cut.otio").shots
    assert simple[0].media.names[0] == "titles.mov" and simple[0].media.kind == "external"
    assert simple[3].media.origin == RationalTime(100, 24)  # available_range start: the file's first frame
    edl = _shots(otio_samples_dir / "gap_test.edl").shots
    assert edl[1].media.names == ("shot2", "SHOT2") and edl[1].media.origin is None  # clip name, reel


def _clip(name: str, frames: int, start: int = 0, **kwargs) -> otio.schema.Clip:
    return otio.schema.Clip(
        name=name,
        media_reference=kwargs.pop("reference", otio.schema.ExternalReference(f"/media/{name}.mov")),
        source_range=TimeRange(RationalTime(start, 24), RationalTime(frames, 24)),
        **kwargs,
    )


def _gap(frames: int) -> otio.schema.Gap:
    return otio.schema.Gap(duration=RationalTime(frames, 24))


def test_clip_speed_reverse_generator_and_disabled() -> None:
    fast = _clip("fast", 10, 100)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    reverse = _clip("reverse", 10)
    reverse.effects.append(otio.schema.LinearTimeWarp(time_scalar=-1.0))
    bars = _clip("bars", 5, reference=otio.schema.GeneratorReference(generator_kind="SMPTEBars"))
    hidden = _clip("hidden", 7)
    hidden.enabled = False
    track = otio.schema.Track(children=[fast, reverse, bars, hidden, _clip("last", 3)])
    shots = list_shots([track]).shots
    assert [s.name for s in shots] == ["fast", "reverse", "bars", "last"]
    assert shots[0].media_range == TimeRange(RationalTime(100, 24), RationalTime(20, 24))
    assert shots[1].problem == "reverse playback is not supported"
    assert shots[2].generator and shots[2].problem is None
    assert shots[3].record.start_time == RationalTime(32, 24)  # the disabled clip still takes its time


def test_direction_metadata_is_inherited() -> None:
    own = _clip("own", 4, metadata={"visage": {"yaw": 30, "direction_curve": "pan.json"}})
    plain = _clip("plain", 4)
    track = otio.schema.Track(children=[own, plain], metadata={"visage": {"yaw": -10.0, "pitch": 5}})
    shots = list_shots([track]).shots
    assert shots[0].direction == DirectionOverride(30.0, 5.0, "pan.json")
    assert shots[1].direction == DirectionOverride(-10.0, 5.0, None)
    with pytest.raises(ShotError, match="must be a number"):
        read_direction({"visage": {"yaw": "left"}}, "Clip 'x'")
    with pytest.raises(ShotError, match="must be a dictionary"):
        read_direction({"visage": 3}, "Clip 'x'")


def test_choose_video_tracks() -> None:
    timeline = otio.schema.Timeline()
    for name in ("V one", "V two"):
        timeline.tracks.append(otio.schema.Track(name=name, children=[_clip(name, 2)]))
    timeline.tracks.append(otio.schema.Track(name="A", kind=otio.schema.TrackKind.Audio))
    assert [t.name for t in choose_video_tracks(timeline, ())] == ["V one", "V two"]
    assert [t.name for t in choose_video_tracks(timeline, ("2", "v ONE"))] == ["V one", "V two"]
    with pytest.raises(ShotError, match="video tracks 1 to 2"):
        choose_video_tracks(timeline, ("3",))
    with pytest.raises(ShotError, match="no such video track"):
        choose_video_tracks(timeline, ("A",))


def test_disabled_tracks_are_not_composited() -> None:
    timeline = otio.schema.Timeline()
    timeline.tracks.append(otio.schema.Track(name="V1", children=[_clip("under", 6)]))
    timeline.tracks.append(otio.schema.Track(name="V2", children=[_clip("hidden", 6)]))
    timeline.tracks[1].enabled = False
    assert [s.name for s in list_shots(choose_video_tracks(timeline, ())).shots] == ["under"]
    assert [t.name for t in choose_video_tracks(timeline, ("2",))] == ["V2"]  # asked for by name: used
    timeline.tracks[0].enabled = False
    with pytest.raises(ShotError, match="every video track .* is disabled"):
        choose_video_tracks(timeline, ())


def test_unnamed_clips_empty_tracks_and_clips_without_duration() -> None:
    unnamed = otio.schema.Track(name="V2", children=[_clip("", 10), _clip("", 7, start=3)])
    shots = list_shots([otio.schema.Track(name="V1"), unnamed])  # an empty V1 must not set the rate
    assert shots.rate == 24
    assert [(s.name, s.record) for s in shots.shots] == [
        ("shot 1", TimeRange(RationalTime(0, 24), RationalTime(10, 24))),
        ("shot 2", TimeRange(RationalTime(10, 24), RationalTime(7, 24))),
    ]
    endless = otio.schema.Track(children=[otio.schema.Clip(name="no range")])
    with pytest.raises(ShotError, match="no range"):
        list_shots([endless])


def test_tracks_trimmed_differently_are_composited_in_the_stacks_time() -> None:
    # V1 starts its window 3 frames before its content: nothing for 3 frames, then a from source 100.
    # V2's window starts 1 frame into its content (a 2-frame gap, then b): b shows from stack frame 1.
    a = otio.schema.Track(name="V1", children=[_clip("a", 10, start=100)])
    a.source_range = TimeRange(RationalTime(-3, 24), RationalTime(10, 24))
    b = otio.schema.Track(name="V2", children=[_gap(2), _clip("b", 4)])
    b.source_range = TimeRange(RationalTime(1, 24), RationalTime(4, 24))
    shots = list_shots([a, b])
    assert [
        (s.name, s.record.start_time.value, s.record.duration.value, s.source_start.value)
        for s in shots.shots
    ] == [
        ("b", 1, 3, 0),
        ("a", 4, 6, 101),
    ]
    assert shots.source_range is None and shots.end == RationalTime(10, 24)  # the new track: stack time


def test_a_shared_trim_keeps_content_time_and_hides_what_it_trims() -> None:
    track = otio.schema.Track(name="V1", children=[_clip("a", 4), _clip("b", 6, start=50), _clip("c", 4)])
    track.source_range = TimeRange(RationalTime(2, 24), RationalTime(6, 24))  # a's last 2, b's first 4
    shots = list_shots([track])
    assert [
        (s.name, s.record.start_time.value, s.record.duration.value, s.source_start.value)
        for s in shots.shots
    ] == [
        ("a", 2, 2, 2),
        ("b", 4, 4, 50),
    ]
    assert shots.source_range == track.source_range


def _generator(name: str, kind: str, frames: int, **metadata: object) -> otio.schema.Clip:
    return _clip(
        name, frames, reference=otio.schema.GeneratorReference(generator_kind=kind), metadata=metadata
    )


def test_generators_and_alpha_clips_do_not_hide_the_shots_below() -> None:
    camera = otio.schema.Track(name="V1", children=[_clip("cam", 20, start=100)])
    titles = otio.schema.Track(
        name="V2",
        children=[
            _gap(2),
            _generator("slug with alpha", "Slug", 6, fcp_xml={"alphatype": "straight"}),
            _generator("title", "Title", 4),
            _clip("logo", 4, metadata={"visage": {"alpha": True}}),
        ],
    )
    assert [
        (s.name, s.record.start_time.value, s.record.duration.value)
        for s in list_shots([camera, titles]).shots
    ] == [("cam", 0, 20)]
    # alone, an overlay is what is seen
    lone = list_shots([otio.schema.Track(children=[_generator("title", "Title", 4)])]).shots
    assert [(s.name, s.generator, s.hides) for s in lone] == [("title", True, ())]


def test_an_opaque_solid_hides_the_shots_below_and_names_them() -> None:
    camera = otio.schema.Track(name="V1", children=[_clip("cam", 10), _clip("cam 2", 10)])
    black = otio.schema.Track(name="V2", children=[_gap(8), _generator("black", "black", 4)])
    shots = list_shots([camera, black]).shots
    assert [(s.name, s.record.start_time.value, s.record.duration.value, s.hides) for s in shots] == [
        ("cam", 0, 8, ()),
        ("black", 8, 4, ("cam", "cam 2")),
        ("cam 2", 12, 8, ()),
    ]


# FCP 7 XML (xmeml) as Final Cut Pro 7 and Premiere write it: a slug generator with an alpha channel over
# a camera clip (element names from Apple's Final Cut Pro XML Interchange Format reference).
SLUG_OVER_CAMERA = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4">
  <sequence id="sequence-1">
    <name>slug over camera</name>
    <duration>48</duration>
    <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
    <media>
      <video>
        <track>
          <clipitem id="clipitem-1">
            <name>camera</name>
            <duration>100</duration>
            <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
            <start>0</start><end>48</end><in>10</in><out>58</out>
            <alphatype>none</alphatype>
            <file id="file-1">
              <name>camera.mov</name>
              <pathurl>file://localhost/media/camera.mov</pathurl>
              <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
              <duration>100</duration>
              <media><video/></media>
            </file>
          </clipitem>
        </track>
        <track>
          <generatoritem id="generatoritem-1">
            <name>Slug</name>
            <duration>3600</duration>
            <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
            <start>4</start><end>44</end><in>0</in><out>40</out>
            <alphatype>straight</alphatype>
            <effect>
              <name>Slug</name>
              <effectid>slug</effectid>
              <effectcategory>Matte</effectcategory>
              <effecttype>generator</effecttype>
              <mediatype>video</mediatype>
            </effect>
          </generatoritem>
        </track>
      </video>
    </media>
  </sequence>
</xmeml>
"""


def test_a_slug_with_alpha_from_fcp_xml_leaves_the_camera_visible(tmp_path: Path) -> None:
    edit = tmp_path / "slug.xml"
    edit.write_text(SLUG_OVER_CAMERA)
    shots = _shots(edit).shots
    assert [
        (s.name, s.record.start_time.value, s.record.duration.value, s.source_start.value) for s in shots
    ] == [("camera", 0, 48, 10)]
    edit.write_text(
        SLUG_OVER_CAMERA.replace("<alphatype>straight</alphatype>", "<alphatype>none</alphatype>")
    )
    opaque = _shots(edit).shots  # an opaque slug is black: it hides the camera, and says so
    assert [(s.name, s.record.duration.value, s.hides) for s in opaque] == [
        ("camera", 4, ()),
        ("Slug", 40, ("camera",)),
        ("camera", 4, ()),
    ]


def test_media_hint_decodes_urls_and_reels() -> None:
    clip = _clip(
        "c", 2, reference=otio.schema.ExternalReference("file://localhost/D%3a/my%20media/take%201.mov")
    )
    clip.metadata["cmx_3600"] = {"reel": "R1"}
    assert media_hint(clip).names == ("take 1.mov", "c", "R1")


def test_resolve_is_recognised() -> None:
    timeline = otio.schema.Timeline()
    assert not is_from_resolve(timeline)
    timeline.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
    assert is_from_resolve(timeline)


# -- flattening against a frame-by-frame brute force -------------------------------------------------

layer = st.lists(st.tuples(st.booleans(), st.integers(1, 6)), min_size=1, max_size=6)  # (is clip, frames)


@settings(max_examples=60, deadline=None)
@given(st.lists(layer, min_size=1, max_size=3))
def test_flattening_shows_the_top_clip_at_every_frame(layers: list[list[tuple[bool, int]]]) -> None:
    tracks = []
    for t, items in enumerate(layers):
        children = [
            _clip(f"t{t}c{i}", frames, start=1000 * i) if is_clip else _gap(frames)
            for i, (is_clip, frames) in enumerate(items)
        ]
        tracks.append(otio.schema.Track(name=f"V{t + 1}", children=children))
    shots = list_shots(tracks).shots
    end = max(sum(frames for _, frames in items) for items in layers)
    for frame in range(end):
        expected = None
        for t, items in enumerate(layers):  # bottom to top: the last clip found wins
            position = 0
            for i, (is_clip, frames) in enumerate(items):
                if is_clip and position <= frame < position + frames:
                    expected = (f"t{t}c{i}", 1000 * i + frame - position)
                position += frames
        showing = [
            (s.name, s.source_start.value + frame - s.record.start_time.value)
            for s in shots
            if s.record.start_time.value <= frame < s.record.end_time_exclusive().value
        ]
        assert showing == ([expected] if expected else [])
