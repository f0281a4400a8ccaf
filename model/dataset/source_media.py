"""Media files of the dataset builder: 360° recordings in, rendered field-of-view clips out.

Reading a recording: equirectangular frames at the CLIP rate, at a fixed working size (the official
preprocessing resampled panoramas to 896 x 448 at 4 fps before cropping, spec §7.1), picked with the
same frame rule as ``video_io.read_clip_frames`` (FFmpeg's ``fps`` filter); and its 4-channel ambisonic
track, from a sidecar audio file next to the video or from the video container itself. Writing: a
field-of-view clip as an H.264 MP4, atomically.

Shapes: F frames, H x W equirectangular size, S view side, C audio channels, N samples.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import VideoFrame

from visage.model.files import video_io
from visage.model.files.audio_io import ChannelCountError, read_ambix
from visage.model.files.output_files import atomic_output

EQUIRECT_SIZE = (896, 448)  # official working size of the panoramas (width, height)
SIDECAR_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus")


class SourceMediaError(ValueError):
    """A recording that cannot be read as a 360° video with a 4-channel ambisonic track."""


def read_equirect_frames(
    path: str | Path,
    start: float,
    end: float,
    *,
    fps: int = 4,
    size: tuple[int, int] = EQUIRECT_SIZE,
) -> np.ndarray:
    """Equirectangular frames of ``[start, end)`` sampled at ``fps``, resized to ``size``.

    Returns:
        ``[F, H, W, 3]`` uint8 RGB with F = ``clip_frame_count(start, end, fps)``.

    Raises:
        video_io.VideoError: missing or unreadable file, no video, or a range past the end.
    """
    start_t = video_io.media_time(start, Path(path), "start")
    end_t = video_io.media_time(end, Path(path), "end")
    if not 0 <= start_t < end_t:
        raise video_io.RangeError(f"{path}: bad range [{start}, {end}) s")
    width, height = size
    times = [start_t + Fraction(k, fps) for k in range(video_io.clip_frame_count(start, end, fps))]

    def resize(_: video_io.VideoInfo) -> Callable[[VideoFrame], np.ndarray]:
        return lambda frame: frame.reformat(width=width, height=height, format="rgb24").to_ndarray()

    return np.stack(list(video_io.frames_at(path, times, Fraction(fps), resize)))


def sidecar_audio(video: str | Path) -> Path | None:
    """The audio file next to a video with the same stem (``clip.mp4`` -> ``clip.wav``), if any."""
    video = Path(video)
    for suffix in SIDECAR_AUDIO_SUFFIXES:
        candidate = video.with_suffix(suffix)
        if candidate != video and candidate.is_file():
            return candidate
    return None


def read_ambisonic_track(path: str | Path) -> tuple[np.ndarray, int]:
    """The 4-channel track of a recording: a sidecar audio file if there is one, else the container's.

    Channels are returned in the order stored; whether that is AmbiX or FuMa is the caller's to say.

    Returns:
        ``([4, N] float32, sample_rate)``.

    Raises:
        FileNotFoundError: no such file.
        ChannelCountError: the track does not have 4 channels.
        SourceMediaError: no audio track, or one that cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such recording: {path}")
    side = sidecar_audio(path) if path.suffix.lower() not in SIDECAR_AUDIO_SUFFIXES else path
    if side is not None:
        audio = read_ambix(side)
        return audio.audio, audio.sample_rate
    return _decode_container_audio(path)


def _decode_container_audio(path: Path) -> tuple[np.ndarray, int]:
    try:
        with av.open(str(path), "r") as container:
            if not container.streams.audio:
                raise SourceMediaError(
                    f"{path}: no audio track and no sidecar audio file ({', '.join(SIDECAR_AUDIO_SUFFIXES)})"
                )
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels
            if channels != 4:
                raise ChannelCountError(
                    f"{path}: the audio track has {channels} channel(s); first-order ambisonics needs 4"
                )
            chunks = []
            for frame in container.decode(stream):
                data = frame.to_ndarray()
                if not frame.format.is_planar:  # interleaved [1, n * C] -> [C, n]
                    data = data.reshape(-1, channels).T
                if np.issubdtype(data.dtype, np.integer):
                    data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
                chunks.append(data.astype(np.float32, copy=False))
            rate = int(stream.codec_context.sample_rate)
    except av.FFmpegError as exc:
        raise SourceMediaError(f"{path}: cannot decode the audio track ({exc})") from exc
    if not chunks:
        raise SourceMediaError(f"{path}: the audio track has no samples")
    return np.concatenate(chunks, axis=1), rate


def write_view_clip(path: str | Path, frames: np.ndarray, fps: int = 4) -> Path:
    """Write ``[F, S, S, 3]`` uint8 RGB frames as an H.264 MP4 (temporary name, then rename)."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"expected uint8 frames [F, S, S, 3], got {frames.dtype} {frames.shape}")
    with atomic_output(path, overwrite=True) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for image in frames:
            for packet in stream.encode(VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
