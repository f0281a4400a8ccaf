"""The host plugins' shared logic: camera math, clip ranges, curves, job states, placement, the client.

Pure parts are checked against hand-computed values; the client wrapper against a live loopback daemon
with the fake engine (no torch, no host).
"""

from __future__ import annotations

import math
import os
import struct
import sys
import time
import wave
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine, write_media
from hypothesis import given, settings
from hypothesis import strategies as st

from visage.bridge import const as bridge_const
from visage.bridge.client import DaemonAddress, DaemonUnavailable, JobFailed
from visage.bridge.daemon import Daemon
from visage.host_plugins.common import (
    camera,
    camera_sampling,
    direction_curve,
    host_client,
    job_state,
    media_range,
    placement,
    result_files,
    wav_info,
)
from visage.model.features.direction import load_direction_curve
from visage.model.files import result_files as contract

if TYPE_CHECKING:
    from conftest import BrokenZeroconf  # tests/host_plugins/conftest.py

# ------------------------------------------------------------------------------------------------
# camera -> yaw/pitch


@pytest.mark.parametrize(
    ("euler", "expected"),
    [
        ((90, 0, 0), (0.0, 0.0)),  # looks along world +Y: the front
        ((90, 0, 90), (90.0, 0.0)),  # turned left (counter-clockwise from above) -> looks at -X
        ((90, 0, -90), (-90.0, 0.0)),
        ((120, 0, 0), (0.0, 30.0)),  # tilted up 30°
        ((90, 0, 180), (-180.0, 0.0)),  # looks back (yaw in [-180, 180))
        ((90, 0, 45), (45.0, 0.0)),  # d = (-sin45, cos45, 0)
        ((60, 0, 30), (30.0, -30.0)),  # d = (-0.433, 0.75, -0.5): atan2(0.433, 0.75), atan2(-0.5, 0.866)
        ((0, 0, 0), (0.0, -90.0)),  # straight down: yaw undefined -> fallback 0
    ],
)
def test_camera_angles_hand_computed(
    euler: tuple[float, float, float], expected: tuple[float, float]
) -> None:
    yaw, pitch = camera.camera_angles(camera.euler_xyz_matrix(*euler))
    assert yaw == pytest.approx(expected[0], abs=1e-9)
    assert pitch == pytest.approx(expected[1], abs=1e-9)


def test_camera_angles_ignore_scale_and_accept_quaternions() -> None:
    rotation = camera.euler_xyz_matrix(60, 0, 30)
    scaled = tuple(tuple(v * s for v, s in zip(row, (2.0, 0.5, 3.0), strict=True)) for row in rotation)
    assert camera.camera_angles(scaled) == pytest.approx((30.0, -30.0))  # type: ignore[arg-type]
    half = math.radians(45)
    quaternion = camera.quaternion_matrix(math.cos(half), math.sin(half), 0.0, 0.0)  # Euler (90, 0, 0)
    assert camera.camera_angles(quaternion) == pytest.approx((0.0, 0.0), abs=1e-12)


def test_camera_angles_relative_to_a_front_object() -> None:
    # The rig faces world -X (an empty turned 90° about Z); a camera looking at world -X looks at its front.
    rig = camera.euler_xyz_matrix(0, 0, 90)
    looking_minus_x = camera.euler_xyz_matrix(90, 0, 90)
    assert camera.camera_angles(looking_minus_x, rig) == pytest.approx((0.0, 0.0), abs=1e-9)
    # Looking at world +Y is then 90° to the rig's right.
    assert camera.camera_angles(camera.euler_xyz_matrix(90, 0, 0), rig) == pytest.approx((-90.0, 0.0))
    # A rig tilted back 30° about X: a level camera looks 30° below the rig's horizon.
    tilted = camera.euler_xyz_matrix(30, 0, 0)
    assert camera.camera_angles(camera.euler_xyz_matrix(90, 0, 0), tilted) == pytest.approx((0.0, -30.0))


