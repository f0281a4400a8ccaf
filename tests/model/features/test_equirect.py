"""Field-of-view views of panoramas: the view looks where the camera points, left is left, seams wrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visage.model.features.direction import CameraDirection
from visage.model.features.equirect import (
    EquirectError,
    equirect_coordinates,
    equirect_direction,
    pixel_directions,
    render_view,
    view_directions,
    view_pixel,
)


def blob_panorama(azimuth: float, elevation: float, size: tuple[int, int] = (360, 180)) -> np.ndarray:
    width, height = size
    x, y = equirect_coordinates(azimuth, elevation, width, height)
    yy, xx = np.mgrid[:height, :width]
    dx = (xx - x + width / 2) % width - width / 2
    image = np.zeros((height, width, 3), np.uint8)
    image[dx**2 + (yy - y) ** 2 < 16] = 255
    return image


def blob_centre(view: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(view[..., 0] > 128)
    return float(rows.mean()), float(cols.mean())


@pytest.mark.parametrize(("yaw", "pitch"), [(0, 0), (30, 10), (-120, -25), (179, 40), (-179, 0)])
def test_the_centre_of_the_view_looks_at_the_camera_direction(yaw: float, pitch: float) -> None:
    az, el = view_directions(CameraDirection(yaw, pitch), size=64)
    centre_az, centre_el = pixel_directions(31.5, 31.5, CameraDirection(yaw, pitch), size=64)
    assert math.degrees(centre_el) == pytest.approx(pitch, abs=1e-9)
    assert math.degrees(centre_az) % 360 == pytest.approx(yaw % 360, abs=1e-9)
    assert az.shape == el.shape == (64, 64)


def test_left_of_the_picture_is_positive_azimuth_and_top_is_up() -> None:
    az, el = view_directions(CameraDirection(0, 0), size=8)
    assert az[4, 0] > 0 > az[4, -1]  # left column looks left (AmbiX +azimuth)
    assert el[0, 4] > 0 > el[-1, 4]
    assert math.degrees(az[4, 0]) == pytest.approx(math.degrees(math.atan(7 / 8)), abs=1e-9)


@pytest.mark.parametrize(("row", "col"), [(10.0, 20.0), (0.0, 0.0), (200.5, 13.25)])
def test_view_pixel_inverts_pixel_directions(row: float, col: float) -> None:
    camera = CameraDirection(70, -20)
    az, el = pixel_directions(row, col, camera)
    back = view_pixel(float(az), float(el), camera)
    assert back is not None
    assert back == pytest.approx((row, col), abs=1e-9)


def test_a_direction_behind_the_camera_is_not_in_the_view() -> None:
    assert view_pixel(math.pi, 0.0, CameraDirection(0, 0)) is None


def test_equirect_coordinates_round_trip() -> None:
    x, y = equirect_coordinates(np.array([0.3, -2.0]), np.array([0.1, -0.7]), 360, 180)
    az, el = equirect_direction(x, y, 360, 180)
    np.testing.assert_allclose(az, [0.3, -2.0], atol=1e-12)
    np.testing.assert_allclose(el, [0.1, -0.7], atol=1e-12)
    assert equirect_coordinates(0.0, 0.0, 360, 180) == pytest.approx((179.5, 89.5))  # front = centre


@pytest.mark.parametrize(("az_deg", "el_deg"), [(0, 0), (60, 20), (-100, -30), (180, 10)])
def test_rendering_toward_a_blob_puts_it_in_the_middle(az_deg: float, el_deg: float) -> None:
    panorama = blob_panorama(math.radians(az_deg), math.radians(el_deg))
    view = render_view(panorama, CameraDirection(az_deg, el_deg), size=96)
    row, col = blob_centre(view)
    assert row == pytest.approx(47.5, abs=1.5) and col == pytest.approx(47.5, abs=1.5)


def test_a_blob_to_the_left_of_the_camera_appears_on_the_left() -> None:
    panorama = blob_panorama(math.radians(30), 0.0)
    view = render_view(panorama, CameraDirection(0, 0), size=96)
    row, col = blob_centre(view)
    expected = view_pixel(math.radians(30), 0.0, CameraDirection(0, 0), size=96)
    assert col < 47.5 and (row, col) == pytest.approx(expected, abs=1.5)


def test_render_keeps_dtype_and_accepts_grey_frames() -> None:
    grey = np.full((50, 100), 7.5, dtype=np.float32)
    view = render_view(grey, CameraDirection(10, 0), size=16)
    assert view.dtype == np.float32 and view.shape == (16, 16)
    np.testing.assert_allclose(view, 7.5)


@pytest.mark.parametrize(("kwargs", "message"), [({"fov_deg": 180.0}, "fov_deg"), ({"size": 0}, "size")])
def test_bad_views_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(EquirectError, match=message):
        render_view(np.zeros((10, 20, 3), np.uint8), CameraDirection(0, 0), **kwargs)


def test_a_frame_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(EquirectError, match="equirectangular frame"):
        render_view(np.zeros(10), CameraDirection(0, 0))
