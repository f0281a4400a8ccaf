"""360° strips in hosts: directions relative to a panoramic camera's picture, and the file's metadata."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spherical_media import cbmp, equi, make_video, spherical_xml, st3d, sv3d, uuid_box, with_video_boxes

from visage.host_plugins.common.camera import camera_angles, euler_xyz_matrix
from visage.host_plugins.common.panorama import is_equirect_camera, is_panorama, picture_front
from visage.host_plugins.common.spherical_movie import SphericalMovie, read_spherical_movie

# (Euler XYZ of a panoramic camera, Euler XYZ of a perspective camera) -> the perspective camera's
# direction in the panorama, worked out by hand: a panoramic camera with (90, 0, 0) looks at world +Y
# (its centre column), (90, 0, 90) at world -X, (90, 0, -90) at world +X; (0, 0, 0) looks straight down.
HAND_CASES = [
    ((90, 0, 0), (90, 0, 0), (0.0, 0.0)),  # same view: the centre column
    ((90, 0, 0), (90, 0, 90), (90.0, 0.0)),  # the camera turns left of the panorama's front
    ((90, 0, 90), (90, 0, 0), (-90.0, 0.0)),  # front faces -X: world +Y is on its right
    ((90, 0, -90), (90, 0, 0), (90.0, 0.0)),  # front faces +X: world +Y is on its left
    ((90, 0, 0), (120, 0, 0), (0.0, 30.0)),  # tilted up 30°
    ((120, 0, 0), (90, 0, 0), (0.0, -30.0)),  # the panorama's front tilted up: level is below it
    ((90, 0, 180), (90, 0, 0), (-180.0, 0.0)),  # behind
]


@pytest.mark.parametrize(("pano", "view", "expected"), HAND_CASES)
def test_directions_relative_to_a_panoramic_camera_by_hand(pano, view, expected) -> None:
    angles = camera_angles(euler_xyz_matrix(*view), picture_front(euler_xyz_matrix(*pano)))
    assert (angles.yaw_deg, angles.pitch_deg) == pytest.approx(expected, abs=1e-9)


angle = st.floats(-180, 180, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(angle, angle, angle)
def test_a_panoramic_camera_looks_at_its_own_centre_column(x, y, z) -> None:
    matrix = euler_xyz_matrix(x, y, z)
    yaw, pitch = camera_angles(matrix, picture_front(matrix))
    assert pitch == pytest.approx(0.0, abs=1e-7) and yaw == pytest.approx(0.0, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(angle, st.floats(-80, 80), angle, st.floats(-80, 80))
def test_turning_rig_and_camera_together_changes_nothing(rig_yaw, rig_pitch, view_yaw, view_pitch) -> None:
    """The direction only depends on the camera relative to the panorama: turn both about world Z."""
    pano = euler_xyz_matrix(90 + rig_pitch, 0, rig_yaw)
    view = euler_xyz_matrix(90 + view_pitch, 0, view_yaw)
    turned_pano = euler_xyz_matrix(90 + rig_pitch, 0, rig_yaw + 37)
    turned_view = euler_xyz_matrix(90 + view_pitch, 0, view_yaw + 37)
    before = camera_angles(view, picture_front(pano))
    after = camera_angles(turned_view, picture_front(turned_pano))
    assert math.cos(math.radians(before.yaw_deg - after.yaw_deg)) == pytest.approx(1.0, abs=1e-9)
    assert before.pitch_deg == pytest.approx(after.pitch_deg, abs=1e-7)


def test_which_strips_are_panoramas() -> None:
    assert is_equirect_camera("PANO", "EQUIRECTANGULAR")
    assert not is_equirect_camera("PANO", "FISHEYE_EQUISOLID") and not is_equirect_camera("PERSP", None)
    assert is_panorama("AUTO", has_spherical_metadata=True, scene_renders_panorama=False)
    assert is_panorama("AUTO", has_spherical_metadata=False, scene_renders_panorama=True)
    assert not is_panorama("AUTO", has_spherical_metadata=False, scene_renders_panorama=False)
    assert is_panorama("ON", has_spherical_metadata=False, scene_renders_panorama=False)
    assert not is_panorama("OFF", has_spherical_metadata=True, scene_renders_panorama=True)
    with pytest.raises(ValueError, match="AUTO, ON, OFF"):
        is_panorama("YES", has_spherical_metadata=False, scene_renders_panorama=False)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("movies") / "plain.mp4")


EQUI = "equirectangular"
V1_TOP_BOTTOM = uuid_box(spherical_xml(StereoMode="top-bottom"))


@pytest.mark.parametrize(
    ("entry", "trak", "expected"),
    [
        (st3d(0) + sv3d(equi()), b"", SphericalMovie(EQUI, "mono", "sv3d")),
        (sv3d(equi()), b"", SphericalMovie(EQUI, "mono", "sv3d")),  # st3d is optional
        (st3d(1) + sv3d(equi()), b"", SphericalMovie(EQUI, "top-bottom", "sv3d")),
        (st3d(0) + sv3d(cbmp()), b"", SphericalMovie("cubemap", "mono", "sv3d")),
        (b"", uuid_box(spherical_xml()), SphericalMovie(EQUI, "mono", "uuid")),
        (b"", uuid_box(spherical_xml(StereoMode="left-right")), SphericalMovie(EQUI, "left-right", "uuid")),
        # both: V2 wins
        (sv3d(equi()), V1_TOP_BOTTOM, SphericalMovie(EQUI, "mono", "sv3d")),
    ],
)  # fmt: skip
def test_spherical_metadata_is_read_from_the_boxes(plain, tmp_path, entry, trak, expected) -> None:
    tagged = with_video_boxes(plain, tmp_path / "tagged.mp4", entry=entry, trak=trak)
    assert read_spherical_movie(tagged) == expected


def test_files_without_metadata_or_not_mp4_say_nothing(plain, tmp_path) -> None:
    assert read_spherical_movie(plain) is None
    text = tmp_path / "notes.txt"
    text.write_text("not a movie at all\n" * 10)
    assert read_spherical_movie(text) is None
    webm = make_video(tmp_path / "clip.webm", codec="libvpx")
    assert read_spherical_movie(webm) is None
    with pytest.raises(OSError):
        read_spherical_movie(tmp_path / "missing.mp4")
