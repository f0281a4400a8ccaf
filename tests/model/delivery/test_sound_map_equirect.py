"""Sound maps over 360° video: the panorama is the picture, and the heat lands on the source's pixel."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import av
import numpy as np
import pytest
from panorama_factory import disc_frames, write_panorama_video
from spherical_media import cbmp, equi, sv3d, with_video_boxes
from spherical_media import st3d as st3d_box

from visage.model.cli import build_parser
from visage.model.delivery.sound_map_render import SoundMapError, render_sound_map
from visage.model.features.direction import CameraDirection
from visage.model.files.audio_io import write_ambix

RATE = 16_000
SOURCE = (60.0, 20.0)  # azimuth (left), elevation of the sound, degrees
DISC = (-120.0, 0.0)  # where the picture's white disc is: far from the sound, so no heat covers it
CYAN = (0, 255, 255)  # the ring at the loudest direction


def _ambix(azimuth_deg: float, elevation_deg: float, seconds: float = 1.0) -> np.ndarray:
    """A noise source encoded with the AmbiX (ACN, SN3D) plane-wave gains, written out here."""
    s = np.random.default_rng(1).standard_normal(int(RATE * seconds)) * 0.1
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    gains = [1.0, math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)]  # W, Y, Z, X
    return np.stack([g * s for g in gains]).astype(np.float32)


def _pixel(azimuth_deg: float, elevation_deg: float, width: int, height: int) -> tuple[float, float]:
    """Equirectangular pixel of a direction: centre column = front, left half = positive azimuth."""
    return (180 - azimuth_deg) / 360 * width - 0.5, (90 - elevation_deg) / 180 * height - 0.5


@pytest.fixture(scope="module")
def panorama(tmp_path_factory) -> Path:
    """A 1-s 256x128 equirectangular video, a white disc at DISC, no spherical metadata."""
    frames = disc_frames([DISC] * 8, size=(256, 128))
    return write_panorama_video(tmp_path_factory.mktemp("pano") / "pano.mp4", frames, fps=8)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("result") / "result.wav"
    write_ambix(path, _ambix(*SOURCE), RATE)
    return path


def _png(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def _ring_centre(picture: np.ndarray) -> tuple[float, float]:
    ring = np.argwhere((picture == CYAN).all(axis=-1))
    assert len(ring), "no ring drawn"
    return float(ring[:, 1].mean()), float(ring[:, 0].mean())


def test_heat_peak_lands_on_the_source_s_pixel_of_the_panorama(panorama, result, tmp_path) -> None:
    out = tmp_path / "map.png"
    rendered = render_sound_map(result, panorama, out, panorama=True, equirect=True, width=256)
    assert rendered.size == (256, 128) and rendered.on_360_video
    picture = _png(out)
    assert picture.shape == (128, 256, 3)
    x, y = _ring_centre(picture)
    expected_x, expected_y = _pixel(*SOURCE, 256, 128)
    assert x == pytest.approx(expected_x, abs=1.5) and y == pytest.approx(expected_y, abs=1.5)
    # The hottest pixels sit around the source (the heat is blended over the dim texture).
    heat = picture.astype(int).sum(axis=-1)
    heat[(picture == CYAN).all(axis=-1)] = 0
    row, col = np.unravel_index(int(np.argmax(heat[:, :120])), heat[:, :120].shape)  # left half only
    assert abs(col - expected_x) <= 12 and abs(row - expected_y) <= 12
    # The background is the video's own frame: its white disc shows at its direction, not pasted.
    disc_x, disc_y = _pixel(*DISC, 256, 128)
    assert picture[round(disc_y), round(disc_x)].min() > 200


def test_the_camera_view_is_cut_out_of_the_panorama(panorama, tmp_path) -> None:
    """Without --panorama, a camera looking at the source sees it (and its ring) in the middle."""
    result = tmp_path / "result.wav"
    write_ambix(result, _ambix(*DISC), RATE)
    out = tmp_path / "view.png"
    rendered = render_sound_map(result, panorama, out, camera=CameraDirection(*DISC), equirect=True, width=96)
    assert rendered.size == (96, 96)
    picture = _png(out)
    x, y = _ring_centre(picture)
    assert x == pytest.approx(47.5, abs=1.5) and y == pytest.approx(47.5, abs=1.5)
    assert picture[48, 48].min() > 120  # the disc, under the heat


def test_spherical_metadata_is_found_without_the_flag(panorama, result, tmp_path, capsys) -> None:
    tagged = with_video_boxes(panorama, tmp_path / "tagged.mp4", entry=st3d_box(0) + sv3d(equi()))
    out = tmp_path / "map.png"
    args = build_parser().parse_args(
        ["viz", str(result), "--video", str(tagged), "-o", str(out), "--panorama", "--width", "256"]
    )
    module, func = args._run
    assert getattr(importlib.import_module(module), func)(args) == 0
    said = capsys.readouterr().out
    assert "over the whole 360° video" in said and "camera yaw" not in said  # no camera drew this map
    x, y = _ring_centre(_png(out))
    expected_x, expected_y = _pixel(*SOURCE, 256, 128)
    assert x == pytest.approx(expected_x, abs=1.5) and y == pytest.approx(expected_y, abs=1.5)


def test_a_pose_yaw_turns_the_frame_under_the_world_fixed_sound(panorama, result, tmp_path) -> None:
    """Pose yaw 90°: the frame's pixel at azimuth a shows the world's a + 90°, so the source at world
    azimuth 60° is drawn at the frame's -30°."""
    tagged = with_video_boxes(
        panorama, tmp_path / "posed.mp4", entry=st3d_box(0) + sv3d(equi(), pose=(90.0, 0, 0))
    )
    out = tmp_path / "map.png"
    render_sound_map(result, tagged, out, panorama=True, width=256)
    x, y = _ring_centre(_png(out))
    expected_x, expected_y = _pixel(SOURCE[0] - 90.0, SOURCE[1], 256, 128)
    assert x == pytest.approx(expected_x, abs=1.5) and y == pytest.approx(expected_y, abs=1.5)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (st3d_box(1) + sv3d(equi()), "top-bottom"),
        (st3d_box(0) + sv3d(cbmp()), "cubemap"),
        (st3d_box(0) + sv3d(equi(top=1 << 30, bottom=1 << 30)), "crop"),
        (st3d_box(0) + sv3d(equi(), pose=(0.0, 10.0, 0.0)), "pitch 10"),
    ],
)
def test_other_360_layouts_are_refused_by_name(panorama, result, tmp_path, entry, says) -> None:
    tagged = with_video_boxes(panorama, tmp_path / "tagged.mp4", entry=entry)
    with pytest.raises(SoundMapError, match=f"{tagged}: its spherical metadata says .*{says}"):
        render_sound_map(result, tagged, tmp_path / "map.png", panorama=True)
    assert not (tmp_path / "map.png").exists()


