"""Spherical-video metadata: read from sv3d/st3d, the V1 uuid XML and Matroska Projection; refused clearly.

The metadata in every test file is written by ``spherical_media`` from the RFCs' byte layouts.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spherical_media import (
    cbmp,
    ebml,
    ebml_uint,
    equi,
    full_box,
    make_video,
    matroska_bytes,
    projection,
    spherical_xml,
    st3d,
    sv3d,
    uuid_box,
    with_video_boxes,
)

from visage.model.files.matroska_projection import parse_tracks, read_matroska_projection
from visage.model.files.spherical_boxes import SphericalBoxes, insert_spherical_boxes, read_moov_spherical
from visage.model.files.spherical_video import (
    SphericalVideo,
    SphericalVideoError,
    build_st3d,
    build_sv3d,
    read_spherical_video,
    require_monoscopic_equirect,
)
from visage.model.files.spherical_xml import parse_spherical_xml
from visage.model.files.sv3d import parse_st3d, parse_sv3d

QUARTER = 1 << 30  # 0.25 in 0.32 fixed point


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    """A 2:1 video without any spherical metadata."""
    return make_video(tmp_path_factory.mktemp("spherical") / "flat.mp4")


def _with(flat: Path, tmp_path: Path, name: str, *, entry: bytes = b"", trak: bytes = b"") -> Path:
    return with_video_boxes(flat, tmp_path / name, entry=entry, trak=trak)


def test_a_2_to_1_video_without_metadata_is_not_spherical(flat) -> None:
    assert read_spherical_video(flat) is None
    with pytest.raises(SphericalVideoError) as caught:
        require_monoscopic_equirect(flat)
    assert str(caught.value) == (
        f"{flat}: no spherical (360°) metadata (sv3d/st3d, uuid XML or Matroska Projection); "
        "pass --equirect if it is an equirectangular panorama"
    )


def test_sv3d_equirect_mono_with_pose(flat, tmp_path) -> None:
    path = _with(flat, tmp_path, "pano.mp4", entry=st3d(0) + sv3d(equi(), pose=(90.0, -10.0, 5.5)))
    expected = SphericalVideo("equirectangular", "mono", "sv3d", 90.0, -10.0, 5.5)
    assert read_spherical_video(path) == expected
    assert require_monoscopic_equirect(path) == expected


def test_sv3d_without_st3d_is_mono_and_bounds_become_crop_fractions(flat, tmp_path) -> None:
    path = _with(flat, tmp_path, "cropped.mp4", entry=sv3d(equi(top=QUARTER, right=QUARTER // 2)))
    video = read_spherical_video(path)
    assert video is not None and video.stereo == "mono"
    assert (video.crop_top, video.crop_bottom, video.crop_left, video.crop_right) == (0.25, 0.0, 0.0, 0.125)
    assert not video.is_full_sphere


def test_cubemap_is_refused_with_what_the_metadata_says(flat, tmp_path) -> None:
    path = _with(flat, tmp_path, "pano.mp4", entry=st3d(0) + sv3d(cbmp(layout=0, padding=2)))
    video = read_spherical_video(path)
    assert video is not None and video.projection == "cubemap"
    assert video.projection_private == bytes(4) + struct.pack(">2I", 0, 2)  # the cbmp payload
    with pytest.raises(SphericalVideoError) as caught:
        require_monoscopic_equirect(path)
    assert str(caught.value) == (
        f"{path}: its spherical metadata (sv3d) says cubemap projection; "
        "only monoscopic equirectangular 360° video is supported"
    )


@pytest.mark.parametrize(("mode", "name"), [(1, "top-bottom"), (2, "left-right"), (4, "right-left")])
def test_stereo_is_refused(flat, tmp_path, mode: int, name: str) -> None:
    path = _with(flat, tmp_path, "stereo.mp4", entry=st3d(mode) + sv3d(equi()))
    with pytest.raises(SphericalVideoError, match=rf"\(sv3d\) says {name} stereo; only monoscopic"):
        require_monoscopic_equirect(path)


def test_st3d_alone_marks_flat_3d_not_360(flat, tmp_path) -> None:
    assert read_spherical_video(_with(flat, tmp_path, "3d.mp4", entry=st3d(1))) is None


def test_v1_uuid_xml(flat, tmp_path) -> None:
    xml = spherical_xml(
        InitialViewHeadingDegrees=90,
        InitialViewPitchDegrees=-15,
        FullPanoWidthPixels=128,
        FullPanoHeightPixels=64,
        CroppedAreaImageWidthPixels=64,
        CroppedAreaImageHeightPixels=32,
        CroppedAreaLeftPixels=32,
        CroppedAreaTopPixels=8,
    )
    path = _with(flat, tmp_path, "v1.mp4", trak=uuid_box(xml))
    assert read_spherical_video(path) == SphericalVideo(
        "equirectangular",
        "mono",
        "uuid",
        pose_yaw_deg=90,
        initial_view_pitch_deg=-15,  # a viewport, not a tilt of the projection (V1 RFC, "Initial View")
        crop_top=8 / 64,
        crop_bottom=24 / 64,
        crop_left=32 / 128,
        crop_right=32 / 128,
    )


def test_v1_defaults_take_the_frame_halved_by_the_stereo_split(flat, tmp_path) -> None:
    # 64x32 top-bottom: each eye is 64x16, so a 64x16 cropped area at 0,0 is the full panorama.
    xml = spherical_xml(StereoMode="top-bottom", CroppedAreaImageHeightPixels=16)
    path = _with(flat, tmp_path, "v1tb.mp4", trak=uuid_box(xml))
    video = read_spherical_video(path)
    assert video is not None and video.stereo == "top-bottom" and video.is_full_sphere
    with pytest.raises(SphericalVideoError, match=r"\(uuid\) says top-bottom stereo"):
        require_monoscopic_equirect(path)


def test_v2_wins_over_v1(flat, tmp_path) -> None:
    path = _with(
        flat,
        tmp_path,
        "both.mp4",
        entry=sv3d(equi(), pose=(45.0, 0.0, 0.0)),
        trak=uuid_box(spherical_xml(InitialViewHeadingDegrees=10)),
    )
    video = read_spherical_video(path)
    assert video is not None and (video.source, video.pose_yaw_deg) == ("sv3d", 45.0)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (spherical_xml(Spherical="false"), "Spherical>true"),
        (spherical_xml(ProjectionType="cubemap"), "projection 'cubemap'"),
        (spherical_xml(StereoMode="checkerboard"), "stereo mode 'checkerboard'"),
        (spherical_xml(InitialViewHeadingDegrees="ninety"), "not an integer"),
        (spherical_xml(CroppedAreaLeftPixels=40), "does not lie inside"),
        (b"<not xml", "readable XML"),
    ],
)
def test_bad_v1_xml_is_refused(xml: bytes, message: str) -> None:
    with pytest.raises(SphericalVideoError, match=message):
        parse_spherical_xml(xml, 64, 32)


def _matroska(tmp_path: Path, video_children: bytes, **kwargs) -> Path:
    path = tmp_path / "pano.webm"
    path.write_bytes(matroska_bytes(video_children, **kwargs))
    return path


@pytest.mark.parametrize("unknown_segment_size", [False, True])
def test_matroska_projection(tmp_path, unknown_segment_size: bool) -> None:
    private = bytes(4) + struct.pack(">4I", 0, QUARTER, 0, 0)
    children = ebml_uint(0xB0, 64) + ebml_uint(0xBA, 32) + projection(1, private, pose=(-30.0, 12.5, 0.0))
    path = _matroska(tmp_path, children, unknown_segment_size=unknown_segment_size)
    assert read_spherical_video(path) == SphericalVideo(
        "equirectangular", "mono", "matroska", -30.0, 12.5, 0.0, crop_bottom=0.25
    )


def test_matroska_equirect_without_private_is_full_frame(tmp_path) -> None:
    video = read_spherical_video(_matroska(tmp_path, projection(1)))
    assert video == SphericalVideo("equirectangular", "mono", "matroska")


@pytest.mark.parametrize(("code", "name"), [(1, "left-right"), (3, "top-bottom"), (11, "right-left")])
def test_matroska_stereo_mode(tmp_path, code: int, name: str) -> None:
    path = _matroska(tmp_path, ebml_uint(0x53B8, code) + projection(1))
    video = read_spherical_video(path)
    assert video is not None and video.stereo == name
    with pytest.raises(SphericalVideoError, match=rf"\(matroska\) says {name} stereo"):
        require_monoscopic_equirect(path)


def test_matroska_cubemap_and_untranslatable_stereo(tmp_path) -> None:
    cube = bytes(4) + struct.pack(">2I", 0, 0)
    path = _matroska(tmp_path, projection(2, cube))
    with pytest.raises(SphericalVideoError, match=r"\(matroska\) says cubemap projection"):
        require_monoscopic_equirect(path)
    with pytest.raises(SphericalVideoError, match="StereoMode 4 has no st3d equivalent"):
        read_spherical_video(_matroska(tmp_path, ebml_uint(0x53B8, 4) + projection(1)))


def test_matroska_rectangular_or_missing_projection_is_flat(tmp_path) -> None:
    assert read_spherical_video(_matroska(tmp_path, projection(0))) is None
    assert read_spherical_video(_matroska(tmp_path, ebml_uint(0xB0, 64))) is None
    assert read_spherical_video(_matroska(tmp_path, projection(1), track_type=2)) is None  # audio track


def test_other_files_have_no_metadata_and_missing_ones_fail(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video at all")
    assert read_spherical_video(text) is None
    with pytest.raises(SphericalVideoError, match="missing.mp4: cannot read"):
        read_spherical_video(tmp_path / "missing.mp4")


def test_builders_write_the_rfc_bytes() -> None:
    assert build_st3d("mono") == st3d(0) and build_st3d("top-bottom") == st3d(1)
    video = SphericalVideo("equirectangular", "mono", "matroska", 90.0, -10.0, 5.5, crop_top=0.25)
    assert build_sv3d(video) == sv3d(equi(top=QUARTER), pose=(90.0, -10.0, 5.5), source=b"visage")
    cube = SphericalVideo("cubemap", "mono", "sv3d", projection_private=bytes(4) + struct.pack(">2I", 0, 3))
    assert build_sv3d(cube) == sv3d(cbmp(padding=3), source=b"visage")
    with pytest.raises(SphericalVideoError, match="needs its cbmp payload"):
        build_sv3d(SphericalVideo("cubemap", "mono", "sv3d"))


@pytest.mark.parametrize(
    ("box", "message"),
    [
        (full_box(b"st3d", bytes([5])), "stereo_mode 5 is not defined"),
        (full_box(b"st3d", bytes([0]), version=1), "unknown st3d version 1"),
        (full_box(b"st3d", b""), "too short"),
    ],
)
def test_bad_st3d_is_refused(box: bytes, message: str) -> None:
    with pytest.raises(SphericalVideoError, match=message):
        parse_st3d(box)


def test_bad_sv3d_is_refused() -> None:
    with pytest.raises(SphericalVideoError, match="exactly one equi, cbmp or mshp box, it holds 2"):
        parse_sv3d(sv3d(equi() + cbmp()))
    with pytest.raises(SphericalVideoError, match="crop away the whole frame"):
        parse_sv3d(sv3d(equi(top=0x80000000, bottom=0x80000000)))
    with pytest.raises(SphericalVideoError, match="exactly one proj box"):
        parse_sv3d(struct.pack(">I4s", 8, b"sv3d"))


# Fuzzing: random and damaged bytes give SphericalVideoError or a clean result, never another error.

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_VALID_SV3D = sv3d(equi(top=3, left=5), pose=(10.0, 20.0, 30.0))
_VALID_MATROSKA = matroska_bytes(ebml_uint(0x53B8, 0) + projection(1, bytes(20), pose=(1.0, 2.0, 3.0)))
_VALID_XML = spherical_xml(InitialViewHeadingDegrees=5, CroppedAreaLeftPixels=3, FullPanoWidthPixels=70)


def _damaged(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` cut short, or with a few bytes overwritten."""
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    flips = st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=4)
    return cut | flips.map(lambda edits: _overwrite(valid, edits)) | st.binary(max_size=200)


