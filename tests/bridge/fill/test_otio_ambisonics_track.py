"""The AmbiX track built from shot results: positions, gaps, media references, metadata, Resolve shapes."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from visage.bridge.fill.otio_ambisonics_track import (
    LAYOUT,
    TRACK_NAME,
    FilledShot,
    Provenance,
    build_ambisonics_track,
    is_ambisonics_track,
)
from visage.bridge.fill.otio_shots import list_shots


def _plain(value: object) -> object:
    """OTIO metadata (AnyDictionary, AnyVector) as plain dicts and lists, for comparisons."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    return [_plain(v) for v in value]


PROVENANCE = Provenance(model="tiny-random", guidance_mode="joint", guidance_scale=2.5, sample_rate=48000)


def _clip(name: str, frames: int, start: int = 0) -> otio.schema.Clip:
    return otio.schema.Clip(
        name=name,
        media_reference=otio.schema.ExternalReference(f"/media/{name}.mov"),
        source_range=TimeRange(RationalTime(start, 24), RationalTime(frames, 24)),
    )


def _video_track() -> otio.schema.Track:
    slow = _clip("slow", 10, 50)
    slow.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    return otio.schema.Track(
        name="V1",
        children=[
            otio.schema.Gap(duration=RationalTime(5, 24)),
            _clip("a", 12, 100),
            otio.schema.Transition(in_offset=RationalTime(2, 24), out_offset=RationalTime(2, 24)),
            _clip("b", 8),
            slow,
            otio.schema.Gap(duration=RationalTime(7, 24)),
        ],
    )


def _filled(shots, names: set[str], folder: Path = Path("/out/my audio")) -> list[FilledShot]:
    return [
        FilledShot(
            shot=s,
            wav=folder / f"{s.name}.wav",
            media=Path(f"/media/{s.name}.mov"),
            media_start_s=s.media_range.start_time.to_seconds(),
            media_end_s=s.media_range.end_time_exclusive().to_seconds(),
            direction={"yaw": 10.0 * s.index, "pitch": 0.0},
            seed=7 + s.index,
            key=f"key{s.index}",
        )
        for s in shots.shots
        if s.name in names
    ]


def test_clips_sit_at_the_shots_and_gaps_fill_the_rest() -> None:
    video = _video_track()
    shots = list_shots([video])
    track = build_ambisonics_track(shots, _filled(shots, {"a", "slow"}), PROVENANCE)
    assert track.kind == otio.schema.TrackKind.Audio and track.name == TRACK_NAME
    layout = [(type(item).__name__, track.range_of_child(item)) for item in track]
    rt = lambda v: RationalTime(v, 24)  # noqa: E731
    assert layout == [
        ("Gap", TimeRange(rt(0), rt(5))),
        ("Clip", TimeRange(rt(5), rt(12))),  # a, where the video clip is
        ("Gap", TimeRange(rt(17), rt(8))),  # b had no result
        ("Clip", TimeRange(rt(25), rt(10))),  # slow
        ("Gap", TimeRange(rt(35), rt(7))),  # padded to the video track's end
    ]
    assert track.duration() == video.duration()
    for video_clip in video.find_clips():
        audio = [c for c in track.find_clips() if c.name == f"{video_clip.name} (AmbiX)"]
        if audio:
            assert track.range_of_child(audio[0]) == video.range_of_child(video_clip)


def test_clip_media_and_speed() -> None:
    shots = list_shots([_video_track()])
    track = build_ambisonics_track(shots, _filled(shots, {"a", "slow"}), PROVENANCE)
    a, slow = track.find_clips()
    assert a.source_range == TimeRange(RationalTime(0, 24), RationalTime(12, 24))
    assert a.media_reference.target_url == "file:///out/my audio/a.wav"
    assert otio.url_utils.filepath_from_url(a.media_reference.target_url) == "/out/my audio/a.wav"
    assert a.media_reference.available_range == a.source_range
    assert len(a.effects) == 0
    # Half speed: 10 record frames play 5 frames of media; the file holds those 5.
    assert slow.media_reference.available_range.duration == RationalTime(5, 24)
    assert [e.time_scalar for e in slow.effects] == [0.5]


def test_metadata_records_layout_and_provenance() -> None:
    shots = list_shots([_video_track()])
    track = build_ambisonics_track(shots, _filled(shots, {"b"}), PROVENANCE)
    ours = track.metadata["visage"]
    assert ours["role"] == "ambisonics" and _plain(ours["layout"]) == dict(LAYOUT)
    assert ours["model"] == "tiny-random" and _plain(ours["guidance"]) == {"mode": "joint", "scale": 2.5}
    (clip,) = track.find_clips()
    meta = clip.metadata["visage"]
    assert _plain(meta["layout"]) == {
        "format": "AmbiX",
        "order": 1,
        "channels": 4,
        "ordering": "ACN",
        "normalization": "SN3D",
        "channel_names": ["W", "Y", "Z", "X"],
    }
    assert _plain(meta["direction"]) == {"yaw": 10.0, "pitch": 0.0} and meta["seed"] == 8
    assert meta["source"]["clip"] == "b" and meta["key"] == "key1"
    assert "Resolve_OTIO" not in clip.metadata and "Resolve_OTIO" not in track.metadata
    # round trip through the file format
    again = otio.adapters.read_from_string(otio.adapters.write_to_string(track))
    assert again.find_clips()[0].metadata["visage"]["seed"] == 8


def test_resolve_shapes() -> None:
    shots = list_shots([_video_track()])
    track = build_ambisonics_track(shots, _filled(shots, {"a"}), PROVENANCE, resolve=True)
    (clip,) = track.find_clips()
    assert clip.media_reference.target_url == "/out/my audio/a.wav"  # a bare path, not a file URL
    assert clip.media_reference.name == "a.wav"
    assert clip.media_reference.available_range is not None
    assert len(clip.metadata["Resolve_OTIO"]["Channels"]) == 4
    assert track.metadata["Resolve_OTIO"]["Locked"] is False
    text = otio.adapters.write_to_string(track)
    assert '"OTIO_SCHEMA": "Clip.2"' in text and '"active_media_reference_key": "DEFAULT_MEDIA"' in text


def test_empty_result_is_one_gap_and_track_frame_is_shared() -> None:
    video = _video_track()
    video.source_range = TimeRange(RationalTime(-3, 24), RationalTime(40, 24))
    shots = list_shots([video])
    track = build_ambisonics_track(shots, [], PROVENANCE)
    assert [type(i).__name__ for i in track] == ["Gap"]
    assert track.source_range == video.source_range


@pytest.mark.parametrize(
    ("name", "kind", "metadata", "ours"),
    [
        (TRACK_NAME, otio.schema.TrackKind.Audio, {}, True),
        ("renamed", otio.schema.TrackKind.Audio, {"visage": {"role": "ambisonics"}}, True),
        (TRACK_NAME, otio.schema.TrackKind.Video, {}, False),
        ("Audio 1", otio.schema.TrackKind.Audio, {}, False),
    ],
)
def test_is_ambisonics_track(name: str, kind: str, metadata: dict, ours: bool) -> None:
    assert is_ambisonics_track(otio.schema.Track(name=name, kind=kind, metadata=metadata)) is ours