def test_vertical_camera_keeps_the_previous_yaw() -> None:
    up = camera.euler_xyz_matrix(180, 0, 0)  # looks along +Z
    assert camera.camera_angles(up, fallback_yaw_deg=37.0) == pytest.approx((37.0, 90.0))


# ------------------------------------------------------------------------------------------------
# rates and ranges


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [
        ("23.976", 1, Fraction(24000, 1001)),
        (23.976023976023978, 1, Fraction(24000, 1001)),  # Blender's strip.fps
        (24, 1.0010000467300415, Fraction(24000, 1001)),  # render.fps / float32 render.fps_base
        ("29.97", 1, Fraction(30000, 1001)),
        ("29.97 DF", 1, Fraction(30000, 1001)),  # Resolve's drop-frame timeline setting
        (29.970029830932617, 1, Fraction(30000, 1001)),  # a float32 29.97
        ("59.94", 1, Fraction(60000, 1001)),
        ("30000/1001", 1, Fraction(30000, 1001)),
        ("25", 1, Fraction(25)),
        (24.0, 1, Fraction(24)),
        (12.5, 1, Fraction(25, 2)),
    ],
)
def test_parse_rate(value: object, base: object, expected: Fraction) -> None:
    assert media_range.parse_rate(value, base) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["abc", 0, -24, float("nan"), ""])
def test_parse_rate_rejects(bad: object) -> None:
    with pytest.raises(media_range.RangeError):
        media_range.parse_rate(bad)  # type: ignore[arg-type]


def test_blender_strip_at_23_976_exact() -> None:
    # Movie at 23.976 placed at frame 10, trimmed 24 frames on the left, 240 frames visible.
    timing = media_range.blender_strip_timing(
        frame_start=10.0,
        frame_final_start=34,
        frame_final_end=274,
        frame_duration=1000,
        media_frame_count=1000,
        movie_fps=23.976023976023978,
        scene_fps=media_range.parse_rate(24, 1.0010000467300415),
    )
    assert timing.media_frames_per_strip_frame == 1 and timing.speed == 1
    assert timing.media_range == media_range.MediaRange(Fraction(1001, 1000), Fraction(11011, 1000))
    assert timing.media_time(10) == 0


def test_blender_strip_with_adjusted_playback_rate() -> None:
    # A 24-fps movie of 48 frames that Blender stretched to 60 strip frames in a 30-fps scene.
    timing = media_range.blender_strip_timing(
        frame_start=1,
        frame_final_start=16,
        frame_final_end=61,
        frame_duration=60,
        media_frame_count=48,
        movie_fps=24.0,
        scene_fps=Fraction(30),
    )
    assert timing.media_frames_per_strip_frame == Fraction(4, 5) and timing.speed == 1
    assert timing.media_range == media_range.MediaRange(Fraction(1, 2), Fraction(2))  # 15 and 60 frames / 30


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def test_blender_adjusted_strip_follows_the_rates_not_the_truncated_length() -> None:
    """Item 17: 125 frames of 25 fps in a 23.976 scene, the playback rate adjusted by Blender.

    Oracle: Blender's own arithmetic (``sequencer/intern/strip_time.cc``), in float32 as it runs:
    ``factor = media_playback_rate / scene_fps``; the strip's length is ``int(len / factor)``; scene
    frame f shows media frame ``(f - start) * factor``.
    """
    scene_fps = _f32(_f32(24.0) / _f32(1.001))  # render.fps / render.fps_base
    factor = _f32(_f32(25.0) / scene_fps)
    length = int(_f32(125 / factor))
    assert length == 119  # truncated from 119.88: 125/119 = 1.0504 media frames per frame, not 1.0427
    timing = media_range.blender_strip_timing(
        frame_start=1,
        frame_final_start=1,
        frame_final_end=1 + length,
        frame_duration=length,
        media_frame_count=125,
        movie_fps=25.0,
        scene_fps=media_range.parse_rate(24, _f32(1.001)),
    )
    for frame in range(1, 1 + length + 1):
        blender_media_frame = (frame - 1) * factor
        assert float(timing.media_time(frame)) * 25 == pytest.approx(blender_media_frame, abs=1e-4)
    assert timing.media_range.end_s == Fraction(119 * 1001, 24000)  # 4.963 s, not 5 s
    assert timing.speed == 1


