"""`visage mux` keeps 360° video 360°: the spherical boxes survive (or are translated from WebM) next to SA3D.

Sources carry metadata written by ``spherical_media`` from the RFCs' byte layouts; the expected boxes
in the output are written the same way, never by the code under test.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from spherical_media import cbmp, equi, make_video, spherical_xml, st3d, sv3d, uuid_box, with_video_boxes

from visage.model.cli import build_parser
from visage.model.delivery.spatial_mux import MuxError, mux_spatial_audio, read_spatial_audio
from visage.model.files.audio_io import write_ambix
from visage.model.files.mp4_boxes import iter_boxes, track_sample_entries, visual_entry_children_start
from visage.model.files.sa3d import ambix_foa
from visage.model.files.spherical_video import SphericalVideo, read_spherical_video

RATE = 48_000
POSE = (90.0, -10.0, 5.0)
SV3D = sv3d(equi(), pose=POSE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mux360")


@pytest.fixture(scope="module")
def flat(folder) -> Path:
    return make_video(folder / "flat.mp4")  # 64x32, 5 frames at 10 fps: 0.5 s


@pytest.fixture(scope="module")
def result(folder) -> Path:
    t = np.arange(int(0.4 * RATE)) / RATE
    foa = np.stack([0.1 * np.sin(2 * np.pi * f * t) for f in (300, 500, 700, 900)]).astype(np.float32)
    path = folder / "result.wav"
    write_ambix(path, foa, RATE)
    return path


@pytest.fixture(scope="module")
def pano(folder, flat) -> Path:
    return with_video_boxes(flat, folder / "pano.mp4", entry=st3d(0) + SV3D)


def _video_entry_children(path: Path) -> list[tuple[bytes, bytes]]:
    """(type, bytes) of each child box of the first video sample entry."""
    data = path.read_bytes()
    moov = next(b for b in iter_boxes(data) if b.type == b"moov")
    moov_bytes = data[moov.start : moov.end]
    _, entry = track_sample_entries(moov_bytes, b"vide")[0]
    boxes = iter_boxes(moov_bytes, visual_entry_children_start(entry), entry.end)
    return [(b.type, moov_bytes[b.start : b.end]) for b in boxes]


def _video_packets(path: Path) -> list[tuple[bytes, int | None, int | None]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(bytes(p), p.pts, p.dts) for p in container.demux(stream) if p.dts is not None]


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_sv3d_and_st3d_survive_next_to_sa3d(pano, result, tmp_path, suffix: str) -> None:
    out = tmp_path / f"published{suffix}"
    muxed = mux_spatial_audio(pano, result, out)
    expected = SphericalVideo("equirectangular", "mono", "sv3d", *POSE)
    assert muxed.spherical == expected and read_spherical_video(out) == expected
    assert read_spatial_audio(out) == [ambix_foa()]
    children = _video_entry_children(out)
    kinds = [kind for kind, _ in children]
    assert dict(children)[b"st3d"] == st3d(0) and dict(children)[b"sv3d"] == SV3D  # byte for byte
    assert kinds.index(b"st3d") + 1 == kinds.index(b"sv3d")
    assert all(kinds.index(b"sv3d") < kinds.index(tail) for tail in (b"clap", b"pasp") if tail in kinds)
    assert [p[0] for p in _video_packets(out)] == [p[0] for p in _video_packets(pano)]


def test_v1_uuid_box_survives_in_the_video_trak(flat, result, tmp_path) -> None:
    xml_box = uuid_box(spherical_xml(InitialViewHeadingDegrees=30))
    source = with_video_boxes(flat, tmp_path / "v1.mp4", trak=xml_box)
    out = tmp_path / "published.mp4"
    muxed = mux_spatial_audio(source, result, out)
    assert muxed.spherical == SphericalVideo("equirectangular", "mono", "uuid", pose_yaw_deg=30)
    data = out.read_bytes()
    assert data.count(xml_box) == 1
    moov = next(b for b in iter_boxes(data) if b.type == b"moov")
    moov_bytes = data[moov.start : moov.end]
    ancestors, _ = track_sample_entries(moov_bytes, b"vide")[0]
    trak = ancestors[1]
    assert moov.start + trak.start < data.index(xml_box) < moov.start + trak.end  # in the video trak
    assert read_spatial_audio(out) == [ambix_foa()]


@pytest.mark.parametrize(
    ("entry", "projection", "stereo"),
    [(st3d(0) + sv3d(cbmp(padding=1)), "cubemap", "mono"), (st3d(1) + SV3D, "equirectangular", "top-bottom")],
)
def test_cubemap_and_stereo_are_kept_as_they_are(flat, result, tmp_path, entry, projection, stereo) -> None:
    source = with_video_boxes(flat, tmp_path / "other.mp4", entry=entry)
    out = tmp_path / "published.mp4"
    muxed = mux_spatial_audio(source, result, out)
    assert muxed.spherical is not None
    assert (muxed.spherical.projection, muxed.spherical.stereo) == (projection, stereo)
    assert out.read_bytes().count(entry) == 1


def test_flat_video_stays_flat(flat, result, tmp_path) -> None:
    out = tmp_path / "published.mp4"
    assert mux_spatial_audio(flat, result, out).spherical is None
    assert read_spherical_video(out) is None
    assert b"sv3d" not in out.read_bytes()


def test_malformed_metadata_is_refused(flat, result, tmp_path) -> None:
    source = with_video_boxes(flat, tmp_path / "bad.mp4", entry=st3d(9) + SV3D)
    with pytest.raises(MuxError, match="st3d stereo_mode 9 is not defined.*cannot be carried over"):
        mux_spatial_audio(source, result, tmp_path / "published.mp4")
    assert not (tmp_path / "published.mp4").exists()


@pytest.fixture(scope="module")
def webm(folder) -> Path:
    """A VP9 WebM whose Projection element FFmpeg's Matroska muxer writes from an sv3d MP4's side data."""
    vp9 = make_video(folder / "vp9.mp4", codec="libvpx-vp9")
    source = with_video_boxes(
        vp9, folder / "vp9_pano.mp4", entry=st3d(0) + sv3d(equi(top=1 << 28), pose=POSE)
    )
    path = folder / "pano.webm"
    with av.open(str(source)) as src, av.open(str(path), "w") as sink:
        in_video = src.streams.video[0]
        out_video = sink.add_stream_from_template(in_video)
        for packet in src.demux(in_video):
            if packet.dts is not None:
                packet.stream = out_video
                sink.mux(packet)
    return path


def test_webm_projection_becomes_st3d_and_sv3d(webm, result, tmp_path) -> None:
    source = read_spherical_video(webm)
    assert source == SphericalVideo("equirectangular", "mono", "matroska", *POSE, crop_top=1 / 16)
    out = tmp_path / "published.mp4"
    muxed = mux_spatial_audio(webm, result, out)
    assert muxed.spherical == SphericalVideo("equirectangular", "mono", "sv3d", *POSE, crop_top=1 / 16)
    children = dict(_video_entry_children(out))
    assert children[b"st3d"] == st3d(0)
    assert children[b"sv3d"] == sv3d(equi(top=1 << 28), pose=POSE, source=b"visage")
    assert read_spatial_audio(out) == [ambix_foa()]
    assert [p[0] for p in _video_packets(out)] == [p[0] for p in _video_packets(webm)]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
def test_ffprobe_sees_a_360_video_with_spatial_audio(webm, result, tmp_path) -> None:
    out = tmp_path / "published.mp4"
    mux_spatial_audio(webm, result, out)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    video, audio = json.loads(probe.stdout)["streams"]
    side_data = {item["side_data_type"]: item for item in video["side_data_list"]}
    mapping = side_data["Spherical Mapping"]
    assert "equirectangular" in mapping["projection"]
    assert (mapping["yaw"], mapping["pitch"], mapping["roll"]) == POSE
    assert side_data["Stereo 3D"]["type"] == "2D"
    assert (audio["codec_type"], audio["channels"]) == ("audio", 4)


def test_cli_says_the_output_is_360(pano, result, tmp_path, capsys) -> None:
    args = build_parser().parse_args(["mux", str(pano), str(result), "-o", str(tmp_path / "out.mp4")])
    module, func = args._run
    assert getattr(importlib.import_module(module), func)(args) == 0
    out = capsys.readouterr().out
    assert "360° video: monoscopic equirectangular, pose yaw 90° pitch -10° roll 5°" in out


def test_a_codec_the_container_cannot_hold_is_refused_clearly(folder, result, tmp_path) -> None:
    vp8 = make_video(folder / "vp8.webm", codec="libvpx")
    with pytest.raises(MuxError, match=r"cannot copy .*vp8.webm's vp8 video into \.mp4"):
        mux_spatial_audio(vp8, result, tmp_path / "published.mp4")
    assert list(tmp_path.iterdir()) == []  # no output, no scratch file left


def test_a_codec_refused_by_mov_points_to_mp4_not_to_a_scratch_file(webm, result, tmp_path) -> None:
    with pytest.raises(MuxError) as refused:
        mux_spatial_audio(webm, result, tmp_path / "published.mov")
    message = str(refused.value)
    output = tmp_path / "published.mov"
    assert message.startswith(f"{output}: FFmpeg cannot copy {webm}'s vp9 video into .mov")
    assert "-o with .mp4" in message
    assert "visage-part" not in message  # the scratch file is no name the user knows
    assert list(tmp_path.iterdir()) == []


def _equirect_result(folder: Path, result: Path, input_entry: dict) -> Path:
    """A copy of ``result`` whose sidecar holds ``input_entry`` under "input", as generate writes it."""
    copy = folder / f"result_{len(list(folder.iterdir()))}.wav"
    shutil.copyfile(result, copy)
    Path(f"{copy}.json").write_text(json.dumps({"input": input_entry}), encoding="utf-8")
    return copy


@pytest.mark.parametrize("how", ["flag", "sidecar"])
def test_equirect_marks_a_panorama_without_metadata_as_360(flat, result, tmp_path, how) -> None:
    out = tmp_path / "published.mp4"
    if how == "flag":
        muxed = mux_spatial_audio(flat, result, out, equirect=True)
    else:  # what `visage generate --equirect` recorded
        forced = _equirect_result(
            tmp_path, result, {"projection": "equirectangular", "detected_by": "--equirect"}
        )
        muxed = mux_spatial_audio(flat, forced, out)
    assert muxed.spherical_added
    assert muxed.spherical == SphericalVideo("equirectangular", "mono", "sv3d")
    children = dict(_video_entry_children(out))
    assert children[b"st3d"] == st3d(0)  # the RFC's bytes: mono, full sphere, pose 0
    assert children[b"sv3d"] == sv3d(equi(), source=b"visage")
    assert read_spatial_audio(out) == [ambix_foa()]


def test_equirect_never_overrules_metadata_and_metadata_found_alone_is_not_added(
    flat, pano, result, tmp_path
) -> None:
    muxed = mux_spatial_audio(pano, result, tmp_path / "kept.mp4", equirect=True)
    assert not muxed.spherical_added
    assert muxed.spherical == SphericalVideo("equirectangular", "mono", "sv3d", *POSE)
    by_metadata = _equirect_result(tmp_path, result, {"projection": "equirectangular", "detected_by": "sv3d"})
    assert mux_spatial_audio(flat, by_metadata, tmp_path / "flat.mp4").spherical is None


def test_equirect_on_a_picture_that_is_not_2_to_1_is_refused(folder, result, tmp_path) -> None:
    square = make_video(folder / "square.mp4", width=32, height=32)
    with pytest.raises(MuxError, match=r"square\.mp4: --equirect marks a 2:1 .* the picture is 32 x 32"):
        mux_spatial_audio(square, result, tmp_path / "published.mp4", equirect=True)
    assert list(tmp_path.iterdir()) == []


def test_cli_says_the_metadata_was_added(flat, result, tmp_path, capsys) -> None:
    argv = ["mux", str(flat), str(result), "-o", str(tmp_path / "out.mp4"), "--equirect"]
    args = build_parser().parse_args(argv)
    module, func = args._run
    assert getattr(importlib.import_module(module), func)(args) == 0
    out = capsys.readouterr().out
    assert (
        "360° video: monoscopic equirectangular, pose yaw 0° pitch 0° roll 0° (spherical metadata added"
        in out
    )


def test_the_sidecar_s_equirect_does_not_hold_for_a_picture_that_is_not_2_to_1(
    folder, result, tmp_path
) -> None:
    """generate --equirect read a 2:1 video; a square one is another video, published flat as it is."""
    square = make_video(folder / "square_flat.mp4", width=32, height=32)
    forced = _equirect_result(
        tmp_path, result, {"projection": "equirectangular", "detected_by": "--equirect"}
    )
    muxed = mux_spatial_audio(square, forced, tmp_path / "published.mp4")
    assert muxed.spherical is None and not muxed.spherical_added