def _overwrite(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for index, value in edits:
        out[index] = value
    return bytes(out)


def _clean(parse, data) -> None:
    try:
        result = parse(data)
    except SphericalVideoError:
        return
    assert result is None or isinstance(result, (SphericalVideo, str))


@_FUZZ
@given(_damaged(_VALID_SV3D))
def test_fuzz_sv3d(data: bytes) -> None:
    _clean(parse_sv3d, data)


@_FUZZ
@given(_damaged(st3d(2)))
def test_fuzz_st3d(data: bytes) -> None:
    _clean(parse_st3d, data)


@_FUZZ
@given(_damaged(_VALID_XML))
def test_fuzz_uuid_xml(data: bytes) -> None:
    _clean(lambda d: parse_spherical_xml(d, 64, 32), data)


@_FUZZ
@given(_damaged(_VALID_MATROSKA))
def test_fuzz_matroska(data: bytes) -> None:
    _clean(lambda d: read_matroska_projection(io.BytesIO(d)), data)
    _clean(parse_tracks, data)


@pytest.fixture(scope="module")
def valid_moov(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("fuzz")
    path = with_video_boxes(
        make_video(folder / "flat.mp4", frames=1),
        folder / "pano.mp4",
        entry=st3d(0) + _VALID_SV3D,
        trak=uuid_box(_VALID_XML),
    )
    data = path.read_bytes()
    return data[data.index(b"moov") - 4 :]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_moov(valid_moov: bytes, data: st.DataObject) -> None:
    damaged = data.draw(_damaged(valid_moov))
    _clean(read_moov_spherical, damaged)
    try:
        grown = insert_spherical_boxes(damaged, SphericalBoxes(st3d=st3d(0), sv3d=_VALID_SV3D), 0)
    except SphericalVideoError:
        return
    assert len(grown) >= len(damaged)


def test_ebml_writer_matches_the_spec_example() -> None:
    # Oracle self-check: ProjectionType 1 with an 8-byte size, as the test writer spells it.
    assert ebml(0x7671, b"\x01") == bytes.fromhex("7671 01 00000000000001 01")
