"""Synthetic test videos whose pixels say when they were shown.

Each frame is black with one white square. Its horizontal position encodes the frame's time, so a test can
read back which source frame a decoder picked, and its fixed vertical position (upper third) and direction
of motion (left to right) show whether rotation and mirroring were undone. Positions are normalised to the
central square of the *displayed* picture, which is exactly what a short-side resize and centre crop keep:

    display 16:9      central square       after resize + crop to S x S
    +-------------+      +-------+         u = 0.15 + 0.7 * t / duration (left -> right)
    |   [ u,v ]   |  ->  | [u,v] |   ->    v = 0.3 (upper third)
    +-------------+      +-------+

Rotation, mirroring and non-square pixels are written as metadata; the coded pixels are the displayed
picture transformed back, so a correct reader always sees the same upright scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Our codec names -> FFmpeg encoders (those this PyAV build has).
ENCODERS = {"h264": "libx264", "mpeg4": "mpeg4", "vp9": "libvpx-vp9", "prores": "prores_ks"}
_PIX_FMTS = {"prores": "yuv422p10le"}
_ENCODER_OPTIONS = {
    "h264": {"preset": "veryfast"},  # unlike ultrafast, veryfast keeps B-frames
    "vp9": {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
}

SQUARE_V = 0.3  # vertical centre of the square, as a fraction of the central square
_U_START, _U_SPAN = 0.15, 0.7  # horizontal centre moves from 0.15 to 0.85 over the duration
_SQUARE_HALF = 0.07  # half the square's side, as a fraction of the central square


@dataclass(frozen=True)
class SyntheticVideo:
    """A written test video and the truth about it.

    Attributes:
        path: the file.
        frame_times: [N] media time of each frame in seconds, first frame at 0 (the writer's own clock;
            the container may add an offset such as ``start_time``).
        duration: seconds the square takes to cross; ``u(t)`` uses it.
        display_size: (width, height) a correct player shows, after pixel aspect and rotation.
    """

    path: Path
    frame_times: np.ndarray
    duration: float
    display_size: tuple[int, int]

    def nearest_frame_time(self, t: float) -> float:
        """The frame time closest to ``t`` (to turn an estimate from pixels into a frame)."""
        return float(self.frame_times[np.argmin(np.abs(self.frame_times - t))])


def square_u(t: float, duration: float) -> float:
    """Horizontal centre of the square at time ``t``, as a fraction of the central square."""
    return _U_START + _U_SPAN * t / duration


def time_from_u(u: float, duration: float) -> float:
    """Inverse of :func:`square_u`: the time a square at ``u`` was drawn."""
    return (u - _U_START) / _U_SPAN * duration


def find_square(image: np.ndarray) -> tuple[float, float]:
    """Centroid (u, v) of the bright pixels of an [H, W, 3] uint8 image, as fractions of W and H."""
    ys, xs = np.nonzero(image.mean(axis=-1) > 128)
    if len(xs) == 0:
        raise AssertionError("no bright square in the image")
    return (xs.mean() + 0.5) / image.shape[1], (ys.mean() + 0.5) / image.shape[0]


def draw_display(t: float, duration: float, size: tuple[int, int]) -> np.ndarray:
    """The upright picture at time ``t``: [H, W, 3] uint8 for ``size`` = (W, H)."""
    width, height = size
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    cx, cy = x0 + side * square_u(t, duration), y0 + side * SQUARE_V
    half = max(2.0, side * _SQUARE_HALF)
    image = np.zeros((height, width, 3), np.uint8)
    image[round(cy - half) : round(cy + half), round(cx - half) : round(cx + half)] = 255
    return image


def _to_coded(display: np.ndarray, width: int, rotation: int, hflip: bool) -> np.ndarray:
    """Undo what a player does (stretch by the pixel aspect, rotate counter-clockwise, then mirror)."""
    if hflip:
        display = display[:, ::-1]
    stretched = np.rot90(display, k=-rotation // 90)
    columns = ((np.arange(width) + 0.5) * stretched.shape[1] / width).astype(int)
    return np.ascontiguousarray(stretched[:, columns])


def frame_times(fps: Fraction, duration: float, *, vfr: bool, seed: int) -> np.ndarray:
    """Frame times in seconds: a regular grid, or irregular gaps (0.6 to 1.8 nominal periods) for VFR."""
    period = 1 / float(fps)
    if not vfr:
        return np.arange(int(round(duration * float(fps)))) * period
    gaps = np.random.default_rng(seed).uniform(0.6, 1.8, size=int(3 * duration * float(fps))) * period
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    return times[times < duration]


def make_test_video(
    path: Path | str,
    *,
    codec: str = "h264",
    fps: Fraction | int = 25,
    duration: float = 2.0,
    size: tuple[int, int] = (160, 120),
    rotation: int | None = None,
    hflip: bool = False,
    vfr: bool = False,
    sar: Fraction | None = None,
    start_time: float = 0.0,
    gop: int | None = None,
    seed: int = 0,
) -> SyntheticVideo:
    """Write a moving-square video; the container follows the file extension.

    Args:
        path: output file (.mp4, .mov, .mkv, .webm, .ts).
        codec: one of ``ENCODERS``.
        fps: nominal frame rate (e.g. ``Fraction(24000, 1001)``).
        duration: seconds of video.
        size: coded (width, height), as stored. Odd sizes need mpeg4 or vp9 (libx264 refuses them in
            4:2:0).
        rotation: counter-clockwise display rotation in degrees (multiple of 90), written as a display
            matrix, as phones do.
        hflip: mirror after the rotation (also in the display matrix).
        vfr: irregular frame times instead of a fixed rate.
        sar: sample (pixel) aspect ratio, e.g. ``Fraction(4, 3)`` for anamorphic pixels.
        start_time: seconds added to every timestamp, so the stream does not start at 0.
        gop: keyframe interval in frames (default: one second), so most seeks land between keyframes.
        seed: random gaps of a VFR video.

    Returns:
        What was written, with each frame's time.
    """
    fps = Fraction(fps)
    rotation = (rotation or 0) % 360
    width, height = size
    display_width = round(width * (sar or 1))
    display_size = (height, display_width) if rotation % 180 else (display_width, height)
    times = frame_times(fps, duration, vfr=vfr, seed=seed)
    # A millisecond clock for irregular times; the exact period otherwise (23.976 stays 24000/1001).
    time_base = Fraction(1, 1000) if vfr else 1 / fps
    container = av.open(str(path), "w")
    stream = container.add_stream(ENCODERS[codec], rate=fps)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height = width, height
    stream.pix_fmt = _PIX_FMTS.get(codec, "yuv420p")
    stream.time_base = stream.codec_context.time_base = time_base
    stream.codec_context.gop_size = gop or round(fps)
    if codec in ("h264", "mpeg4"):
        stream.codec_context.max_b_frames = 2
    stream.codec_context.options = _ENCODER_OPTIONS.get(codec, {})
    if sar is not None:
        stream.codec_context.sample_aspect_ratio = sar
    if rotation or hflip:
        stream.set_display_rotation(rotation, hflip=hflip)
    offset = round(start_time / time_base)
    for t in times:
        coded = _to_coded(draw_display(t, duration, display_size), width, rotation, hflip)
        frame = av.VideoFrame.from_ndarray(coded, format="rgb24")
        frame.pts = offset + round(t / time_base)
        frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return SyntheticVideo(Path(path), times, duration, display_size)


def make_audio_only(path: Path | str, seconds: float = 1.0, *, cover_art: bool = False) -> Path:
    """Write silent audio (.wav or .flac), optionally with a cover picture (FLAC only).

    Cover art is stored as a one-frame video stream marked ``attached_pic``, as in music files: a reader
    must not take it for the video.
    """
    path = Path(path)
    container = av.open(str(path), "w")
    stream = container.add_stream(
        {".wav": "pcm_s16le", ".flac": "flac"}[path.suffix], rate=8000, layout="mono"
    )
    assert isinstance(stream, av.AudioStream)
    if cover_art:
        cover = container.add_stream("png", rate=1)
        assert isinstance(cover, av.VideoStream)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
        picture.pts = 0
        container.mux(cover.encode(picture))
        container.mux(cover.encode(None))
    samples = av.AudioFrame.from_ndarray(
        np.zeros((1, int(8000 * seconds)), np.int16), format="s16", layout="mono"
    )
    samples.sample_rate = 8000
    container.mux(stream.encode(samples))
    container.mux(stream.encode(None))
    container.close()
    return path
