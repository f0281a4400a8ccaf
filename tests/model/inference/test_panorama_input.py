"""Which videos are read as 360° panoramas, which as flat, and which are refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from panorama_factory import add_spherical_metadata, write_panorama_video
from spherical_media import make_video, uuid_box, with_video_boxes

from visage.bridge import cli_arguments, osc_protocol
from visage.model.features.direction import CameraDirection
from visage.model.files.spherical_video import SphericalVideo
from visage.model.files.video_io import probe_video
from visage.model.inference.panorama_input import (
    FORCED,
    LOOK_MODES,
    TWO_TO_ONE_NOTE,
    UnsupportedVideo,
    panorama_input,
)


def video(folder: Path, name: str, size: tuple[int, int] = (64, 32), **metadata: object) -> Path:
    width, height = size
    path = write_panorama_video(folder / name, np.full((2, height, width, 3), 90, np.uint8))
    if metadata:
        add_spherical_metadata(path, SphericalVideo(**metadata))  # type: ignore[arg-type]
    return path


def read(path: Path, **kwargs: object):
    return panorama_input(path, probe_video(path), **kwargs)  # type: ignore[arg-type]


def test_spherical_metadata_makes_a_panorama(tmp_path: Path) -> None:
    path = video(tmp_path, "pano.mp4", projection="equirectangular", stereo="mono", source="sv3d")
    source = read(path)
    assert source.panorama and source.detected_by == "sv3d" and source.note is None
    assert read(path, look="auto").panorama
    assert "centre column" in source.sound_field_frame()


def test_a_two_to_one_frame_without_metadata_is_flat_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = video(tmp_path, "wide.mp4")
    with caplog.at_level("DEBUG"):
        source = read(path)
    assert not source.panorama and source.note == TWO_TO_ONE_NOTE
    assert "treated as flat video" in source.note and "--equirect" in source.note
    assert not caplog.records  # the caller shows the note once (generate prints it, the sidecar keeps it)
    assert read(path, equirect=True).detected_by == FORCED


def test_other_frames_without_metadata_are_flat_without_a_note(tmp_path: Path) -> None:
    source = read(video(tmp_path, "hd.mp4", size=(64, 36)))
    assert not source.panorama and source.note is None


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"projection": "cubemap", "projection_private": bytes(12)}, "cubemap projection"),
        ({"stereo": "top-bottom"}, "top-bottom stereo"),
        ({"stereo": "left-right"}, "left-right stereo"),
        ({"pose_pitch_deg": 10.0}, "pose with pitch or roll"),
        ({"pose_roll_deg": -5.0}, "pose with pitch or roll"),
        ({"crop_top": 0.25}, "full-sphere"),
    ],
)
def test_panoramas_the_views_cannot_be_rendered_from_are_refused(
    tmp_path: Path, metadata: dict, message: str
) -> None:
    fields = {"projection": "equirectangular", "stereo": "mono", "source": "sv3d", **metadata}
    path = video(tmp_path, "odd.mp4", **fields)
    for forced in (False, True):  # --equirect does not overrule the metadata
        with pytest.raises(UnsupportedVideo, match=message) as error:
            read(path, equirect=forced)
        assert str(path) in str(error.value)


# Appendix 1 of the V1 RFC (Global Metadata Sample), with the full panorama the test video's size and
# an initial view that looks up and rolls: a viewport, which the RFC does not make a rotation.
_RFC_V1_XML = """<?xml version="1.0"?>
<rdf:SphericalVideo
  xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns:GSpherical="http://ns.google.com/videos/1.0/spherical/">
  <GSpherical:Spherical>true</GSpherical:Spherical>
  <GSpherical:Stitched>true</GSpherical:Stitched>
  <GSpherical:StitchingSoftware>
    OpenCV for Windows v2.4.9
  </GSpherical:StitchingSoftware>
  <GSpherical:ProjectionType>equirectangular</GSpherical:ProjectionType>
  <GSpherical:SourceCount>6</GSpherical:SourceCount>
  <GSpherical:InitialViewHeadingDegrees>90</GSpherical:InitialViewHeadingDegrees>
  <GSpherical:InitialViewPitchDegrees>{pitch}</GSpherical:InitialViewPitchDegrees>
  <GSpherical:InitialViewRollDegrees>{roll}</GSpherical:InitialViewRollDegrees>
  <GSpherical:Timestamp>1400454971</GSpherical:Timestamp>
  <GSpherical:CroppedAreaImageWidthPixels>64</GSpherical:CroppedAreaImageWidthPixels>
  <GSpherical:CroppedAreaImageHeightPixels>32</GSpherical:CroppedAreaImageHeightPixels>
  <GSpherical:FullPanoWidthPixels>64</GSpherical:FullPanoWidthPixels>
  <GSpherical:FullPanoHeightPixels>32</GSpherical:FullPanoHeightPixels>
  <GSpherical:CroppedAreaLeftPixels>0</GSpherical:CroppedAreaLeftPixels>
  <GSpherical:CroppedAreaTopPixels>0</GSpherical:CroppedAreaTopPixels>
