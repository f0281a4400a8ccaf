"""The sound of a 360° recording: its 4-channel ambisonic track, from a sidecar file or the container.

The pictures (equirectangular frames in, field-of-view clips out) are ``files.panorama_video``'s, which
the inference pipeline shares.

Shapes: C audio channels, N samples.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from visage.model.files.audio_io import ChannelCountError, read_ambix

SIDECAR_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus")


class SourceMediaError(ValueError):
    """A recording that cannot be read as a 360° video with a 4-channel ambisonic track."""


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
