"""Synthetic 360° recordings for the dataset tests: a bright blob in an equirectangular video, and a sound
encoded in first-order ambisonics at the blob's direction (sidecar WAV, AmbiX or FuMa).

The first ``quiet_seconds`` are near-silent, so clip selection has something to drop.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from av.video.frame import VideoFrame

from visage.model.audio.ambisonics import ambix_to_fuma, encode_mono
from visage.model.features.equirect import equirect_coordinates

BLOB_COLOR = (250, 40, 40)


def make_recording(
    path: Path,
    azimuth: float,
    elevation: float,
    *,
    seconds: int = 4,
    quiet_seconds: int = 1,
    fps: int = 8,
    size: tuple[int, int] = (256, 128),
    sample_rate: int = 16000,
    fuma: bool = False,
    carrier: np.ndarray | None = None,
) -> Path:
    """Write ``path`` (H.264 equirectangular video) and ``path.with_suffix('.wav')`` (4-channel audio).

    Args:
        azimuth, elevation: radians (AmbiX) of the blob and of the sound.
        carrier: the mono sound at ``sample_rate`` (default: white noise).
    """
    width, height = size
    x, y = equirect_coordinates(azimuth, elevation, width, height)
    yy, xx = np.mgrid[:height, :width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            image = np.full((height, width, 3), 30, np.uint8)
            radius = 7 + 2 * math.sin(i)
            dx = (xx - x + width / 2) % width - width / 2  # wraps around the seam
            image[dx**2 + (yy - y) ** 2 < radius**2] = BLOB_COLOR
            for packet in stream.encode(VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    n = seconds * sample_rate
    mono = carrier[:n] if carrier is not None else np.random.default_rng(0).standard_normal(n)
    mono = 0.3 * mono.astype(np.float64)
    mono[: quiet_seconds * sample_rate] *= 1e-4
    foa = encode_mono(mono, azimuth, elevation)
    if fuma:
        foa = ambix_to_fuma(foa)
    sf.write(str(path.with_suffix(".wav")), foa.T.astype(np.float32), sample_rate, subtype="FLOAT")
    return path