def test_blender_strip_at_another_rate_not_adjusted_plays_at_the_wrong_speed() -> None:
    # A script-added strip (strips.new_movie): 24-fps media, one media frame per 25-fps scene frame.
    timing = media_range.blender_strip_timing(
        frame_start=10,
        frame_final_start=15,
        frame_final_end=55,
        frame_duration=60,
        media_frame_count=60,
        movie_fps=24,
        scene_fps=Fraction(25),
    )
    assert timing.media_frames_per_strip_frame == 1 and timing.speed == Fraction(25, 24)
    assert timing.media_range == media_range.MediaRange(Fraction(5, 24), Fraction(45, 24))


def test_blender_strip_animation_offsets_and_unexplained_lengths() -> None:
    # animation_offset_start 5 of a 60-frame movie: the strip holds media frames 5..59 (55 frames).
    timing = media_range.blender_strip_timing(
        frame_start=1,
        frame_final_start=1,
        frame_final_end=56,
        frame_duration=55,
        media_frame_count=60,
        movie_fps=24,
        scene_fps=Fraction(25),
        animation_offset_start=5,
    )
    assert timing.media_time(1) == Fraction(5, 24) and timing.media_range.end_s == Fraction(60, 24)
    with pytest.raises(media_range.RangeError, match="retimed strips"):
        media_range.blender_strip_timing(  # 48 frames over 90: neither 48 nor 48 * 30 / 24 = 60
            frame_start=1,
            frame_final_start=1,
            frame_final_end=91,
            frame_duration=90,
            media_frame_count=48,
            movie_fps=24,
            scene_fps=Fraction(30),
        )


def test_resolve_item_range_at_29_97() -> None:
    rng = media_range.resolve_item_range(
        left_offset=30, duration=300, timeline_rate=media_range.parse_rate("29.97")
    )
    assert (rng.start_s, rng.end_s) == (Fraction(1001, 1000), Fraction(11011, 1000))
    assert rng.start == 1.001


def test_reaper_item_range_play_rate_lead_in_and_clamp() -> None:
    plain = media_range.reaper_item_range(start_offset_s=2.0, length_s=5.0, play_rate=1.5)
    assert (plain.media_range.start, plain.media_range.end, plain.lead_in_s, plain.clamped) == (
        2.0,
        9.5,
        0,
        False,
    )
    clamped = media_range.reaper_item_range(
        start_offset_s=2.0, length_s=5.0, play_rate=1.5, source_length_s=8.0
    )
    assert (clamped.media_range.end, clamped.clamped) == (8.0, True)
    early = media_range.reaper_item_range(start_offset_s=-1.0, length_s=5.0, play_rate=2.0)
    assert (early.media_range.start, early.media_range.end, early.lead_in_s) == (0.0, 9.0, Fraction(1, 2))
    with pytest.raises(media_range.RangeError):
        media_range.reaper_item_range(start_offset_s=0.0, length_s=1.0, play_rate=0.0)


def test_empty_and_negative_ranges_are_refused() -> None:
    with pytest.raises(media_range.RangeError):
        media_range.MediaRange(Fraction(2), Fraction(2))
    with pytest.raises(media_range.RangeError):
        media_range.MediaRange(Fraction(-1), Fraction(2))


# ------------------------------------------------------------------------------------------------
# direction curves


