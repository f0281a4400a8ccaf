"""Equirectangular 360° video in, field-of-view clips out: the media side of rendering views.

The dataset builder and the inference pipeline both read panoramas here, so the views a model is trained
on and the views it is run on come from the same pixels: frames sampled at the CLIP rate with the same
frame rule as ``video_io.read_clip_frames`` (FFmpeg's ``fps`` filter), resized to the official working
size (the official preprocessing resampled panoramas to 896 x 448 at 4 fps before cropping, spec §7.1).
The views themselves are ``features.equirect.render_view``'s; a field-of-view clip is written as an
H.264 MP4, atomically.

Shapes: F frames, H x W equirectangular size, S view side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import VideoFrame

from visage.model.files import video_io
from visage.model.files.output_files import atomic_output

EQUIRECT_SIZE = (896, 448)  # official working size of the panoramas (width, height)
PANORAMA_ASPECT = Fraction(2)  # width / height of a full-sphere equirectangular frame
ASPECT_TOLERANCE = 0.01  # relative: 3840 x 1920 and 4096 x 2048 are 2:1, 3840 x 2160 is not


def is_two_to_one(width: int, height: int) -> bool:
    """Whether a displayed frame has a full-sphere panorama's shape (2:1 within ``ASPECT_TOLERANCE``).

    Why: a frame of another shape cannot be an uncropped equirectangular 360° picture, so forcing one
    to be read (or published) as 360° is refused.
    """
    if width <= 0 or height <= 0:
        return False
    return abs(Fraction(width, height) / PANORAMA_ASPECT - 1) <= ASPECT_TOLERANCE


def equirect_frames(
    path: str | Path,
    start: float,
    end: float,
    *,
    fps: int = 4,
    size: tuple[int, int] = EQUIRECT_SIZE,
) -> Iterator[np.ndarray]:
    """Equirectangular frames of ``[start, end)`` sampled at ``fps``, resized to ``size``, one at a time.

    Yields:
        ``[H, W, 3]`` uint8 RGB, ``clip_frame_count(start, end, fps)`` frames in all.

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

    return video_io.frames_at(path, times, Fraction(fps), resize)


def read_equirect_frames(
    path: str | Path,
    start: float,
    end: float,
    *,
    fps: int = 4,
    size: tuple[int, int] = EQUIRECT_SIZE,
) -> np.ndarray:
    """All of :func:`equirect_frames` at once: ``[F, H, W, 3]`` uint8 RGB."""
    return np.stack(list(equirect_frames(path, start, end, fps=fps, size=size)))


def write_view_clip(path: str | Path, frames: np.ndarray, fps: int = 4, *, overwrite: bool = False) -> Path:
    """Write ``[F, S, S, 3]`` uint8 RGB frames as an H.264 MP4 (temporary name, then rename).

    Raises:
        ValueError: frames of another shape or type.
        output_files.OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"expected uint8 frames [F, S, S, 3], got {frames.dtype} {frames.shape}")
    with atomic_output(path, overwrite=overwrite) as tmp, av.open(str(tmp), "w", format="mp4") as container:
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