def test_a_moving_map_over_a_panorama_has_the_video_s_frames(panorama, result, tmp_path) -> None:
    rendered = render_sound_map(
        result, panorama, tmp_path / "map.mp4", panorama=True, equirect=True, width=128, audio=False
    )
    assert (rendered.frames, rendered.size) == (8, (128, 64))
    with av.open(str(rendered.path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (64, 128, 3)


def test_the_moving_map_can_sound_as_youtube_plays_it(panorama, result, tmp_path) -> None:
    rendered = render_sound_map(
        result, panorama, tmp_path / "yt.mp4", panorama=True, equirect=True, width=128, renderer="youtube"
    )
    with av.open(str(rendered.path)) as container:
        stereo = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)  # [2, n] fltp
    assert stereo.shape[0] == 2
    ild = 10 * math.log10(float(np.mean(stereo[0] ** 2) / np.mean(stereo[1] ** 2)))
    assert ild > 3.0  # the source is 60° to the left of the listener facing the front
    with pytest.raises(ValueError, match="preview renderer must be one of"):
        render_sound_map(result, panorama, tmp_path / "bad.mp4", renderer="thrive")


def test_a_result_generated_with_equirect_is_drawn_on_its_panorama_without_the_flag(
    panorama, result, tmp_path
) -> None:
    """The sidecar says `visage generate --equirect` read the video as 360°: viz needs no second flag."""
    forced = tmp_path / "forced.wav"
    forced.write_bytes(result.read_bytes())
    sidecar = {"input": {"projection": "equirectangular", "detected_by": "--equirect"}}
    Path(f"{forced}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    out = tmp_path / "map.png"
    assert render_sound_map(forced, panorama, out, panorama=True, width=256).size == (256, 128)
    x, y = _ring_centre(_png(out))
    expected_x, expected_y = _pixel(*SOURCE, 256, 128)
    assert x == pytest.approx(expected_x, abs=1.5) and y == pytest.approx(expected_y, abs=1.5)
    disc_x, disc_y = _pixel(*DISC, 256, 128)
    assert _png(out)[round(disc_y), round(disc_x)].min() > 200  # the video's own frame, not pasted


def test_equirect_on_a_picture_that_is_not_2_to_1_is_refused(result, tmp_path) -> None:
    """As for generate and mux: a forced panorama must have a full sphere's shape."""
    square = write_panorama_video(tmp_path / "square.mp4", disc_frames([DISC] * 2, size=(128, 128)), fps=8)
    refused = r"square\.mp4: --equirect needs a 2:1 .* the picture is 128 x 128"
    with pytest.raises(SoundMapError, match=refused):
        render_sound_map(result, square, tmp_path / "map.png", panorama=True, equirect=True, width=128)
    assert not (tmp_path / "map.png").exists()


def test_the_sidecar_s_equirect_does_not_hold_for_a_picture_that_is_not_2_to_1(result, tmp_path) -> None:
    """A square video is not the 2:1 panorama generate --equirect read: drawn as a flat picture."""
    square = write_panorama_video(tmp_path / "square.mp4", disc_frames([DISC] * 2, size=(128, 128)), fps=8)
    forced = tmp_path / "forced.wav"
    forced.write_bytes(result.read_bytes())
    sidecar = {"input": {"projection": "equirectangular", "detected_by": "--equirect"}}
    Path(f"{forced}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    assert render_sound_map(forced, square, tmp_path / "map.png", width=64).size == (64, 64)