def test_curve_files_are_read_by_the_model(tmp_path: Path) -> None:
    samples = direction_curve.build_curve(
        [(0.0, 10.0, 0.0), (0.04, 10.0, 0.0), (0.08, 190.0, -5.5), (0.12, -170.0, -5.5), (0.16, 45.25, 89.0)]
    )
    # Repeats of the held direction are dropped (190 wraps to -170: the same direction).
    assert [s.time_s for s in samples] == [0.0, 0.08, 0.16]
    for suffix in (".json", ".csv"):
        path = direction_curve.write_curve(tmp_path / f"curve{suffix}", samples)
        curve = load_direction_curve(path)
        assert curve.times_s == (0.0, 0.08, 0.16)
        assert curve.yaws_deg == (10.0, -170.0, 45.25)
        assert curve.pitches_deg == (0.0, -5.5, 89.0)
    assert not list(tmp_path.glob(".*part"))  # atomic write leaves no temporary file


def test_curve_files_get_the_umask_permissions(tmp_path: Path) -> None:
    """A curve the daemon (maybe another user) reads is not private: 0o666 less the umask, as results."""
    previous = os.umask(0o022)
    try:
        path = direction_curve.write_curve(tmp_path / "c.json", direction_curve.build_curve([(0, 0, 0)]))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def test_mean_direction_matches_the_model() -> None:
    rows = [(0.0, 170.0, 10.0), (1.0, -170.0, -10.0), (2.5, 20.0, 0.0), (4.0, 90.0, 45.0)]
    samples = direction_curve.build_curve(rows)
    from visage.model.features.direction import DirectionCurve

    model = DirectionCurve(*(tuple(column) for column in zip(*rows, strict=True)))
    for start, end in [(0.0, 5.0), (0.5, 1.5), (1.2, 3.9), (3.0, 3.0), (-1.0, 0.5)]:
        expected = model.mean_over(start, end)
        yaw, pitch = direction_curve.mean_direction(samples, start, end)
        assert yaw == pytest.approx(expected.yaw_deg, abs=1e-9)
        assert pitch == pytest.approx(expected.pitch_deg, abs=1e-9)


