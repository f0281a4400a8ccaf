"""Decoding: which frame each sample shows, how it is turned upright and resized, and every error.

The references are independent of model/files/video_io.py: a plain sequential PyAV decode fed to libavfilter's
own ``fps``, ``scale`` and ``crop`` filters (the chain the official ffmpeg-python script ran), and the
moving square of tests/media_factory.py, whose position says when a frame was drawn.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from media_factory import (
    SQUARE_V,
    SyntheticVideo,
    find_square,
    make_audio_only,
    make_test_video,
    time_from_u,
)

from visage.model.files.video_io import (
    VideoError,
    probe_video,
    read_clip_frames,
)
from visage.model.network.sequence import clip_frame_count

SHARED = Path(os.environ.get("VISAGE_SHARED_DIR", Path(__file__).resolve().parents[4] / "shared"))
MEDIA = SHARED / "media"  # real videos nobody on this project made (read in place, never copied)
needs_media = pytest.mark.skipif(not MEDIA.is_dir(), reason=f"{MEDIA} not found (set VISAGE_SHARED_DIR)")
VGGSOUND = MEDIA / "vggsound_0B4dYTMsgHA_000130.mp4"  # 10 s, 1280x720, 30 fps, keyframes at 0 and 8.33 s
PRORES_32X24 = MEDIA / "testsrc_32x24_prores.mov"
ONE_FRAME = [MEDIA / "testsrc_320x240_h264.mp4", MEDIA / "testsrc_320x240_vp9.mp4", PRORES_32X24]

# name -> (file name, make_test_video arguments); every one has B-frames or VFR or an offset to survive.
SYNTHETIC: dict[str, tuple[str, dict[str, Any]]] = {
    "h264_25": ("h264_25.mp4", dict(codec="h264", fps=25)),
    "mpeg4_23.976": ("mpeg4_23976.mp4", dict(codec="mpeg4", fps=Fraction(24000, 1001))),
    "vp9_30": ("vp9_30.webm", dict(codec="vp9", fps=30)),
    "h264_vfr_mkv": ("h264_vfr.mkv", dict(codec="h264", fps=25, vfr=True)),
    "mpeg4_vfr_mp4": ("mpeg4_vfr.mp4", dict(codec="mpeg4", fps=30, vfr=True, seed=1)),
    "mpeg4_odd_317x241": ("odd.mp4", dict(codec="mpeg4", fps=25, size=(317, 241))),
    "vp9_odd_317x241": ("odd.webm", dict(codec="vp9", fps=25, size=(317, 241))),
    "h264_starts_at_2s_mkv": ("offset.mkv", dict(codec="h264", fps=25, start_time=2.0)),
    "h264_mpegts": ("stream.ts", dict(codec="h264", fps=25)),  # the muxer starts the clock at 0.08 s
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SyntheticVideo]:
    folder = tmp_path_factory.mktemp("videos")
    return {name: make_test_video(folder / file, **kwargs) for name, (file, kwargs) in SYNTHETIC.items()}


def decoded_times(path: Path) -> list[Fraction]:
    """Media time of every frame from a plain sequential decode (container start = 0, as ffmpeg does)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = Fraction(container.start_time or 0, 1_000_000)
        return [frame.pts * stream.time_base - origin for frame in container.decode(stream)]


