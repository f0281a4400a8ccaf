"""The views a 360° video gives the model: where they look, per window, and that they are the dataset's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from panorama_factory import (
    add_spherical_metadata,
    angular_distance,
    disc_frames,
    moving_disc_centres,
    write_panorama_video,
)
from recording_factory import make_recording

from visage.model.dataset.build import BuildOptions, recording_clips
from visage.model.features.direction import CameraDirection
from visage.model.features.windows import plan_windows
from visage.model.files.spherical_video import SphericalVideo
from visage.model.files.video_io import probe_video
from visage.model.inference.panorama_input import FORCED, PanoramaInput, panorama_input
from visage.model.inference.panorama_views import saved_view_frames, window_views
from visage.model.network.sequence import RELEASED_SEQUENCE

SIDE = 224
FORCED_PANORAMA = PanoramaInput(True, FORCED)


def bright(view: np.ndarray) -> np.ndarray:
    return np.all(view > 200, axis=-1)  # [S, S]: the white disc (the background stays below 110)


def disc_centre(view: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(bright(view))
    assert len(rows), "no disc in the view"
    return float(rows.mean()), float(cols.mean())


def expected_column(azimuth_right_of_centre_deg: float, fov_deg: float = 90.0) -> float:
    """Pinhole camera: a point at horizontal angle Δ right of the optical axis is at tan Δ / tan(fov/2)."""
    a = math.tan(math.radians(azimuth_right_of_centre_deg)) / math.tan(math.radians(fov_deg / 2))
    return (a + 1) * SIDE / 2 - 0.5


def views_of(path: Path, directions: list[CameraDirection], end: float, **kwargs):
    windows = plan_windows(0.0, end, RELEASED_SEQUENCE)
    source = kwargs.pop("source", FORCED_PANORAMA)
    return windows, list(window_views(path, 0.0, end, windows, directions, source, **kwargs))


@pytest.mark.parametrize(("az", "el"), [(0.0, 0.0), (120.0, 25.0), (-170.0, -20.0), (180.0, 0.0)])
def test_the_view_at_the_object_has_it_at_its_centre_and_the_opposite_view_has_none(
    tmp_path: Path, az: float, el: float
) -> None:
    path = write_panorama_video(tmp_path / "pano.mp4", disc_frames([(az, el)] * 8), fps=8)
    _, (toward,) = views_of(path, [CameraDirection(az, el)], 1.0)
    _, (away,) = views_of(path, [CameraDirection(az + 180.0, -el)], 1.0)
    assert toward.frames.shape == (4, SIDE, SIDE, 3) and toward.frames.dtype == np.uint8
    assert not toward.looked and toward.direction == toward.rendered == CameraDirection(az, el)
    for view in toward.frames:
        assert disc_centre(view) == pytest.approx(((SIDE - 1) / 2, (SIDE - 1) / 2), abs=2.0)
    assert not bright(away.frames).any()


def test_an_object_to_the_left_appears_where_a_pinhole_camera_puts_it(tmp_path: Path) -> None:
    path = write_panorama_video(tmp_path / "pano.mp4", disc_frames([(30.0, 0.0)] * 4, radius_deg=4.0), fps=8)
    _, (view,) = views_of(path, [CameraDirection(0.0, 0.0)], 0.5)
    row, col = disc_centre(view.frames[0])
    assert row == pytest.approx((SIDE - 1) / 2, abs=2.0)
    assert col == pytest.approx(expected_column(-30.0), abs=2.0)  # 30° left of the axis


def test_each_window_looks_its_own_way_and_the_saved_clip_shows_each_until_the_next(tmp_path: Path) -> None:
    """6 s at 4 fps: window 0 holds frames 0-19, window 1 frames 16-23; a disc in front, one to the left."""
    both = np.maximum(disc_frames([(0.0, 0.0)] * 24), disc_frames([(90.0, 0.0)] * 24))  # both discs
    path = write_panorama_video(tmp_path / "pano.mp4", both, fps=4)
    windows, views = views_of(path, [CameraDirection(0.0, 0.0), CameraDirection(90.0, 0.0)], 6.0)
    assert [(w.clip_start, w.clip_stop) for w in windows] == [(0, 20), (16, 24)]
    assert [len(v.frames) for v in views] == [20, 8]
    assert [v.rendered for v in views] == [CameraDirection(0.0, 0.0), CameraDirection(90.0, 0.0)]
    for view in views:
        assert disc_centre(view.frames[0]) == pytest.approx(((SIDE - 1) / 2, (SIDE - 1) / 2), abs=2.0)
    saved = saved_view_frames(windows, [v.frames for v in views])
    assert len(saved) == 24
    np.testing.assert_array_equal(saved[:16], views[0].frames[:16])
    np.testing.assert_array_equal(saved[16:], views[1].frames)


@pytest.mark.parametrize(("az", "el"), [(-65.0, 15.0), (178.0, -10.0)])
def test_look_auto_finds_a_moving_object_in_a_compressed_video(tmp_path: Path, az: float, el: float) -> None:
    path = write_panorama_video(
        tmp_path / "pano.mp4", disc_frames(moving_disc_centres(az, el, 16, 16.0)), fps=8
    )
    asked = CameraDirection(0.0, 0.0)
    _, (view,) = views_of(path, [asked], 2.0, look="auto")
    assert view.looked and view.rendered == view.direction
    error = angular_distance(
        math.radians(view.direction.yaw_deg),
        math.radians(view.direction.pitch_deg),
        math.radians(az),
        math.radians(el),
    )
    assert math.degrees(float(error)) < 10.0
    assert bright(view.frames[len(view.frames) // 2]).any()


def test_look_auto_keeps_the_asked_direction_when_nothing_moves(tmp_path: Path) -> None:
    path = write_panorama_video(tmp_path / "pano.mp4", disc_frames([(40.0, 0.0)] * 8), fps=8)
    asked = CameraDirection(-20.0, 5.0)
    _, (view,) = views_of(path, [asked], 1.0, look="auto")
    assert not view.looked and view.direction == asked


def test_a_pose_yaw_renders_the_world_direction_from_the_turned_panorama(tmp_path: Path) -> None:
    """With pose yaw 40°, the disc drawn at panorama azimuth 20° is at world azimuth 60°."""
    path = write_panorama_video(tmp_path / "posed.mp4", disc_frames([(20.0, 0.0)] * 4), fps=8)
    add_spherical_metadata(path, SphericalVideo("equirectangular", "mono", "sv3d", pose_yaw_deg=40.0))
    source = panorama_input(path, probe_video(path))
    _, (view,) = views_of(path, [CameraDirection(60.0, 0.0)], 0.5, source=source)
    assert view.direction == CameraDirection(60.0, 0.0) and view.rendered == CameraDirection(20.0, 0.0)
    assert disc_centre(view.frames[0]) == pytest.approx(((SIDE - 1) / 2, (SIDE - 1) / 2), abs=2.0)


def test_inference_renders_exactly_the_pictures_the_dataset_builder_trains_on(tmp_path: Path) -> None:
    path = make_recording(tmp_path / "rec.mp4", math.radians(50.0), math.radians(10.0), seconds=5)
    clip = next(recording_clips(path, BuildOptions()))
    end = clip.start_s + clip.duration_s
    windows = plan_windows(clip.start_s, end, RELEASED_SEQUENCE)
    (view,) = window_views(path, clip.start_s, end, windows, [clip.direction.camera], FORCED_PANORAMA)
    np.testing.assert_array_equal(view.frames, clip.views())


def test_a_flat_source_or_mismatched_directions_are_refused(tmp_path: Path) -> None:
    path = write_panorama_video(tmp_path / "pano.mp4", disc_frames([(0.0, 0.0)] * 4), fps=8)
    windows = plan_windows(0.0, 0.5, RELEASED_SEQUENCE)
    with pytest.raises(ValueError, match="read as flat"):
        next(window_views(path, 0.0, 0.5, windows, [CameraDirection(0, 0)], PanoramaInput(False)))
    with pytest.raises(ValueError, match="2 directions for 1 windows"):
        next(window_views(path, 0.0, 0.5, windows, [CameraDirection(0, 0)] * 2, FORCED_PANORAMA))
