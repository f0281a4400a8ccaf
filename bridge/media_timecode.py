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
    exact frame count, even when the file's real rate differs slightly (24 vs 23.976).

    Raises:
        ValueError: not a timecode at that rate.
    """
    return from_timecode(timecode, rate)