def fps_filter_picks(times: list[Fraction], start: float, fps: int = 4) -> dict[int, int]:
    """Output tick -> index of the input frame, from libavfilter's ``fps`` filter.

    Each input frame carries its index in its pixels; timestamps are shifted so ``start`` is tick 0.
    Ticks the filter drops at the end of the stream (it rounds the end time) are absent.
    """
    shift = Fraction(round(start * 1_000_000), 1_000_000)
    time_base = Fraction(1, math.lcm(1_000_000, *(t.denominator for t in times)))
    graph = av.filter.Graph()
    graph.link_nodes(
        graph.add_buffer(width=2, height=2, format=av.VideoFormat("gray"), time_base=time_base),
        graph.add("fps", f"fps={fps}"),
        graph.add("buffersink"),
    )
    graph.configure()
    picks: dict[int, int] = {}

    def drain() -> None:
        while True:
            try:
                out = graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return
            pixels = out.to_ndarray()
            assert out.pts is not None
            picks[out.pts] = int(pixels[0, 0]) * 256 + int(pixels[0, 1])

    for index, t in enumerate(times):
        frame = av.VideoFrame.from_ndarray(np.array([[index // 256, index % 256]] * 2, np.uint8), "gray")
        frame.pts, frame.time_base = int((t - shift) / time_base), time_base
        graph.vpush(frame)
        drain()
    graph.vpush(None)
    drain()
    return picks


def official_chain(path: Path, start: float, count: int, size: int = 224, fps: bool = True) -> np.ndarray:
    """[count, S, S, 3] from the official ffmpeg chain: fps=4, scale (short side S), crop, rgb24.

    ``fps=False`` leaves the fps filter out, for one-frame files: it drops their only frame, because it
    rounds the end of the stream (0.04 s = 0.16 ticks) down to tick 0.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.width, stream.height
        scaled = (size * width // height, size) if width >= height else (size, size * height // width)
        time_base = stream.time_base
        graph = av.filter.Graph()
        graph.link_nodes(
            graph.add_buffer(template=stream),
            *([graph.add("fps", "fps=4")] if fps else []),
            graph.add("scale", f"{scaled[0]}:{scaled[1]}:flags=bicubic"),
            graph.add("crop", f"{size}:{size}:{(scaled[0] - size) // 2}:{(scaled[1] - size) // 2}"),
            graph.add("format", "rgb24"),
            graph.add("buffersink"),
        )
        graph.configure()
        out: dict[int, np.ndarray] = {}

        def drain() -> None:
            while True:
                try:
                    result = graph.vpull()
                except (av.BlockingIOError, av.EOFError):
                    return
                assert result.pts is not None
                out[result.pts] = result.to_ndarray()

        shift = round(Fraction(start) / time_base)
        for frame in container.decode(stream):
            frame.pts -= shift
            graph.vpush(frame)
            drain()
            if out and max(out) >= count:
                break
        else:
            graph.vpush(None)
            drain()
    return np.stack([out[k] for k in range(count)])


# --- the frame-count rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "fps", "expected"),
    [
        (0, 5, 4, 20),  # the official 5-s window
        (0, 5.1, 4, 21),
        (0, 4.9999999, 4, 20),  # float noise below a microsecond does not add a frame
        (2.3, 4.1, 4, 8),  # 1.8 s -> ceil(7.2)
        (0, 0.25, 4, 1),
        (0.1, 0.35000001, 4, 1),
        (0, 1, Fraction(5, 2), 3),
        (3, 3, 4, 0),
    ],
)
def test_clip_frame_count(start: float, end: float, fps: int | Fraction, expected: int) -> None:
    assert clip_frame_count(start, end, fps) == expected


# --- which frame each sample shows ---------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTHETIC)
@pytest.mark.parametrize(("start", "end"), [(0.0, 1.75), (0.3, 1.4), (0.9, 1.95)])
def test_picks_match_ffmpeg_fps_filter(
    synthetic: dict[str, SyntheticVideo], name: str, start: float, end: float
) -> None:
    """Same source frame as libavfilter's fps filter, for keyframe and non-keyframe starts."""
    video = synthetic[name]
    clip = read_clip_frames(video.path, start, end)
    times = decoded_times(video.path)
    count = clip_frame_count(start, end)
    assert clip.frames.shape == (count, 224, 224, 3)
    assert clip.frames.dtype == np.uint8
    np.testing.assert_allclose(clip.timestamps, start + np.arange(count) / 4, atol=1e-9)
    picks = fps_filter_picks(times, start)
    ticks = [k for k in range(count) if k in picks]
    assert len(ticks) >= count - 1  # the filter may drop the last tick when it rounds the end time
    expected = [float(times[picks[k]]) for k in ticks]
    np.testing.assert_allclose(clip.source_timestamps[ticks], expected, atol=1e-9)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_pixels_show_the_picked_frame(synthetic: dict[str, SyntheticVideo], name: str) -> None:
    """The square in each output frame was drawn at that frame's source time (no seek/reorder slip)."""
    video = synthetic[name]
    clip = read_clip_frames(video.path, 0.55, 1.9)
    for image, shown in zip(clip.frames, clip.source_timestamps, strict=True):
        u, v = find_square(image)
        assert v == pytest.approx(SQUARE_V, abs=0.02)
        assert video.nearest_frame_time(time_from_u(u, video.duration)) == pytest.approx(shown, abs=1e-3)


def test_stream_offset_is_removed(synthetic: dict[str, SyntheticVideo]) -> None:
    """A stream whose clock starts at 2 s (or at the 0.08 s of MPEG-TS) still starts at media time 0."""
    for name in ("h264_starts_at_2s_mkv", "h264_mpegts"):
        video = synthetic[name]
        assert probe_video(video.path).duration == pytest.approx(2.0, abs=1e-6)
        clip = read_clip_frames(video.path, 0, 2)
        np.testing.assert_allclose(clip.source_timestamps[:3], [0.12, 0.36, 0.6], atol=1e-9)


@needs_media
def test_real_clip_matches_official_chain_after_a_seek() -> None:
    """Real 720p H.264 with B-frames: seeking to 2.3 s (no keyframe) gives the official chain's pixels."""
    clip = read_clip_frames(VGGSOUND, 2.3, 4.1)
    assert clip.frames.shape == (8, 224, 224, 3)
    np.testing.assert_array_equal(np.round(clip.source_timestamps * 30), [72, 80, 87, 95, 102, 110, 117, 125])
    np.testing.assert_array_equal(clip.frames, official_chain(VGGSOUND, 2.3, 8))


@needs_media
def test_real_clip_is_the_same_from_any_start() -> None:
    """[2.25, 4.25) equals frames 9..16 of [0, 5): seeking does not change what is decoded."""
    whole = read_clip_frames(VGGSOUND, 0, 5)
    part = read_clip_frames(VGGSOUND, 2.25, 4.25)
    assert len(whole.frames) == 20
    np.testing.assert_array_equal(np.round(whole.source_timestamps[:4] * 30), [3, 11, 18, 26])
    np.testing.assert_array_equal(part.frames, whole.frames[9:17])
    np.testing.assert_allclose(part.source_timestamps, whole.source_timestamps[9:17])


@needs_media
def test_real_clip_end_and_last_keyframe() -> None:
    """Ranges after the last keyframe (8.33 s) and up to the end of the file."""
    late = read_clip_frames(VGGSOUND, 8.4, 9.0)
    np.testing.assert_array_equal(np.round(late.source_timestamps * 30), [255, 263, 270])
    tail = read_clip_frames(VGGSOUND, 9.5, 10.01)  # within half a source frame of the end
    np.testing.assert_array_equal(np.round(tail.source_timestamps * 30), [288, 296, 299])


@needs_media
def test_probe_real_clip() -> None:
    info = probe_video(VGGSOUND)
    assert info.has_video and info.codec == "h264"
    assert (info.width, info.height, info.display_width, info.display_height) == (1280, 720, 1280, 720)
    assert info.frame_rate == Fraction(30) and isinstance(info.frame_rate, Fraction)
    assert info.duration == pytest.approx(10.0)
    assert (info.rotation, info.mirrored, info.sample_aspect_ratio) == (0, False, Fraction(1))


def test_frame_rate_stays_exact(synthetic: dict[str, SyntheticVideo]) -> None:
    assert probe_video(synthetic["mpeg4_23.976"].path).frame_rate == Fraction(24000, 1001)


def test_other_rates_and_sizes(synthetic: dict[str, SyntheticVideo]) -> None:
    clip = read_clip_frames(synthetic["h264_25"].path, 0.5, 1.5, fps=2, size=112)
    assert clip.frames.shape == (2, 112, 112, 3)
    np.testing.assert_allclose(clip.timestamps, [0.5, 1.0])
    np.testing.assert_allclose(clip.source_timestamps, [0.72, 1.24])  # last frames before 0.75 and 1.25


# --- tiny, one-frame and odd pictures --------------------------------------------------------------


@needs_media
@pytest.mark.parametrize("path", ONE_FRAME, ids=lambda p: p.name)
def test_one_frame_files(path: Path) -> None:
    """One-frame H.264 (4:4:4), VP9 (RGB) and 32x24 ProRes (12-bit, upscaled): the official chain's pixels."""
    info = probe_video(path)
    assert info.duration == pytest.approx(0.04)
    clip = read_clip_frames(path, 0, 0.04)
    assert clip.frames.shape == (1, 224, 224, 3)
    np.testing.assert_array_equal(clip.frames, official_chain(path, 0, 1, fps=False))
    with pytest.raises(VideoError, match="0.040 s"):
        read_clip_frames(path, 0, 0.25)


@needs_media
def test_tiny_frame() -> None:
    info = probe_video(PRORES_32X24)
    assert (info.width, info.height, info.display_width, info.display_height) == (32, 24, 32, 24)
    assert info.codec == "prores"
    frame = read_clip_frames(PRORES_32X24, 0, 0.04).frames[0]
    assert frame.std() > 30  # the colour pattern survives the 9x upscale


# --- rotation, mirroring and pixel aspect ratio ----------------------------------------------------


@pytest.mark.parametrize(
    ("rotation", "hflip"), [(r, f) for r in (0, 90, 180, -90) for f in (False, True) if r or f]
)
def test_display_matrix_is_honoured(tmp_path: Path, rotation: int, hflip: bool) -> None:
    """A phone-style landscape coding with a display matrix comes out upright, moving left to right."""
    video = make_test_video(
        tmp_path / "phone.mp4", codec="h264", size=(192, 108), rotation=rotation, hflip=hflip, duration=1.0
    )
    info = probe_video(video.path)
    assert (info.rotation, info.mirrored) == (rotation, hflip)
    assert (info.display_width, info.display_height) == video.display_size
    clip = read_clip_frames(video.path, 0, 1)
    positions = np.array([find_square(image) for image in clip.frames])  # [F, 2] as (u, v)
    np.testing.assert_allclose(positions[:, 1], SQUARE_V, atol=0.02)
    assert np.all(np.diff(positions[:, 0]) > 0.05)  # moves left to right


@pytest.mark.parametrize("rotation", [0, -90])
def test_non_square_pixels_are_shown_square(tmp_path: Path, rotation: int) -> None:
    """Anamorphic 4:3 pixels (plus a portrait rotation): the square is square after resizing."""
    video = make_test_video(
        tmp_path / "anamorphic.mp4", codec="h264", size=(160, 120), sar=Fraction(4, 3), rotation=rotation
    )
    info = probe_video(video.path)
    assert info.sample_aspect_ratio == Fraction(4, 3)
    assert (info.display_width, info.display_height) == video.display_size
    image = read_clip_frames(video.path, 1, 1.25).frames[0]
    ys, xs = np.nonzero(image.mean(axis=-1) > 128)
    assert (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1) == pytest.approx(1.0, abs=0.1)
    assert find_square(image)[1] == pytest.approx(SQUARE_V, abs=0.02)


# --- errors ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no such file") as caught:
        read_clip_frames(tmp_path / "nope.mp4", 0, 1)
    assert "nope.mp4" in str(caught.value)
    with pytest.raises(VideoError, match="no such file"):
        probe_video(tmp_path)  # a folder is not a video either


def test_not_a_media_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(VideoError, match="notes.mp4: not a media file"):
        probe_video(text)


@pytest.mark.parametrize(("name", "cover_art"), [("speech.wav", False), ("song.flac", True)])
def test_no_video_stream(tmp_path: Path, name: str, cover_art: bool) -> None:
    """Audio only, or audio with cover art (a picture stream that is not a video)."""
    audio = make_audio_only(tmp_path / name, cover_art=cover_art)
    info = probe_video(audio)
    assert not info.has_video and info.duration == pytest.approx(1.0)
    with pytest.raises(VideoError, match=f"{name}: no video stream"):
        read_clip_frames(audio, 0, 0.5)


def test_corrupt_stream(synthetic: dict[str, SyntheticVideo], tmp_path: Path) -> None:
    """Every byte of the MP4's media data replaced by noise: the header reads, the pictures do not."""
    data = bytearray(synthetic["h264_25"].path.read_bytes())
    mdat = data.index(b"mdat")
    length = int.from_bytes(data[mdat - 4 : mdat], "big")
    noise = np.random.default_rng(0).integers(0, 256, length - 8, dtype=np.uint8)
    data[mdat + 4 : mdat + length - 4] = noise.tobytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="broken.mp4: corrupt video stream"):
        read_clip_frames(broken, 0, 1)


def test_video_stream_without_frames(tmp_path: Path) -> None:
    """A Matroska file that declares a video track but holds only audio packets: zero frames."""
    path = tmp_path / "empty_track.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        container.mux(audio.encode(samples))
        container.mux(audio.encode(None))
    with pytest.raises(VideoError, match="empty_track.mkv: the video stream has no decodable frame"):
        read_clip_frames(path, 0, 0.5)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (1.0, 1.0, r"start \(1.0 s\) must be before end \(1.0 s\)"),
        (1.5, 1.0, "must be before end"),
        (-0.5, 1.0, "start must be >= 0 s"),
        (0.0, math.nan, "end must be a finite number"),
        (1.0, 2.1, r"goes beyond the end of the video at 2.000 s"),
        (2.5, 3.0, r"goes beyond the end of the video at 2.000 s"),
    ],
)
def test_bad_ranges(synthetic: dict[str, SyntheticVideo], start: float, end: float, message: str) -> None:
    path = synthetic["h264_25"].path
    with pytest.raises(VideoError, match=message) as caught:
        read_clip_frames(path, start, end)
    assert str(path) in str(caught.value)


def test_end_tolerance_is_half_a_source_frame(synthetic: dict[str, SyntheticVideo]) -> None:
    path = synthetic["h264_25"].path  # 2.0 s at 25 fps: half a frame is 0.02 s
    assert len(read_clip_frames(path, 1.0, 2.019).frames) == 5
    with pytest.raises(VideoError, match="beyond the end"):
        read_clip_frames(path, 1.0, 2.021)


def test_bad_rate_or_size(synthetic: dict[str, SyntheticVideo]) -> None:
    with pytest.raises(VideoError, match="must be positive"):
        read_clip_frames(synthetic["h264_25"].path, 0, 1, fps=0)
    with pytest.raises(VideoError, match="must be positive"):
        read_clip_frames(synthetic["h264_25"].path, 0, 1, size=0)
