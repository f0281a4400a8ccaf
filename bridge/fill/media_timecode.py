"""A media file's start timecode: where its first frame sits on the source timecode an edit cuts from.

EDLs and most OTIO exports give source ranges in the media's own timecode (a camera file starting at
``01:00:00:00`` is cut at ``01:00:04:05``), while the model reads seconds from the start of the file.
When the edit does not state the media's range (no ``available_range``), the file's ``timecode`` tag
(QuickTime/MP4 ``tmcd`` track or container tag, as FFmpeg reports it) gives the origin. PyAV is imported
when a file is actually read, so that importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from opentimelineio.opentime import RationalTime, from_timecode

_RATE_TOLERANCE = 0.01  # 23.976 and 29.97 as typed by people mean the NTSC rates 24000/1001, 30000/1001


def read_start_timecode(path: Path) -> str | None:
    """The ``timecode`` tag of ``path`` (video stream, then any stream, then the container), or None.

    Unreadable files give None: the generation step reports them with the decoder's own message.
    """
    import av

    try:
        with av.open(str(path)) as container:
            streams = sorted(container.streams, key=lambda s: s.type != "video")
            for stream in streams:
                timecode = stream.metadata.get("timecode")
                if timecode:
                    return str(timecode)
            timecode = container.metadata.get("timecode")
            return str(timecode) if timecode else None
    except (av.FFmpegError, OSError, ValueError):
        return None


def timecode_origin(timecode: str, rate: float) -> RationalTime:
    """``timecode`` (``HH:MM:SS:FF``, ``;`` for drop frame) as a time at ``rate``, the edit's source rate.

    Counting the file's timecode at the same rate as the edit's source ranges makes their difference an
    exact frame count, even when the file's real rate differs slightly (24 vs 23.976). A rate written
    rounded (23.976, 29.97) counts as the NTSC rate it stands for, which OTIO's parser requires.

    Raises:
        ValueError: not a timecode at that rate.
    """
    try:
        return RationalTime(from_timecode(timecode, smpte_rate(rate)).value, rate)
    except ValueError as exc:  # OTIO's own text names neither the timecode nor the rate
        raise ValueError(f"cannot count the file's start timecode {timecode} at {rate:g} fps: {exc}") from exc


def smpte_rate(rate: float) -> float:
    """``rate``, or the SMPTE timecode rate it rounds (23.976 -> 24000/1001); OTIO's timecode parser
    accepts only the exact values."""
    nearest = float(RationalTime.nearest_smpte_timecode_rate(rate))
    return nearest if abs(nearest - rate) < _RATE_TOLERANCE else rate
