"""Video files -> the upright, square RGB frames CLIP sees; the only module that opens video files.

Dimensions: F frames sampled from a clip, S the side of the square CLIP input (224).

Media time is seconds from the start of the file (the container's ``start_time``, which the ffmpeg
command line also subtracts), so a stream whose first timestamp is 1.4 s still starts at 0. Seconds given
by callers are rounded to microseconds (ffmpeg's own ``-ss`` resolution) and then handled as exact
fractions, so no frame flips because of float noise.

How the official pipeline sampled frames (spec §7.2, ``data/infer_clip.py``): ffmpeg-python with
``fps=4``, then ``scale`` (short side to 224, long side ``224 * long // short``), centre ``crop`` 224x224,
``rgb24``. FFmpeg's ``fps`` filter (``round=near``) rounds every input timestamp to the nearest output
tick and emits, for tick k, the last input frame whose rounded tick is <= k. So output frame k at
``t_k = start + k / fps`` shows the last frame with timestamp **strictly before t_k + 1 / (2 fps)**: the
frame on screen at the middle of the output period, not the one on screen at t_k (for a 30 fps source
and t_0 = 0 it is frame 3, at 0.1 s). We reproduce that rule (tests compare it with libavfilter's ``fps``
filter), use the first frame for ticks before it and hold the last frame after it. Only the count can
differ, at the very end of a file: the filter stops at the end time rounded to the nearest tick, while
we always return ``clip_frame_count`` = ``ceil((end - start) * fps)`` frames (a one-frame 0.04 s file
gives 1 frame, not 0).

Pixels go through a libavfilter graph with the same ``scale`` (bicubic) and ``crop`` filters, after the
rotation filters the ffmpeg command line inserts for rotated phone videos. One deliberate difference:
the official script sized ``scale`` from the coded width and height; we size it from the *displayed*
picture, after the pixel aspect ratio and the rotation, so anamorphic and portrait videos are not
squashed (for square-pixel, unrotated video the two are identical).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.container import InputContainer
from av.sidedata.sidedata import SideData
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from visage.model.network.sequence import clip_frame_count

_MICROSECONDS = 1_000_000  # ffmpeg's AV_TIME_BASE: container times and our rounding of input seconds
# Counter-clockwise display rotation -> libavfilter filters (name, arguments) that undo it.
_UPRIGHT_FILTERS: dict[int, list[tuple[str, str | None]]] = {
    0: [],
    90: [("transpose", "cclock")],
    -90: [("transpose", "clock")],
    180: [("hflip", None), ("vflip", None)],
}


class VideoError(ValueError):
    """A video file cannot give the frames asked for; the message names the file and the reason."""


class RangeError(VideoError):
    """The requested time range is empty, negative, not finite or beyond the end of the video."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as a player would show it.

    Attributes:
        path: the file.
        has_video: False for audio-only files (then the other video fields are 0 or empty).
        duration: seconds of media time to the end of the last video frame (whole file without video).
        frame_rate: average frame rate (24000/1001 stays exact); 0 when the file does not say.
        width: coded width in pixels, as stored.
        height: coded height in pixels, as stored.
        sample_aspect_ratio: width of one stored pixel over its height (1 for square pixels).
        display_width: width shown after the pixel aspect ratio and the rotation.
        display_height: height shown after the pixel aspect ratio and the rotation.
        rotation: counter-clockwise degrees the stored picture is turned for display: -90, 0, 90 or 180
            (FFmpeg's display-matrix angle, which ffprobe prints; phones filming upright write -90).
        mirrored: the display matrix also mirrors the picture horizontally, after the rotation.
        codec: FFmpeg's decoder name, e.g. "h264".
    """

    path: Path
    has_video: bool
    duration: float
    frame_rate: Fraction
    width: int
    height: int
    sample_aspect_ratio: Fraction
    display_width: int
    display_height: int
    rotation: int
    mirrored: bool
    codec: str


@dataclass(frozen=True)
class ClipFrames:
    """Frames sampled from one time range of a video.

    Attributes:
        frames: [F, S, S, 3] uint8 RGB, upright, resized and centre-cropped as CLIP expects.
        timestamps: [F] float64 media seconds of each sample, ``start + k / fps``.
        source_timestamps: [F] float64 media seconds of the decoded frame each sample shows.
        info: the file the frames came from.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    source_timestamps: np.ndarray
    info: VideoInfo


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video file (size, rate, rotation, duration); decodes only its first frame.

    Raises:
        VideoError: the file is missing, is not a media file, or its video cannot be decoded.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            return VideoInfo(
                path=path,
                has_video=False,
                duration=container.duration / _MICROSECONDS if container.duration else 0.0,
                frame_rate=Fraction(0),
                width=0,
                height=0,
                sample_aspect_ratio=Fraction(1),
                display_width=0,
                display_height=0,
                rotation=0,
                mirrored=False,
                codec="",
            )
        return _describe(path, container, stream)[0]


def read_clip_frames(
    path: str | Path, start: float, end: float, fps: int | Fraction = 4, size: int = 224
) -> ClipFrames:
    """Sample the frames of [start, end) at ``fps`` as the official ffmpeg pipeline did.

    Seeks to the keyframe at or before ``start`` and decodes forward, so any range of a long file is
    cheap. Frame times come from each frame's own timestamp, so variable frame rates, B-frames and
    streams that do not start at 0 give the frame a player shows.

    Args:
        path: a video file FFmpeg can read.
        start: first sample time in media seconds (>= 0).
        end: end of the range in media seconds, exclusive; at most the video's duration plus half a
            source frame.
        fps: samples per second (the official 4).
        size: side S of the square output (CLIP's 224).

    Returns:
        F = ``clip_frame_count(start, end, fps)`` frames with their times.

    Raises:
        VideoError: a missing or unreadable file, no video stream, a corrupt stream, a bad range, or no
            decodable frame.
    """
    path = Path(path)
    if Fraction(fps) <= 0 or size <= 0:
        raise VideoError(f"{path}: fps and size must be positive, got fps={fps}, size={size}")
    start_t, end_t = media_time(start, path, "start"), media_time(end, path, "end")
    if start_t < 0:
        raise RangeError(f"{path}: start must be >= 0 s, got {start} s")
    if start_t >= end_t:
        raise RangeError(f"{path}: start ({start} s) must be before end ({end} s)")
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise VideoError(f"{path}: no video stream (audio only, or only cover art); cannot sample frames")
        stream.thread_type = "AUTO"  # frame and slice threads: the same pixels, sooner
        info, first_time = _describe(path, container, stream)
        tolerance = 1 / (2 * info.frame_rate) if info.frame_rate else Fraction(0)
        if end_t > Fraction(info.duration) + tolerance:
            raise RangeError(
                f"{path}: range [{start}, {end}) s goes beyond the end of the video at {info.duration:.3f} s"
            )
        count = clip_frame_count(start, end, fps)
        times = [start_t + Fraction(k) / Fraction(fps) for k in range(count)]
        decoded = _decoded_from(path, container, stream, times[0], first_time)
        frames, shown = _sample(decoded, times, Fraction(fps), _Resizer(info, size))
    return ClipFrames(
        frames=np.stack(frames),  # [F, S, S, 3]
        timestamps=np.array([float(t) for t in times]),
        source_timestamps=np.array([float(t) for t in shown]),
        info=info,
    )


def frames_at(
    path: str | Path,
    times: Sequence[Fraction],
    rate: Fraction,
    convert: Callable[[VideoInfo], Callable[[VideoFrame], np.ndarray]],
    *,
    segment_frames: int = 256,
) -> Iterator[np.ndarray]:
    """The frame shown at each media time in ``times`` (the ``fps`` filter's rule at ``rate``), converted.

    For callers that need frames in another shape than CLIP's (full panoramas, upright camera views):
    ``convert(info)`` returns the function that turns a decoded frame into pixels. Frames are decoded a
    segment of ``segment_frames`` at a time, seeking for each, so a long range stays in bounded memory.

    Raises:
        VideoError: a missing or unreadable file, no video stream, or a corrupt stream.
        RangeError: a time before 0 or after the end of the video.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise VideoError(f"{path}: no video stream (audio only, or only cover art); cannot read frames")
        info, first_time = _describe(path, container, stream)
        if times and (min(times) < 0 or max(times) > Fraction(info.duration) + 1 / (2 * rate)):
            raise RangeError(
                f"{path}: frames wanted from {float(min(times)):.3f} s to {float(max(times)):.3f} s, "
                f"but the video runs from 0 to {info.duration:.3f} s"
            )
        converter = convert(info)
        for begin in range(0, len(times), segment_frames):
            segment = list(times[begin : begin + segment_frames])
            decoded = _decoded_from(path, container, stream, segment[0], first_time)
            frames, _ = _sample(decoded, segment, rate, converter)
            yield from frames


def media_time(seconds: float, path: Path | None = None, name: str = "time") -> Fraction:
    """Seconds rounded to ffmpeg's microsecond grid, as an exact fraction."""
    if not math.isfinite(seconds):
        raise RangeError(f"{path}: {name} must be a finite number of seconds, got {seconds}")
    return Fraction(round(seconds * _MICROSECONDS), _MICROSECONDS)


def _open(path: Path) -> InputContainer:
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: not a media file FFmpeg can read, or a damaged one ({exc})") from exc


def _video_stream(container: InputContainer) -> VideoStream | None:
    """The first real video stream; cover art in audio files is a video stream too, and is skipped."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _origin(container: InputContainer, stream: VideoStream) -> Fraction:
    """Absolute time of media time 0: the container's start (as ffmpeg counts), else the stream's."""
    if container.start_time is not None:
        return Fraction(container.start_time, _MICROSECONDS)
    return stream.start_time * _time_base(stream) if stream.start_time is not None else Fraction(0)


def _time_base(stream: VideoStream) -> Fraction:
    """Seconds per timestamp tick (FFmpeg sets it on every input stream)."""
    assert stream.time_base is not None
    return stream.time_base


def _describe(path: Path, container: InputContainer, stream: VideoStream) -> tuple[VideoInfo, Fraction]:
    """VideoInfo of a file's video stream and the media time of its first frame.

    Decodes the first frame: its side data holds the rotation.
    """
    origin = _origin(container, stream)
    with closing(_decoded(path, container, stream, origin)) as frames:
        first = next(frames, None)
    if first is None:
        raise VideoError(f"{path}: the video stream has no decodable frame")
    rotation, mirrored = _orientation(first[1])
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or Fraction(1)
    display = (round(stream.width * sar), stream.height)
    display_width, display_height = display[::-1] if rotation % 180 else display
    info = VideoInfo(
        path=path,
        has_video=True,
        duration=float(_video_end(path, container, stream) - origin),
        frame_rate=stream.average_rate or stream.guessed_rate or Fraction(0),
        width=stream.width,
        height=stream.height,
        sample_aspect_ratio=Fraction(sar),
        display_width=display_width,
        display_height=display_height,
        rotation=rotation,
        mirrored=mirrored,
        codec=stream.codec_context.name,
    )
    return info, first[0]


def _orientation(frame: VideoFrame) -> tuple[int, bool]:
    """(counter-clockwise rotation, mirrored) from the frame's display matrix, as ffmpeg reads it.

    The matrix's upper-left 2x2 block [[a, b], [c, d]] (16.16 fixed point) is a rotation, possibly
    followed by a horizontal mirror (negative determinant), which negates a and c. Undoing the mirror
    leaves ``av_display_rotation_get``'s angle, -atan2(b, a). For all eight right-angle cases this gives
    the same picture as the ffmpeg command line's autorotate filters. Angles that are not right angles
    (no phone writes them) are rounded to the nearest one.
    """
    side_data = cast(Mapping[str, SideData], frame.side_data)  # stub lists fewer keys
    if "DISPLAYMATRIX" not in side_data:
        return 0, False
    matrix = np.frombuffer(bytes(side_data["DISPLAYMATRIX"]), np.int32)  # [9], row-major 3x3
    a, b, _, c, d = matrix[:5].astype(np.float64)
    mirrored = a * d - b * c < 0
    degrees = -math.degrees(math.atan2(b, -a if mirrored else a))
    rotation = (round(degrees / 90) * 90 + 90) % 360 - 90  # one of -90, 0, 90, 180
    return rotation, bool(mirrored)


def _video_end(path: Path, container: InputContainer, stream: VideoStream) -> Fraction:
    """Absolute end time of the last video packet, found by reading the last GOP's packets.

    Container durations disagree about offsets (Matroska counts from 0, MP4 from the first timestamp),
    so the end is measured rather than read; the container's duration is the fallback.
    """
    ends = []
    try:
        container.seek(2**62, stream=stream, backward=True)
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None:  # the flushing packet at the end has neither
                ends.append(stamp + (packet.duration or 0))
    except av.FFmpegError:
        ends = []
    if ends:
        return max(ends) * _time_base(stream)
    if container.duration is None:
        raise VideoError(f"{path}: cannot tell how long the video is")
    return _origin(container, stream) + Fraction(container.duration, _MICROSECONDS)


def _decoded(
    path: Path, container: InputContainer, stream: VideoStream, origin: Fraction
) -> Generator[tuple[Fraction, VideoFrame]]:
    """(media time, frame) in presentation order from the current position; errors become VideoError."""
    try:
        for frame in container.decode(stream):
            if frame.pts is not None:  # a frame without a timestamp cannot be placed in time
                yield frame.pts * _time_base(stream) - origin, frame
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: corrupt video stream ({exc})") from exc


def _decoded_from(
    path: Path, container: InputContainer, stream: VideoStream, start: Fraction, first_time: Fraction
) -> Generator[tuple[Fraction, VideoFrame]]:
    """Decoded frames from the last frame at or before ``start`` (media time) onwards.

    A keyframe found by seeking can still be shown after ``start`` (demuxers index decode times,
    B-frames delay presentation, MPEG-TS seeks by searching), so the seek goes back 1, 2, 4, ... s,
    past the start of the file if need be, until decoding begins at or before ``start``, or at the
    stream's first frame (``first_time``).
    """
    origin = _origin(container, stream)
    back = Fraction(0)
    while back <= 2 * (start + 1):
        target = origin + start - back
        try:
            container.seek(math.floor(target / _time_base(stream)), stream=stream, backward=True)
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: cannot seek in the video stream ({exc})") from exc
        with closing(_decoded(path, container, stream, origin)) as frames:
            first = next(frames, None)
            if first is not None and first[0] <= max(start, first_time):
                yield first
                yield from frames
                return
        back = max(Fraction(1), 2 * back)
    raise VideoError(f"{path}: seeking cannot reach {float(start):.3f} s; the file's index may be damaged")


def _sample(
    decoded: Generator[tuple[Fraction, VideoFrame]],
    times: list[Fraction],
    fps: Fraction,
    resizer: Callable[[VideoFrame], np.ndarray],
) -> tuple[list[np.ndarray], list[Fraction]]:
    """Pick and resize the frame shown for each sample time (the ``fps`` filter's rule, see the top)."""
    half_period = 1 / (2 * fps)
    frames: list[np.ndarray] = []
    shown: list[Fraction] = []
    previous: tuple[Fraction, VideoFrame] | None = None

    def take(pick: tuple[Fraction, VideoFrame]) -> None:
        if not shown or pick[0] != shown[-1]:
            frames.append(resizer(pick[1]))
        else:
            frames.append(frames[-1])  # the same source frame again (slow source, or held at the end)
        shown.append(pick[0])

    with closing(decoded):
        for current in decoded:
            while len(shown) < len(times) and current[0] >= times[len(shown)] + half_period:
                take(previous or current)  # before the first frame of the file: show the first frame
            if len(shown) == len(times):
                break
            previous = current
    while len(shown) < len(times):
        assert previous is not None  # _decoded_from yields a frame or raises
        take(previous)  # after the last frame: hold it, as the fps filter does up to the end of file
    return frames, shown


class _Resizer:
    """Upright, short side to S (bicubic), centre S x S crop, RGB: libavfilter's own filters.

    The graph is built for the first frame's size and pixel format and rebuilt if a stream changes
    them mid-way. Target size follows the official script: short side S, long side ``S * long // short``
    (floor), crop offset ``(long - S) // 2``, computed from the displayed picture.
    """

    def __init__(self, info: VideoInfo, size: int) -> None:
        self._info = info
        self._size = size
        self._graph: av.filter.Graph | None = None
        self._key: tuple[int, int, str] | None = None

    def __call__(self, frame: VideoFrame) -> np.ndarray:
        """[S, S, 3] uint8 RGB of one decoded frame."""
        key = (frame.width, frame.height, frame.format.name)
        if key != self._key:
            self._graph, self._key = self._build(frame), key
        assert self._graph is not None
        self._graph.vpush(frame)
        return self._graph.vpull().to_ndarray()  # [S, S, 3]

    def _build(self, frame: VideoFrame) -> av.filter.Graph:
        info, size = self._info, self._size
        short, long = sorted((info.display_width, info.display_height))
        scaled_long = size * long // short
        if info.display_width >= info.display_height:
            width, height = scaled_long, size
        else:
            width, height = size, scaled_long
        graph = av.filter.Graph()
        buffer = (
            f"video_size={frame.width}x{frame.height}:pix_fmt={frame.format.name}"
            f":time_base={frame.time_base or Fraction(1, _MICROSECONDS)}:pixel_aspect=1/1"
            f":colorspace={int(frame.colorspace)}:range={int(frame.color_range)}"
        )
        chain = [graph.add("buffer", buffer)]
        chain += [graph.add(name, args) for name, args in _orientation_filters(info.rotation, info.mirrored)]
        chain.append(graph.add("scale", f"{width}:{height}:flags=bicubic"))
        chain.append(graph.add("crop", f"{size}:{size}:{(width - size) // 2}:{(height - size) // 2}"))
        chain.append(graph.add("format", "rgb24"))
        chain.append(graph.add("buffersink"))
        graph.link_nodes(*chain)
        graph.configure()
        return graph


def _orientation_filters(rotation: int, mirrored: bool) -> list[tuple[str, str | None]]:
    """Filters that turn a stored picture upright (what ffmpeg's command line inserts by default)."""
    return _UPRIGHT_FILTERS[rotation] + ([("hflip", None)] if mirrored else [])