</rdf:SphericalVideo>
"""


@pytest.mark.parametrize(("pitch", "roll"), [(-15, 0), (0, 5), (30, -10), (0, 0)])
def test_a_v1_initial_view_pitch_or_roll_is_ignored_with_a_note_and_its_heading_is_the_pose_yaw(
    tmp_path: Path, pitch: int, roll: int
) -> None:
    xml = _RFC_V1_XML.format(pitch=pitch, roll=roll).encode()
    flat = make_video(tmp_path / "flat.mp4", width=64, height=32)
    path = with_video_boxes(flat, tmp_path / "v1.mp4", trak=uuid_box(xml))
    for forced in (False, True):
        source = read(path, equirect=forced, look="auto")
        assert source.panorama and source.detected_by == "uuid" and source.pose_yaw_deg == 90
        # the heading turns the front as before: world front = panorama azimuth -90
        assert source.panorama_direction(CameraDirection(0.0, 10.0)) == CameraDirection(-90.0, 10.0)
        if pitch or roll:
            assert source.note is not None
            assert f"initial view pitch {pitch}° roll {roll}°" in source.note and "ignored" in source.note
        else:
            assert source.note is None


def test_equirect_needs_a_two_to_one_frame_and_look_needs_a_panorama(tmp_path: Path) -> None:
    path = video(tmp_path, "hd.mp4", size=(64, 36))
    with pytest.raises(UnsupportedVideo, match="2:1 .* 64 x 36"):
        read(path, equirect=True)
    with pytest.raises(UnsupportedVideo, match="--look auto needs a 360° video"):
        read(path, look="auto")
    with pytest.raises(ValueError, match="look must be auto"):
        read(path, look="up")


@pytest.mark.parametrize("pose_yaw", [30.0, -120.0])
def test_a_pose_yaw_turns_the_panorama_direction_of_a_world_direction(
    tmp_path: Path, pose_yaw: float
) -> None:
    """The RFC's pose yaw turns the projection to the left: world azimuth a shows panorama azimuth a - yaw."""
    path = video(tmp_path, "posed.mp4", projection="equirectangular", stereo="mono", source="sv3d",
                 pose_yaw_deg=pose_yaw)  # fmt: skip
    source = read(path)
    assert source.pose_yaw_deg == pose_yaw
    world = CameraDirection(10.0, 20.0)
    shown = source.panorama_direction(world)
    assert shown == CameraDirection(10.0 - pose_yaw, 20.0)
    assert source.world_direction(shown) == world
    assert "pose yaw honoured" in source.sound_field_frame()


def test_the_bridge_knows_the_same_look_modes() -> None:
    assert cli_arguments.LOOK_MODES == osc_protocol.LOOK_MODES == LOOK_MODES
