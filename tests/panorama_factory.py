"""Synthetic equirectangular panoramas for the 360° input tests: a bright disc at a known direction on a
static textured background, as numpy frames or as an H.264 video.

Spherical metadata (``st3d`` + ``sv3d``) is added with the project's own box builders
(``files.spherical_video``), whose byte layouts are tested against the RFCs in ``tests/model/files``.

The geometry is written out here from the equirectangular definition (centre column = azimuth 0 =
AmbiX front, left half = positive azimuth, top row = up; pixel centres at ``x + 0.5``), not taken from
``features.equirect``, so the tests that use it check that module instead of repeating it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from av.video.frame import VideoFrame

from visage.model.files.mp4_boxes import top_level_boxes
from visage.model.files.spherical_boxes import SphericalBoxes, insert_spherical_boxes
from visage.model.files.spherical_video import SphericalVideo, build_st3d, build_sv3d

DISC_COLOR = (255, 255, 255)


def pixel_directions(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth ``[1, W]`` and elevation ``[H, 1]`` (radians) of the pixel centres."""
    azimuth = math.pi - 2 * math.pi * (np.arange(width) + 0.5) / width
    elevation = math.pi / 2 - math.pi * (np.arange(height) + 0.5) / height
    return azimuth[None, :], elevation[:, None]


def angular_distance(az1: np.ndarray | float, el1: np.ndarray | float, az2: float, el2: float) -> np.ndarray:
    """Great-circle angle (radians) between directions."""
    cos = np.sin(el1) * math.sin(el2) + np.cos(el1) * math.cos(el2) * np.cos(np.subtract(az1, az2))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def textured_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A static, dim random texture in blocks of 4 pixels ([H, W, 3] uint8), so a still frame is not flat."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(20, 110, size=(math.ceil(height / 4), math.ceil(width / 4), 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)[:height, :width]


def disc_frames(
    centres_deg: Sequence[tuple[float, float]],
    *,
    size: tuple[int, int] = (256, 128),
    radius_deg: float = 9.0,
    seed: int = 0,
) -> np.ndarray:
    """One frame per (azimuth, elevation) in degrees: the disc there on the background, ``[F, H, W, 3]``."""
    width, height = size
    azimuth, elevation = pixel_directions(width, height)
    background = textured_background(width, height, seed)
    frames = np.repeat(background[None], len(centres_deg), axis=0)
    for frame, (az, el) in zip(frames, centres_deg, strict=True):
        inside = angular_distance(azimuth, elevation, math.radians(az), math.radians(el)) < math.radians(
            radius_deg
        )
        frame[inside] = DISC_COLOR
    return frames


def moving_disc_centres(
    az_deg: float, el_deg: float, frames: int, span_deg: float = 8.0
) -> list[tuple[float, float]]:
    """Centres moving along the azimuth through (az, el), ``span_deg`` end to end, mean (az, el)."""
    offsets = np.linspace(-span_deg / 2, span_deg / 2, frames)
    return [(az_deg + float(o), el_deg) for o in offsets]


def write_panorama_video(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Write ``[F, H, W, 3]`` uint8 frames as an H.264 MP4 (no spherical metadata)."""
    height, width = frames.shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"}
        for image in frames:
            for packet in stream.encode(VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def add_spherical_metadata(path: Path, video: SphericalVideo) -> Path:
    """Mark an MP4 as 360° in place: ``st3d`` + ``sv3d`` boxes in its video sample entry."""
    data = path.read_bytes()
    with path.open("rb") as f:
        moov = next(b for b in top_level_boxes(f) if b.type == b"moov")
    boxes = SphericalBoxes(st3d=build_st3d(video.stereo), sv3d=build_sv3d(video))
    new_moov = insert_spherical_boxes(data[moov.start : moov.end], boxes, moov.start)
    path.write_bytes(data[: moov.start] + new_moov + data[moov.end :])
    return path