@pytest.mark.parametrize(
    "bad", [[], [(0.0, 0.0, 91.0)], [(1.0, 0.0, 0.0), (1.0, 5.0, 0.0)], [(0.0, math.nan, 0.0)]]
)
def test_build_curve_rejects(bad: list[tuple[float, float, float]]) -> None:
    with pytest.raises(direction_curve.CurveError):
        direction_curve.build_curve(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yaw=30 pitch=-10", (30.0, -10.0)),
        ("Shot 4: Yaw: -45.5", (-45.5, 0.0)),
        ("azimuth=270 elevation=5", (-90.0, 5.0)),
        ("pitch=12", (0.0, 12.0)),
        ("pitch=120", None),
        ("just a note", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_direction_text(text: str | None, expected: tuple[float, float] | None) -> None:
    assert direction_curve.parse_direction_text(text) == expected


# ------------------------------------------------------------------------------------------------
# job state machine


def test_job_tracker_happy_path_and_late_events() -> None:
    tracker = job_state.JobTracker("shot 1")
    assert tracker.status_text == "shot 1: submitting"
    assert tracker.apply(job_state.Accepted(2))
    assert tracker.status_text == "shot 1: queued (2 ahead)"
    assert tracker.apply(job_state.Progressed(0.25, "decoding"))
    assert tracker.apply(job_state.Progressed(0.1, "decoding"))  # never goes backwards
    assert (tracker.phase, tracker.fraction) == (job_state.JobPhase.RUNNING, 0.25)
    assert tracker.status_text == "shot 1: decoding 25%"
    assert not tracker.apply(job_state.Accepted(0))  # a repeated accepted datagram
    assert tracker.apply(job_state.Finished("/o.wav", "/o.json", cached=True))
    assert tracker.finished and tracker.status_text == "shot 1: done (from cache)"
    assert not tracker.apply(job_state.Progressed(0.5, "late"))
    assert not tracker.apply(job_state.Failed("engine_error", "late"))
    assert tracker.result == job_state.Finished("/o.wav", "/o.json", True)


def test_job_tracker_cancel_and_failure() -> None:
    tracker = job_state.JobTracker("a")
    tracker.apply(job_state.Accepted(0))
    tracker.apply(job_state.CancelRequested())
    tracker.apply(job_state.Progressed(0.5, "decoding"))
    assert tracker.phase is job_state.JobPhase.CANCELLING  # progress does not undo a cancel request
    tracker.apply(job_state.Failed("cancelled", "job cancelled"))
    assert tracker.phase is job_state.JobPhase.CANCELLED and tracker.status_text == "a: cancelled"
    failed = job_state.JobTracker("b")
    failed.apply(job_state.Failed("path_not_allowed", "outside"))
    assert failed.phase is job_state.JobPhase.FAILED and failed.status_text == "b: failed: outside"


# ------------------------------------------------------------------------------------------------
# placement


def test_camera_sample_plan_per_window_and_bounded() -> None:
    """Item 18: 25 samples per 5-s model window, each evaluated mid-hold; every frame at low rates."""
    plan = camera_sampling.plan_samples(15, 55, Fraction(25))  # 125 frames per window: every 5th
    assert [p.hold_frame for p in plan] == list(range(15, 55, 5))
    assert [p.eval_frame for p in plan] == list(range(17, 55, 5))
    assert camera_sampling.plan_samples(0, 7, Fraction(25))[-1] == (5, 5.5)  # a 2-frame tail: its middle
    assert camera_sampling.plan_samples(0, 24, Fraction(24000, 1001))[0] == (0, 1.5)  # 4 frames a sample
    assert [p.eval_frame for p in camera_sampling.plan_samples(3, 9, Fraction(4))] == list(range(3, 9))
    assert [p.hold_frame for p in camera_sampling.plan_samples(0, 6000, Fraction(25))][-1] == 5995
    huge = camera_sampling.plan_samples(0, 10_000_000, Fraction(60))
    assert len(huge) <= camera_sampling.MAX_SAMPLES and huge[-1].hold_frame >= 10_000_000 - 5000
    with pytest.raises(ValueError, match="nothing to sample"):
        camera_sampling.plan_samples(5, 5, Fraction(25))


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([Fraction(24000, 1001), Fraction(25), Fraction(30), Fraction(60)]),
    seconds=st.floats(0.5, 40.0),
    shakes=st.lists(st.tuples(st.floats(-20.0, 20.0), st.floats(0.05, 0.5), st.floats(0.0, 6.3)), max_size=3),
    tilt=st.floats(-30.0, 30.0),
)
def test_camera_sample_plan_keeps_every_window_mean(
    rate: Fraction, seconds: float, shakes: list[tuple[float, float, float]], tilt: float
) -> None:
    """Oracle: the every-frame curve. The model conditions each window (5 s, one every 4 s) on the
    curve's mean: the planned curve gives the same means within 0.5 degrees, for a 40°/s pan with slow
    sinusoidal moves on top (up to about 100°/s). A last window shorter than a second may see part of a
    sample held from before it: within half a sample's hold of motion there."""

    def yaw(frame: float) -> float:
        t = float(frame / rate)
        return 40.0 * t + sum(a * math.sin(2 * math.pi * hz * t + phase) for a, hz, phase in shakes)

    def pitch(frame: float) -> float:
        return max(-90.0, min(90.0, tilt * math.sin(float(frame / rate))))

    first, end = 10, 10 + max(2, round(seconds * rate))
    media_time = lambda frame: float((frame - first) / rate)  # noqa: E731
    dense = direction_curve.build_curve((media_time(f), yaw(f), pitch(f)) for f in range(first, end))
    plan = camera_sampling.plan_samples(first, end, rate)
    sparse = direction_curve.build_curve(
        (media_time(p.hold_frame), yaw(p.eval_frame), pitch(p.eval_frame)) for p in plan
    )
    hold_s = float((plan[1].hold_frame - plan[0].hold_frame) / rate) if len(plan) > 1 else 0.0
    top_speed = 40.0 + sum(abs(a) * 2 * math.pi * hz for a, hz, _ in shakes) + abs(tilt)  # degrees/s
    length = media_time(end)
    for start in [4.0 * k for k in range(int(length // 4) + 1)]:
        stop = min(start + 5.0, length)
        if stop <= start:
            continue
        tolerance = 0.5 if stop - start >= 1.0 else 0.5 + top_speed * hold_s / 2
        dense_yaw, dense_pitch = direction_curve.mean_direction(dense, start, stop)
        sparse_yaw, sparse_pitch = direction_curve.mean_direction(sparse, start, stop)
        assert abs((sparse_yaw - dense_yaw + 180) % 360 - 180) < tolerance, (start, sparse_yaw, dense_yaw)
        assert abs(sparse_pitch - dense_pitch) < tolerance


def test_marker_camera_follows_blenders_switching_rule() -> None:
    """``BKE_scene_camera_switch_find``: last marker at or before the frame, else the left-most one."""
    markers = [(40, "B"), (1, "A"), (40, "C")]
    assert [camera_sampling.marker_camera(markers, f) for f in (-5, 0, 1, 39, 40, 99)] == list("AAAABB")
    assert camera_sampling.marker_camera([], 10) is None


def test_blender_sound_channel() -> None:
    occupied = [(1, 0, 100), (2, 10, 50), (3, 0, 10), (3, 60, 80)]
    assert placement.blender_sound_channel(occupied, 10, 50, above=1) == 3  # 2 overlaps, 3 is free there
    assert placement.blender_sound_channel(occupied, 5, 50, above=1) == 4
    assert placement.blender_sound_channel(occupied, 50, 60, above=1) == 2  # touching ends do not overlap
    full = [(c, 0, 100) for c in range(1, 129)]
    assert placement.blender_sound_channel(full, 0, 1, above=5) is None
    almost = [(c, 0, 100) for c in range(1, 129) if c != 3]
    assert placement.blender_sound_channel(almost, 0, 1, above=5) == 3  # nothing above: nearest below


def test_track_choices() -> None:
    tracks = [
        placement.Lane(1, ((0, 100),), kind="stereo"),
        placement.Lane(2, ((0, 50),), kind="adaptive4"),
        placement.Lane(3, (), kind="adaptive4"),
    ]
    assert placement.resolve_audio_track(tracks, 60, 90) == 2
    assert placement.resolve_audio_track(tracks, 40, 90) == 3
    assert placement.resolve_audio_track(tracks[:2], 40, 90) is None
    name = placement.AMBIX_TRACK_NAME
    reaper = [
        placement.Lane(0, (), channels=4, name="Dialogue"),
        placement.Lane(1, ((0.0, 2.0),), channels=2, name=name),
        placement.Lane(2, ((0.0, 2.0),), channels=4, name=name),
    ]
    assert placement.reaper_ambix_track(reaper, 2.0, 3.0) == 2
    assert placement.reaper_ambix_track(reaper, 1.0, 3.0) is None


# ------------------------------------------------------------------------------------------------
# result files and WAV headers


def test_result_paths_and_preview(tmp_path: Path) -> None:
    paths = result_files.result_paths(tmp_path, "Shot 1/take:2", "blender-0123456789abcdef")
    assert paths.wav == tmp_path / "Shot_1_take_2-89abcdef.wav"
    assert paths.curve == tmp_path / "Shot_1_take_2-89abcdef.direction.json"
    sidecar = tmp_path / "r.json"
    sidecar.write_text('{"format": "ambix"}')
    assert result_files.preview_path(sidecar) is None
    (tmp_path / "r_binaural.wav").write_bytes(b"RIFF")
    sidecar.write_text('{"preview": "r_binaural.wav"}')
    assert result_files.preview_path(sidecar) == tmp_path / "r_binaural.wav"
    sidecar.write_text('{"preview": "missing.wav"}')
    assert result_files.preview_path(sidecar) is None
    assert result_files.preview_path(tmp_path / "absent.json") is None
    # Run from the project, the hosts use the project's contract (the Blender bundle a vendored copy).
    assert result_files.contract is contract and result_files.PREVIEW_KEY == contract.PREVIEW_KEY


def test_wav_info_plain_and_extensible(tmp_path: Path) -> None:
    plain = tmp_path / "plain.wav"
    with wave.open(str(plain), "wb") as out:
        out.setnchannels(4)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(bytes(8 * 480))
    assert wav_info.read_wav_info(plain) == wav_info.WavInfo(4, 48000, 480)
    # WAVE_FORMAT_EXTENSIBLE, 24-bit, with a LIST chunk before data (as soundfile may write).
    fmt = struct.pack("<HHIIHH", 0xFFFE, 4, 44100, 44100 * 12, 12, 24) + struct.pack("<HHI", 22, 24, 0)
    fmt += bytes(16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\0"
    body += b"data" + struct.pack("<I", 12 * 441) + bytes(12 * 441)
    extensible = tmp_path / "ext.wav"
    extensible.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    info = wav_info.read_wav_info(extensible)
    assert info == wav_info.WavInfo(4, 44100, 441) and info.duration_s == Fraction(1, 100)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    with pytest.raises(wav_info.WavError):
        wav_info.read_wav_info(tmp_path / "bad.wav")


# ------------------------------------------------------------------------------------------------
# the client wrapper, against a live loopback daemon with the fake engine


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), fast_engine()) as running:
        yield running


def _request(tmp_path: Path, **overrides: object) -> host_client.JobRequest:
    values: dict[str, object] = {
        "media": str(write_media(tmp_path)),
        "start_s": 0.5,
        "end_s": 1.0,
        "yaw_deg": 30.0,
        "pitch_deg": 0.0,
        "output": str(tmp_path / "out" / "clip.wav"),
        "label": "clip",
    }
    values.update(overrides)
    (tmp_path / "out").mkdir(exist_ok=True)
    return host_client.JobRequest(**values)  # type: ignore[arg-type]


def _finish(job: host_client.HostJob, timeout_s: float = 10.0) -> job_state.JobTracker:
    deadline = time.monotonic() + timeout_s
    while not job.poll().finished:
        assert time.monotonic() < deadline, job.tracker.status_text
        time.sleep(0.01)
    return job.tracker


@pytest.mark.parametrize("threaded", [True, False])
def test_host_job_runs_to_done(daemon: Daemon, tmp_path: Path, threaded: bool) -> None:
    request = _request(tmp_path)
    job = host_client.HostJob(request, address_of(daemon), job_id=host_client.new_job_id("test"))
    job.start(threaded=threaded)
    tracker = _finish(job)
    job.close()
    assert tracker.phase is job_state.JobPhase.DONE, tracker.status_text
    assert tracker.result is not None and tracker.result.output == request.output
    assert wav_info.read_wav_info(tracker.result.output).channels == 4


def test_host_job_sends_the_direction_curve(daemon: Daemon, tmp_path: Path) -> None:
    curve = direction_curve.write_curve(
        tmp_path / "out" / "c.direction.json",
        direction_curve.build_curve([(0.0, 10.0, 0.0), (0.7, 20.0, 5.0)]),
    )
    request = _request(tmp_path, direction_curve=str(curve), guidance=3.0, seed=7)
    job = host_client.HostJob(request, address_of(daemon)).start()
    tracker = _finish(job)
    job.close()
    assert tracker.phase is job_state.JobPhase.DONE
    assert daemon.queue is not None
    spec = daemon.queue.get(job.job_id).spec
    assert (spec.direction_curve, spec.guidance, spec.seed) == (curve, 3.0, 7)


def test_host_job_refusal_is_immediate_and_explained(daemon: Daemon, tmp_path: Path) -> None:
    outside = Path(sys.prefix) / "bin" / "python"  # exists, but not under the daemon's allowed folder
    job = host_client.HostJob(_request(tmp_path, media=str(outside)), address_of(daemon))
    with pytest.raises(JobFailed) as failure:
        job.start()
    assert failure.value.code == "path_not_allowed"
    message = host_client.describe_error(failure.value)
    assert "--allow-dir" in message and "path_not_allowed" in message


def test_host_job_cancel(tmp_path: Path) -> None:
    with Daemon(fake_settings(tmp_path), fast_engine(delay_s=3.0, steps=30)) as running:
        job = host_client.HostJob(_request(tmp_path), address_of(running)).start()
        deadline = time.monotonic() + 5
        while job.poll().phase is not job_state.JobPhase.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        job.cancel()
        assert job.tracker.status_text == "clip: cancelling"
        tracker = _finish(job)
        job.close()
    assert tracker.phase is job_state.JobPhase.CANCELLED


def test_closing_a_polled_job_cancels_it_on_the_daemon(tmp_path: Path) -> None:
    """REAPER/Resolve follow jobs with `poll`; `close` alone must still send the cancel."""
    with Daemon(fake_settings(tmp_path), fast_engine(delay_s=3.0, steps=30)) as running:
        job = host_client.HostJob(_request(tmp_path), address_of(running)).start(threaded=False)
        job.close()
        assert running.queue is not None
        deadline = time.monotonic() + 5
        while running.queue.get(job.job_id).state.value != "cancelled":
            assert time.monotonic() < deadline, running.queue.get(job.job_id).state
            time.sleep(0.02)


def test_no_daemon(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = DaemonAddress("127.0.0.1", port, None, "explicit")
    job = host_client.HostJob(_request(tmp_path), address, submit_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(DaemonUnavailable) as failure:
        job.start()
    assert time.monotonic() - started < 2.0
    assert "visage serve" in host_client.describe_error(failure.value, address)
    check = host_client.check_connection(f"127.0.0.1:{port}")
    assert not check.ok and "No ViSAGe daemon" in check.message


def test_check_connection_and_auto_discovery(daemon: Daemon, tmp_path: Path) -> None:
    address = address_of(daemon)
    check = host_client.check_connection(f"{address.host}:{address.port}")
    assert check.ok and "fake-1" in check.message, check.message
    found = host_client.locate_daemon("auto", state_dir=tmp_path / "state")
    assert (found.host, found.port, found.source) == (address.host, address.port, "endpoint-file")
    assert not host_client.check_connection("not an address").ok


def test_auto_discovery_survives_a_zeroconf_that_does_not_import(
    daemon: Daemon, broken_zeroconf: BrokenZeroconf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 16: find_spec finds zeroconf, importing it fails: warn, then the default address."""
    address = address_of(daemon)
    monkeypatch.setattr(bridge_const, "DEFAULT_UDP_PORT", address.port)  # the fallback reaches the daemon
    warnings: list[str] = []
    found = host_client.locate_daemon("auto", warn=warnings.append)
    assert (found.host, found.port, found.source) == ("127.0.0.1", address.port, "default")
    (warning,) = warnings
    assert (
        "ZeroConf" in warning
        and broken_zeroconf.error in warning
        and str(broken_zeroconf.state_dir) in warning
    )
    assert host_client.check_connection("auto").ok  # the same fallback, without a warning callback
    # An endpoint file is read first: zeroconf is not even imported, nothing to warn about.
    assert host_client.locate_daemon("auto", state_dir=daemon.settings.state_dir, warn=warnings.append)
    assert len(warnings) == 1


def test_default_state_dir_without_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    expected = Path(platformdirs.user_data_dir("visage", appauthor=False))
    monkeypatch.setitem(sys.modules, "platformdirs", None)
    assert host_client.default_state_dir() == expected == tmp_path / "visage"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("10.0.0.2", False), ("studio.local", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert host_client.is_loopback(host) is loopback
