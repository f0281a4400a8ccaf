"""The field-of-view clips a 360° video gives the model: one per 5-s window, rendered as the dataset was.

The model was trained on 90° views of panoramas (``dataset/build.py``): panoramas read at 4 fps and
896 x 448 (``files.panorama_video``), each frame rendered with ``features.equirect.render_view`` at
the camera direction (90°, 224 x 224, bilinear). Inference renders the same pictures: every window of
a clip (``features.windows``) gets its own view clip, at its own direction, and its CLIP features and
energy map are computed from that clip alone, exactly as for a training clip or a flat 5-s video.
(Windows overlap by a second; the shared frames are rendered once per window.)

A window's direction is the one asked for (``--yaw/--pitch`` or the direction curve's mean over the
window), or with ``look="auto"`` the direction of the most motion in the window's panoramas
(``features.look_direction``), which falls back to the one asked for when nothing moves. Directions
are in the world frame; the picture is rendered at the panorama direction
(``PanoramaInput.panorama_direction``, which honours a pose yaw).

Panoramas are read once, a window at a time (at most 20 frames in memory). ``saved_view_frames`` picks
the frames a ``--save-view`` clip shows: each window's frames up to where the next window starts.

Shapes: F frames of a window, H x W panorama size, S view side.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visage.model.features.direction import CameraDirection
from visage.model.features.equirect import render_view
from visage.model.features.look_direction import look_direction
from visage.model.features.windows import Window
from visage.model.files.panorama_video import equirect_frames

from .panorama_input import PanoramaInput

VIEW_FOV_DEG = 90.0  # the official nfov crop (spec §7.1), as dataset.build.BuildOptions.fov_deg


@dataclass(frozen=True)
class WindowView:
    """The view clip of one window.

    Attributes:
        direction: where the camera looks, world frame (what the model is given).
        rendered: the panorama direction the views were rendered at.
        looked: True when ``look="auto"`` chose the direction from the panoramas' motion.
        frames: ``[F, S, S, 3]`` uint8 RGB views.
    """

    direction: CameraDirection
    rendered: CameraDirection
    looked: bool
    frames: np.ndarray


def window_views(
    media: Path,
    start: float,
    end: float,
    windows: Sequence[Window],
    directions: Sequence[CameraDirection],
    source: PanoramaInput,
    *,
    look: str | None = None,
    fps: int = 4,
    size: int = 224,
) -> Iterator[WindowView]:
    """The view clip of every window of ``[start, end)``, in window order.

    Args:
        media: the 360° video.
        start, end: media seconds of the clip the windows were planned on.
        windows: ``features.windows.plan_windows(start, end, ...)``.
        directions: one world direction per window (the direction asked for).
        source: how the video is read (must be a panorama).
        look: None, or ``"auto"`` to look where things move.
        fps: frames per second (the model's CLIP rate).
        size: the view's side (CLIP's input size).

    Raises:
        ValueError: a flat source, or directions that do not match the windows.
        video_io.VideoError: the video cannot be read over that range.
    """
    if not source.panorama:
        raise ValueError(f"{media}: window_views needs a panorama, this video is read as flat")
    if len(directions) != len(windows):
        raise ValueError(f"{len(directions)} directions for {len(windows)} windows")
    buffer: list[np.ndarray] = []  # panoramas from `first` on
    first = 0
    pending = iter(zip(windows, directions, strict=True))
    window, asked = next(pending)
    for index, panorama in enumerate(equirect_frames(media, start, end, fps=fps)):
        buffer.append(panorama)
        while index + 1 == window.clip_stop:
            panoramas = buffer[window.clip_start - first : window.clip_stop - first]
            yield _render(panoramas, asked, source, look, size)
            following = next(pending, None)
            if following is None:
                return
            window, asked = following
            del buffer[: window.clip_start - first]
            first = window.clip_start
    raise ValueError(f"{media}: the video gave {first + len(buffer)} frames, window needs {window.clip_stop}")


def saved_view_frames(windows: Sequence[Window], views: Sequence[np.ndarray]) -> np.ndarray:
    """The frames of a ``--save-view`` clip: each window's views until the next window starts.

    Args:
        windows: the clip's windows.
        views: ``[F_k, S, S, 3]`` views of each window.

    Returns:
        ``[F, S, S, 3]``, one frame per CLIP frame of the clip.
    """
    parts = [
        frames[: (following.clip_start if following else window.clip_stop) - window.clip_start]
        for window, following, frames in zip(windows, [*windows[1:], None], views, strict=True)
    ]
    return np.concatenate(parts)


def _render(
    panoramas: Sequence[np.ndarray],
    asked: CameraDirection,
    source: PanoramaInput,
    look: str | None,
    size: int,
) -> WindowView:
    found = look_direction(np.stack(panoramas)) if look == "auto" else None
    direction = asked if found is None else source.world_direction(found)
    rendered = source.panorama_direction(direction)
    frames = np.stack([render_view(p, rendered, fov_deg=VIEW_FOV_DEG, size=size) for p in panoramas])
    return WindowView(direction, rendered, found is not None, frames)
