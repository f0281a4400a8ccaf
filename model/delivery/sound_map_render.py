"""Sound-map files: the heat map of a result over its video, as a PNG still or a short MP4.

Why: the picture users and reviewers look at to judge direction (issue 7). ``visage viz`` calls
``render_sound_map``; the maths is in ``visage.model.delivery.sound_map`` and the drawing in
``visage.model.delivery.sound_map_picture``.

Timing: output frame k shows the audio window centred on the middle of its display period,
``k / fps + 1 / (2 fps)`` seconds into the result, over the video frame shown then (the picking rule
of ``video_io.read_clip_frames``), where the result's first sample sits at ``start_s`` on the video's
timeline. The MP4 has ``ceil(duration · fps)`` frames at the video's own frame rate (25 if it has
none, at most 60), timestamps ``k / fps`` from 0, and, unless disabled, the binaural preview of the
result (listener facing the camera) as a stereo AAC track, so one can watch and listen at once.
A PNG shows the map of the whole result over the middle frame, or of one window (``at_s``).

A 360° video (monoscopic equirectangular, found from its spherical metadata or forced with
``equirect=True``) has no camera frame to paste: its frames are the panorama, resized to the picture,
with the AmbiX front on the centre column (``--panorama``), or the camera's view is cut out of them
(a square gnomonic view, ``features.equirect.render_view``). A pose yaw in the metadata is honoured as
the pipeline honours it (``inference.panorama_input``): the sound field is world-fixed and the frame's
azimuth ``a`` shows the world's ``a + pose_yaw``; a pose with pitch or roll is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame

from visage.model.features.direction import CameraDirection
from visage.model.features.equirect import render_view
from visage.model.files import video_io
from visage.model.files.audio_io import read_ambix
from visage.model.files.output_files import atomic_output, check_new_output
from visage.model.files.panorama_video import is_two_to_one
from visage.model.files.spherical_video import read_spherical_video

from .binaural_preview import PREVIEW_RENDERERS, check_renderer, load_decoder, render_preview
from .result_context import read_result_context
from .sound_map import CameraView, heat_levels, map_grid, windowed_energy_maps
from .sound_map_picture import CameraPainter, EquirectPainter, PanoramaPainter

MAP_STEP_DEG = 2.0  # map resolution; pictures interpolate it bilinearly
_DEFAULT_FPS = Fraction(25)
_MAX_FPS = 60
_SEGMENT_FRAMES = 64  # video frames decoded per seek, to bound memory on long clips
_H264_OPTIONS = {"preset": "veryfast", "crf": "20"}
_AAC_BITRATE = 192_000


class SoundMapError(ValueError):
    """Inputs or options that cannot give a sound-map picture; the message says which and why."""


@dataclass(frozen=True)
class RenderedMap:
    """What ``render_sound_map`` wrote.

    Attributes:
        path: the PNG or MP4.
        kind: "png" or "mp4".
        frames: pictures written (1 for a PNG).
        fps: frame rate of the MP4 (None for a PNG).
        size: (width, height) of the pictures.
        start_s: where the result's first sample sits on the video's timeline.
        camera: the camera direction the map was drawn for.
        duration_s: seconds of the result shown.
        on_360_video: the video is a 360° panorama (a camera view cut from it, or the whole of it).
    """

    path: Path
    kind: Literal["png", "mp4"]
    frames: int
    fps: Fraction | None
    size: tuple[int, int]
    start_s: float
    camera: CameraDirection
    duration_s: float
    on_360_video: bool


def render_sound_map(
    result_wav: str | os.PathLike[str],
    video: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    camera: CameraDirection | None = None,
    start_s: float | None = None,
    hfov_deg: float = 90.0,
    panorama: bool = False,
    equirect: bool | None = None,
    width: int = 640,
    window_s: float = 0.25,
    at_s: float | None = None,
    fps: Fraction | None = None,
    audio: bool = True,
    renderer: str = PREVIEW_RENDERERS[0],
    overwrite: bool = False,
) -> RenderedMap:
    """Draw a result's sound map over its video as ``.png`` (one still) or ``.mp4``.

    Args:
        result_wav: 4-channel AmbiX WAV.
        video: the clip the result was made for.
        output: ``.png`` or ``.mp4``.
        camera: where the camera looks (default: the result's sidecar, else straight ahead).
        start_s: where the result starts on the video's timeline (default: the sidecar's range start, else 0).
        hfov_deg: the camera's horizontal field of view (the dataset's crops are 90°).
        panorama: draw the whole sphere (equirectangular, width x width/2) with the frame pasted in,
            or, for a 360° video, over its own frames.
        equirect: the video is a monoscopic equirectangular 360° video: True says so, None reads its
            spherical metadata (or the result's sidecar: generated with ``--equirect``), False treats it
            as a flat camera picture whatever it says.
        width: picture width in pixels (camera pictures: at most the video's; rounded to even).
        window_s: audio window per MP4 frame, or around ``at_s``.
        at_s: PNG only: seconds into the result of the window to show (default: the whole result).
        fps: MP4 frame rate (default: the video's).
        audio: MP4 only: add the binaural preview as a stereo track.
        renderer: the preview's decoder (``binaural_preview.PREVIEW_RENDERERS``; ``youtube``: YouTube's).
        overwrite: replace an existing output.

    Raises:
        SoundMapError: bad options, an output that is the video, a start past the video's end, a 360°
            video of another projection, stereo layout or a cropped sphere.
        OutputExistsError, ChannelCountError, VideoError, SphericalVideoError: as their modules say.
    """
    out = check_new_output(output, suffixes=(".png", ".mp4"), overwrite=overwrite)
    if out.resolve() == Path(video).resolve():
        raise SoundMapError(f"{out}: the map would replace the video it is drawn over; name another file")
    kind: Literal["png", "mp4"] = "png" if out.suffix.lower() == ".png" else "mp4"
    if not 0 < hfov_deg < 180:
        raise SoundMapError(f"hfov must lie between 0 and 180 degrees, got {hfov_deg}")
    if width < 16 or window_s <= 0:
        raise SoundMapError(f"width must be at least 16 px and window positive, got {width}, {window_s}")
    check_renderer(renderer)
    if renderer != PREVIEW_RENDERERS[0] and (kind == "png" or not audio):
        has_none = "a PNG has none" if kind == "png" else "there is none with --no-audio"
        raise SoundMapError(f"--renderer {renderer} picks the MP4's binaural track; {has_none}")
    if at_s is not None and kind != "png":
        raise SoundMapError("--at picks the moment of a PNG still; an MP4 shows every moment")
    foa, sample_rate = read_ambix(result_wav)
    context = read_result_context(Path(result_wav))
    camera = camera or context.camera or CameraDirection(0.0, 0.0)
    start = context.start_s if start_s is None else start_s
    start = start or 0.0
    info = video_io.probe_video(Path(video))
    if not info.has_video:
        raise SoundMapError(f"{video}: no video stream to draw the map over")
    duration = min(foa.shape[1] / sample_rate, info.duration - start)
    if start < 0 or duration <= 0:
        raise SoundMapError(f"start {start:.3f} s lies outside the video (0 to {info.duration:.3f} s)")
    if equirect is None and context.forced_equirect:  # generate read it as 360° because of --equirect
        equirect = is_two_to_one(info.display_width, info.display_height) or None  # else another video
    pose_yaw = _panorama_pose_yaw(Path(video), equirect, info)
    paint, frame_size = _painter(camera, hfov_deg, width, info, panorama, pose_yaw)
    grid = map_grid(MAP_STEP_DEG)

    if kind == "png":
        if at_s is None:
            centre, window, moment = duration / 2, duration, duration / 2
        elif 0 <= at_s < duration:
            centre, window, moment = at_s, window_s, at_s
        else:
            raise SoundMapError(f"--at {at_s} s lies outside the result (0 to {duration:.3f} s)")
        levels = heat_levels(windowed_energy_maps(foa, sample_rate, [centre], window, grid))[0]  # [E, A]
        instant = Fraction(1_000_000)  # a still shows the frame on screen at that very moment
        (frame,) = _video_frames(Path(video), [video_io.media_time(start + moment)], instant, frame_size)
        picture = paint(frame, levels)
        with atomic_output(out, overwrite=overwrite) as tmp:
            tmp.write_bytes(_png_bytes(picture))
        size = (picture.shape[1], picture.shape[0])
        return RenderedMap(out, "png", 1, None, size, start, camera, duration, pose_yaw is not None)

    rate = fps or (info.frame_rate if 0 < info.frame_rate <= _MAX_FPS else _DEFAULT_FPS)
    count = math.ceil(duration * rate - 1e-9)
    offsets = [Fraction(k) / rate for k in range(count)]  # seconds into the result
    centres = np.array([float(t + 1 / (2 * rate)) for t in offsets])
    maps = windowed_energy_maps(foa, sample_rate, centres, window_s, grid).astype(np.float32)  # [F, E, A]
    levels_all = heat_levels(maps)
    stereo = None
    if audio:
        samples = round(duration * sample_rate)
        decoder = load_decoder(sample_rate, renderer=renderer)
        stereo, _ = render_preview(foa[:, :samples], decoder, camera)  # [2, n]
    times = [video_io.media_time(start) + t for t in offsets]
    pictures = (
        paint(frame, levels_all[k])
        for k, frame in enumerate(_video_frames(Path(video), times, rate, frame_size))
    )
    with atomic_output(out, overwrite=overwrite) as tmp:
        size = _write_mp4(tmp, pictures, rate, stereo, sample_rate)
    return RenderedMap(out, "mp4", count, rate, size, start, camera, duration, pose_yaw is not None)


Painter = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (video frame, [E, A] levels) -> picture


def _painter(
    camera: CameraDirection,
    hfov_deg: float,
    width: int,
    info: video_io.VideoInfo,
    panorama: bool,
    pose_yaw_deg: float | None,
) -> tuple[Painter, tuple[int, int]]:
    """How each picture is drawn, and the (width, height) video frames are decoded at for it.

    ``pose_yaw_deg`` is None for a flat video, else the 360° video's pose yaw.
    """
    if pose_yaw_deg is None:
        view = _camera_view(camera, hfov_deg, width, info, panorama)
        flat: Painter = PanoramaPainter(view, _even(width)) if panorama else CameraPainter(view)
        return flat, (view.width, view.height)
    if panorama:
        painter = EquirectPainter(_even(width), pose_yaw=math.radians(pose_yaw_deg))
        return painter, (_even(width), _even(width) // 2)
    side = _even(width)
    view = CameraView(
        math.radians(camera.yaw_deg), math.radians(camera.pitch_deg), math.radians(hfov_deg), side, side
    )
    camera_painter = CameraPainter(view)
    in_frame = CameraDirection(_wrapped(camera.yaw_deg - pose_yaw_deg), camera.pitch_deg)  # the frame's own
    source_width = _even(min(info.display_width, math.ceil(side * 360 / hfov_deg)))  # ~1 px per view px

    def cut_out(frame: np.ndarray, levels: np.ndarray) -> np.ndarray:
        return camera_painter(render_view(frame, in_frame, fov_deg=hfov_deg, size=side), levels)

    return cut_out, (source_width, source_width // 2)


def _panorama_pose_yaw(video: Path, forced: bool | None, info: video_io.VideoInfo) -> float | None:
    """None to read the video as a flat picture, else its pose yaw in degrees (0 without metadata).

    A 360° video is read as told (``forced``, which needs a 2:1 picture, as for generate), else as its
    spherical metadata says.
    """
    if forced is False:
        return None
    metadata = read_spherical_video(video)
    if metadata is None:
        if forced and not is_two_to_one(info.display_width, info.display_height):
            raise SoundMapError(
                f"{video}: --equirect needs a 2:1 equirectangular frame, but the picture is "
                f"{info.display_width} x {info.display_height}"
            )
        return 0.0 if forced else None
    if not (metadata.is_monoscopic_equirect and metadata.is_full_sphere) or (
        metadata.pose_pitch_deg or metadata.pose_roll_deg
    ):
        raise SoundMapError(
            f"{video}: its spherical metadata says {metadata.describe()}; the sound map is drawn over "
            "monoscopic full-sphere equirectangular video with no pose pitch or roll only"
        )
    return metadata.pose_yaw_deg


def _wrapped(yaw_deg: float) -> float:
    """An azimuth in [-180, 180)."""
    return (yaw_deg + 180.0) % 360.0 - 180.0


def _camera_view(
    camera: CameraDirection, hfov_deg: float, width: int, info: video_io.VideoInfo, panorama: bool
) -> CameraView:
    """The camera's picture size: the output width, or enough to fill its part of a panorama."""
    aspect = info.display_height / info.display_width
    wanted = width if not panorama else math.ceil(width * hfov_deg / 180)  # ~2 px of frame per panorama px
    view_width = _even(min(wanted, info.display_width))
    view_height = max(2, _even(round(view_width * aspect)))
    return CameraView(
        math.radians(camera.yaw_deg),
        math.radians(camera.pitch_deg),
        math.radians(hfov_deg),
        view_width,
        view_height,
    )


def _video_frames(
    path: Path, times: list[Fraction], rate: Fraction, size: tuple[int, int]
) -> Iterator[np.ndarray]:
    """Upright RGB frames ``[H, W, 3]`` of ``size`` (W, H) shown at each media time, a segment at a time."""
    upright = partial(_Upright, width=size[0], height=size[1])
    return video_io.frames_at(path, times, rate, upright, segment_frames=_SEGMENT_FRAMES)


class _Upright:
    """A decoded frame as displayed (pixel aspect, rotation, mirror applied) at ``width x height``."""

    def __init__(self, info: video_io.VideoInfo, width: int, height: int) -> None:
        self._turns = (info.rotation // 90) % 4  # counter-clockwise quarter turns
        self._mirrored = info.mirrored
        self._coded_size = (height, width) if self._turns % 2 else (width, height)

    def __call__(self, frame: VideoFrame) -> np.ndarray:
        coded_width, coded_height = self._coded_size
        pixels = frame.to_ndarray(format="rgb24", width=coded_width, height=coded_height)  # [h, w, 3]
        pixels = np.rot90(pixels, self._turns)
        return np.ascontiguousarray(pixels[:, ::-1] if self._mirrored else pixels)


def _write_mp4(
    path: Path,
    pictures: Iterator[np.ndarray],
    rate: Fraction,
    stereo: npt.NDArray[np.float32] | None,
    sample_rate: int,
) -> tuple[int, int]:
    """H.264 pictures at ``rate`` (timestamps k / rate from 0) and an optional stereo AAC track."""
    size = (0, 0)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as sink:
        video = sink.add_stream("libx264", rate=rate, options=_H264_OPTIONS)
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = 1 / rate
        sound = None
        if stereo is not None:
            sound = sink.add_stream("aac", rate=sample_rate, layout="stereo")
            sound.codec_context.bit_rate = _AAC_BITRATE
        muxed_audio = 0  # samples handed to the encoder so far; kept about a second ahead of the video
        for k, picture in enumerate(pictures):
            if k == 0:
                size = (picture.shape[1], picture.shape[0])
                video.width, video.height = size
            if sound is not None and stereo is not None:
                until = min(stereo.shape[1], round((k / rate + 1) * sample_rate))
                if until > muxed_audio:
                    sink.mux(sound.encode(_stereo_frame(stereo, muxed_audio, until, sample_rate)))
                    muxed_audio = until
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = k, 1 / rate
            sink.mux(video.encode(frame))
        sink.mux(video.encode(None))
        if sound is not None and stereo is not None:
            if stereo.shape[1] > muxed_audio:
                sink.mux(sound.encode(_stereo_frame(stereo, muxed_audio, stereo.shape[1], sample_rate)))
            sink.mux(sound.encode(None))
    return size


def _stereo_frame(stereo: np.ndarray, begin: int, end: int, sample_rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(stereo[:, begin:end]), format="fltp", layout="stereo"
    )
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, begin, Fraction(1, sample_rate)
    return frame


def _png_bytes(picture: np.ndarray) -> bytes:
    """A PNG file of an ``[H, W, 3]`` uint8 picture (FFmpeg's PNG encoder)."""
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height = picture.shape[1], picture.shape[0]
    codec.pix_fmt = "rgb24"
    codec.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
    frame.pts = 0
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def _even(value: int) -> int:
    """Round down to an even number of at least 2 (H.264 in 4:2:0 needs even sizes)."""
    return max(2, int(value) // 2 * 2)
