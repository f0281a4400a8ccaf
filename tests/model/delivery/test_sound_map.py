"""Sound maps: a source lands on the right pixel of a camera or a panorama; MP4 frame count and timing."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media_factory import find_square, make_test_video, time_from_u

from visage.model.audio.ambisonics import encode_mono
from visage.model.delivery.sound_map import (
    CameraView,
    heat_levels,
    map_grid,
    map_peak,
    panorama_directions,
    panorama_pixels,
    sample_map,
    view_directions,
    view_pixels,
    windowed_energy_maps,
)
from visage.model.delivery.sound_map_picture import INFERNO, CameraPainter, blend_heat, colorize
from visage.model.delivery.sound_map_render import SoundMapError, render_sound_map
from visage.model.features.direction import CameraDirection
from visage.model.files.audio_io import OutputExistsError, write_ambix

RATE = 16_000
GRID = map_grid(2.0)  # the renderer's resolution
FINE = map_grid(1.0)  # half a degree from any direction: the heat's argmax is within a pixel


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(RATE * seconds)).astype(np.float32) * 0.1


def _source(azimuth_deg: float, elevation_deg: float, seconds: float = 0.5) -> np.ndarray:
    return encode_mono(_noise(seconds), math.radians(azimuth_deg), math.radians(elevation_deg))


def _levels(foa: np.ndarray, grid=GRID) -> np.ndarray:
    return heat_levels(windowed_energy_maps(foa, RATE, [foa.shape[1] / RATE / 2], 10.0, grid))[0]


def _argmax_xy(image: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(int(np.argmax(image)), image.shape)
    return int(col), int(row)


def test_map_grid_holds_pixel_centres() -> None:
    grid = map_grid(90.0)
    np.testing.assert_allclose(np.rad2deg(grid.azimuths), [135, 45, -45, -135])
    np.testing.assert_allclose(np.rad2deg(grid.elevations), [45, -45])


def test_camera_geometry_by_hand() -> None:
    # a source 20° left and 10° up, camera straight ahead, 90° wide, 160 x 120
    view = CameraView(0.0, 0.0, math.radians(90), 160, 120)
    where = view_pixels(view, math.radians(20), math.radians(10))
    x = (1 - math.tan(math.radians(20))) * 80 - 0.5  # tan(45°) = 1: half the width per unit
    y = (1 - math.tan(math.radians(10)) / math.cos(math.radians(20)) / 0.75) * 60 - 0.5
    assert (float(where.x), float(where.y), bool(where.in_front)) == pytest.approx((x, y, True))
    assert not view_pixels(view, math.radians(180), 0.0).in_front


def test_camera_directions_and_pixels_are_inverse() -> None:
    view = CameraView(math.radians(-35), math.radians(25), math.radians(70), 64, 36)
    az, el = view_directions(view)
    where = view_pixels(view, az, el)
    cols, rows = np.meshgrid(np.arange(64), np.arange(36))
    np.testing.assert_allclose(where.x, cols, atol=1e-9)
    np.testing.assert_allclose(where.y, rows, atol=1e-9)
    # the camera looks where it is told, and has no roll: its middle column stays at its yaw
    centre = view_pixels(view, math.radians(-35), math.radians(25))
    assert (float(centre.x), float(centre.y)) == pytest.approx((31.5, 17.5))
    assert np.ptp(np.unwrap(az[:, 31:33].mean(axis=1))) < 1e-9


@pytest.mark.parametrize(("azimuth", "elevation"), [(20, 10), (-30, -15), (0, 0)])
def test_source_appears_at_its_pixel_in_the_camera(azimuth, elevation) -> None:
    view = CameraView(0.0, 0.0, math.radians(90), 160, 120)
    az, el = view_directions(view)
    heat = sample_map(_levels(_source(azimuth, elevation), FINE), az, el)  # [H, W]
    expected = view_pixels(view, math.radians(azimuth), math.radians(elevation))
    x, y = _argmax_xy(heat)
    assert abs(x - expected.x) <= 1.5 and abs(y - expected.y) <= 1.5


def test_source_appears_at_its_pixel_in_a_rotated_camera() -> None:
    view = CameraView(math.radians(120), math.radians(-20), math.radians(60), 96, 54)
    az, el = view_directions(view)
    heat = sample_map(_levels(_source(135, -10), FINE), az, el)
    expected = view_pixels(view, math.radians(135), math.radians(-10))
    x, y = _argmax_xy(heat)
    assert abs(x - expected.x) <= 1.5 and abs(y - expected.y) <= 1.5


def test_source_appears_at_its_pixel_in_the_panorama() -> None:
    az, el = panorama_directions(360, 180)
    heat = sample_map(_levels(_source(20, 10), FINE), az, el)
    assert _argmax_xy(heat) in {(159, 79), (160, 79), (159, 80), (160, 80)}  # centre at (159.5, 79.5)
    assert panorama_pixels(math.radians(20), math.radians(10), 360, 180) == pytest.approx((159.5, 79.5))


@pytest.mark.parametrize(("azimuth", "elevation"), [(25, -12), (-179.3, 41.7), (0.4, 0.0)])
def test_map_peak_is_finer_than_the_grid(azimuth, elevation) -> None:
    peak = map_peak(_levels(_source(azimuth, elevation)))
    assert peak is not None
    assert np.rad2deg(peak[1]) == pytest.approx(elevation, abs=0.25)
    assert (np.rad2deg(peak[0]) - azimuth + 180) % 360 - 180 == pytest.approx(0, abs=0.25)
    assert map_peak(np.zeros((90, 180))) is None


def test_windows_follow_the_sound_in_time() -> None:
    left, right = _source(90, 0, 1.0), _source(-90, 0, 1.0)
    foa = np.concatenate([left, right], axis=1)  # 1 s on the left, then 1 s on the right
    maps = windowed_energy_maps(foa, RATE, [0.5, 1.5, 5.0], 0.25, GRID)
    assert maps.shape == (3, 90, 180)
    columns = [int(np.argmax(m.max(axis=0))) for m in maps[:2]]
    assert np.rad2deg(GRID.azimuths[columns]) == pytest.approx([91, -89])
    assert not maps[2].any()  # a window past the end is silent
    levels = heat_levels(maps)
    assert levels.max() == 1.0 and levels.min() == 0.0


def test_colours_and_blending() -> None:
    np.testing.assert_array_equal(colorize(np.linspace(0, 1, 9)), INFERNO.astype(np.uint8))
    picture = np.full((4, 6, 3), 100, np.uint8)
    np.testing.assert_array_equal(blend_heat(picture, np.zeros((4, 6))), picture)
    full = blend_heat(picture, np.ones((4, 6)), max_alpha=1.0)
    assert (full == INFERNO[-1].astype(np.uint8)).all()


def test_camera_picture_marks_the_loudest_direction() -> None:
    view = CameraView(0.0, 0.0, math.radians(90), 160, 120)
    picture = CameraPainter(view)(np.zeros((120, 160, 3), np.uint8), _levels(_source(-30, -15)))
    ring = np.argwhere((picture == (0, 255, 255)).all(axis=-1))
    expected = view_pixels(view, math.radians(-30), math.radians(-15))
    assert len(ring) > 10
    assert ring[:, 1].mean() == pytest.approx(float(expected.x), abs=1.5)
    assert ring[:, 0].mean() == pytest.approx(float(expected.y), abs=1.5)


def _grey_video(path: Path, seconds: float = 2.0, fps: int = 25, size: tuple[int, int] = (160, 120)) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for k in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 40, np.uint8), format="rgb24")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def grey_video(tmp_path_factory) -> Path:
    return _grey_video(tmp_path_factory.mktemp("viz") / "grey.mp4")


def _decode(path: Path) -> tuple[list[np.ndarray], list[float], tuple[int, float] | None]:
    """Frames, their times, and (channels, seconds) of the audio track, read while the file is open
    (PyAV 18 refuses to read a stream's fields after its container is closed)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0] if container.streams.audio else None
        audio = None
        if stream is not None:
            ticks = stream.duration
            seconds = float(ticks * stream.time_base) if ticks is not None else float("nan")
            audio = (stream.codec_context.layout.nb_channels, seconds)
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
    return frames, times, audio


def test_png_still_shows_the_source_where_the_camera_sees_it(grey_video, tmp_path) -> None:
    result = tmp_path / "result.wav"
    write_ambix(result, _source(25, -12, 2.0), RATE)
    out = tmp_path / "map.png"
    rendered = render_sound_map(result, grey_video, out, camera=CameraDirection(10, 0), width=160)
    assert (rendered.kind, rendered.frames, rendered.size) == ("png", 1, (160, 120))
    (picture,), _, _ = _decode(out)
    assert picture.shape == (120, 160, 3)
    view = CameraView(math.radians(10), 0.0, math.radians(90), 160, 120)
    expected = view_pixels(view, math.radians(25), math.radians(-12))
    heat = picture.astype(int).sum(axis=-1)  # brightest where the heat is strongest (grey picture)
    heat[(picture == (0, 255, 255)).all(axis=-1)] = 0  # not the ring itself
    ring = np.argwhere((picture == (0, 255, 255)).all(axis=-1))
    assert ring[:, 1].mean() == pytest.approx(float(expected.x), abs=1.5)
    assert ring[:, 0].mean() == pytest.approx(float(expected.y), abs=1.5)
    x, y = _argmax_xy(heat)
    assert abs(x - expected.x) <= 10 and abs(y - expected.y) <= 10
    with pytest.raises(OutputExistsError):
        render_sound_map(result, grey_video, out)


def test_mp4_has_one_frame_per_period_and_the_preview_track(grey_video, tmp_path) -> None:
    result = tmp_path / "result.wav"
    write_ambix(result, _source(0, 0, 1.3), RATE)
    rendered = render_sound_map(result, grey_video, tmp_path / "map.mp4", width=160)
    assert (rendered.frames, rendered.fps, rendered.size) == (33, Fraction(25), (160, 120))  # ceil(1.3 · 25)
    frames, times, audio = _decode(rendered.path)
    assert len(frames) == 33
    np.testing.assert_allclose(times, np.arange(33) / 25, atol=1e-6)
    assert audio is not None and audio[0] == 2
    assert audio[1] == pytest.approx(1.3, abs=0.05)


def test_mp4_panorama_at_a_chosen_rate(grey_video, tmp_path) -> None:
    result = tmp_path / "result.wav"
    write_ambix(result, _source(-60, 20, 1.0), RATE)
    rendered = render_sound_map(
        result, grey_video, tmp_path / "pano.mp4", panorama=True, width=200, fps=Fraction(10), audio=False
    )
    assert (rendered.frames, rendered.size) == (10, (200, 100))
    frames, times, audio = _decode(rendered.path)
    assert len(frames) == 10 and audio is None
    np.testing.assert_allclose(times, np.arange(10) / 10, atol=1e-6)


def test_frames_come_from_the_result_s_place_in_the_video(tmp_path) -> None:
    video = make_test_video(tmp_path / "moving.mp4", duration=3.0, size=(128, 128))
    result = tmp_path / "silent.wav"
    write_ambix(result, np.zeros((4, RATE)), RATE)  # silence: no heat, the frames show as they are
    rendered = render_sound_map(result, video.path, tmp_path / "m.mp4", start_s=1.2, width=128, audio=False)
    frames, _, _ = _decode(rendered.path)
    assert len(frames) == 25
    for k in (0, 12, 24):  # output frame k shows the video at 1.2 + k / 25 s (± one source frame)
        u, _ = find_square(frames[k])
        assert time_from_u(u, video.duration) == pytest.approx(1.2 + k / 25, abs=0.05)


def test_phone_videos_are_drawn_upright(tmp_path) -> None:
    video = make_test_video(tmp_path / "phone.mp4", duration=1.0, size=(128, 96), rotation=-90)
    result = tmp_path / "silent.wav"
    write_ambix(result, np.zeros((4, RATE)), RATE)
    rendered = render_sound_map(result, video.path, tmp_path / "phone.png", width=96, at_s=0.5)
    assert rendered.size == (96, 128)  # portrait, as displayed
    (picture,), _, _ = _decode(rendered.path)
    u, v = find_square(picture)
    side, top = 96, (128 - 96) / 2  # the square moves inside the central square of the display
    assert (v * 128 - top) / side == pytest.approx(0.3, abs=0.05)  # upper third: upright
    assert time_from_u(u, video.duration) == pytest.approx(0.5, abs=0.05)  # left to right: not mirrored


def test_bad_requests_fail_with_reasons(grey_video, tmp_path) -> None:
    result = tmp_path / "result.wav"
    write_ambix(result, _source(0, 0, 1.0), RATE)
    with pytest.raises(ValueError, match="unknown output type '.gif'"):
        render_sound_map(result, grey_video, tmp_path / "map.gif")
    with pytest.raises(SoundMapError, match="outside the video"):
        render_sound_map(result, grey_video, tmp_path / "late.png", start_s=5.0)
    with pytest.raises(SoundMapError, match="outside the result"):
        render_sound_map(result, grey_video, tmp_path / "at.png", at_s=3.0)
    with pytest.raises(SoundMapError, match="hfov"):
        render_sound_map(result, grey_video, tmp_path / "fov.png", hfov_deg=180)
    # a renderer for a map with no sound track was ignored
    with pytest.raises(
        SoundMapError, match="--renderer youtube picks the MP4's binaural track; a PNG has none"
    ):
        render_sound_map(result, grey_video, tmp_path / "yt.png", renderer="youtube")
    with pytest.raises(SoundMapError, match="--renderer youtube .* none with --no-audio"):
        render_sound_map(result, grey_video, tmp_path / "yt.mp4", renderer="youtube", audio=False)


def test_the_map_never_replaces_its_video(tmp_path) -> None:
    video = _grey_video(tmp_path / "grey.mp4")
    before = video.read_bytes()
    result = tmp_path / "result.wav"
    write_ambix(result, _source(0, 0, 1.0), RATE)
    with pytest.raises(SoundMapError, match=r"grey\.mp4: the map would replace the video it is drawn over"):
        render_sound_map(result, video, video, overwrite=True)
    assert video.read_bytes() == before
