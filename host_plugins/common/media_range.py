"""Clip ranges in media seconds, computed exactly (Fractions) from what each host reports.

A request names a range on the *media's own* timeline: seconds from the first frame of the source file,
whatever edit it sits in. Hosts report frame numbers at some rate (Blender scene frames, Resolve
timeline frames) or float seconds (REAPER); these functions turn them into a `MediaRange` without
floating-point drift, so a 23.976 fps clip trimmed by 1001 frames starts at exactly 41.75 s.

Rates are Fractions: NTSC rates written as decimals ("23.976", 29.97, Blender's fps / fps_base) snap to
their exact value (24000/1001, 30000/1001, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

# Exact NTSC rates; a decimal within RATE_SNAP_FPS of one of these is that rate.
NTSC_RATES = tuple(Fraction(1000 * n, 1001) for n in (24, 30, 48, 60, 120, 240))
RATE_SNAP_FPS = 0.002  # frames per second; 23.976 and Blender's float32 fps_base land well inside
MAX_RATE_DENOMINATOR = 1001  # other non-integer rates are read as the nearest p/q with q <= this

_DROP_FRAME = re.compile(r"\s*(N?DF)\s*$", re.IGNORECASE)


class RangeError(ValueError):
    """A rate or range that cannot describe a clip (negative, empty, not a number)."""


@dataclass(frozen=True)
class MediaRange:
    """``[start_s, end_s)`` in seconds on the media's own timeline."""

    start_s: Fraction
    end_s: Fraction

    def __post_init__(self) -> None:
        if self.start_s < 0:
            raise RangeError(f"range starts before the media does ({float(self.start_s):.6g} s)")
        if self.end_s <= self.start_s:
            raise RangeError(
                f"empty range: end {float(self.end_s):.6g} s is not after start {float(self.start_s):.6g} s"
            )

    @property
    def duration_s(self) -> Fraction:
        return self.end_s - self.start_s

    @property
    def start(self) -> float:
        """The start as sent on the wire (OSC double)."""
        return float(self.start_s)

    @property
    def end(self) -> float:
        return float(self.end_s)


def exact(value: float | int | Fraction | str) -> Fraction:
    """A host number as a Fraction: exact for ints/Fractions/decimal strings, the float's own value else."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise RangeError(f"expected a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RangeError(f"expected a finite number, got {value!r}")
    try:
        return Fraction(value)
    except (TypeError, ValueError):
        raise RangeError(f"expected a number, got {value!r}") from None


def parse_rate(value: float | int | Fraction | str, base: float | int | Fraction | str = 1) -> Fraction:
    """A frame rate as an exact Fraction.

    Args:
        value: frames per second: a number, a Fraction, or text as hosts write it ("23.976", "29.97 DF",
            "30000/1001", "25").
        base: divisor (Blender's ``render.fps_base``; 1.001 for NTSC).

    Returns:
        The rate, snapped to an exact NTSC rate or integer when the decimal is within `RATE_SNAP_FPS`.

    Raises:
        RangeError: not a positive finite rate.
    """
    if isinstance(value, str):
        value = _DROP_FRAME.sub("", value.strip())
    raw = exact(value) / exact(base) if exact(base) != 0 else Fraction(-1)
    if raw <= 0:
        raise RangeError(f"frame rate must be positive, got {value!r} / {base!r}")
    for rate in (*NTSC_RATES, Fraction(round(raw))):
        if abs(raw - rate) <= RATE_SNAP_FPS:
            return rate
    return raw.limit_denominator(MAX_RATE_DENOMINATOR)


def frames_to_seconds(frames: float | int | Fraction, rate: Fraction) -> Fraction:
    """``frames / rate`` exactly."""
    return exact(frames) / rate


@dataclass(frozen=True)
class StripTiming:
    """How a Blender movie strip maps scene frames to media time.

    Blender shows media frame ``animation_offset + (f - frame_start) * media_frames_per_strip_frame`` at
    scene frame ``f`` (``give_frame_index`` in ``sequencer/intern/strip_time.cc``): the factor is 1 for
    a strip added by script, and ``movie_fps / scene_fps`` (``media_playback_rate / scene_fps``) when
    Blender adjusted the playback rate, the UI's default when adding a movie.
    """

    frame_start: Fraction  # scene frame where media frame `animation_offset` would sit
    frame_final_start: Fraction  # first visible scene frame
    frame_final_end: Fraction  # scene frame after the last visible one
    media_rate: Fraction  # the movie's own frame rate
    scene_rate: Fraction  # render.fps / render.fps_base
    media_frames_per_strip_frame: Fraction
    animation_offset: Fraction = Fraction(0)  # media frames cut from its start (animation_offset_start)

    def media_time(self, scene_frame: float | int | Fraction) -> Fraction:
        """Seconds into the media of the frame the strip shows at ``scene_frame``."""
        frames = (exact(scene_frame) - self.frame_start) * self.media_frames_per_strip_frame
        return (self.animation_offset + frames) / self.media_rate

    @property
    def media_range(self) -> MediaRange:
        return MediaRange(self.media_time(self.frame_final_start), self.media_time(self.frame_final_end))

    @property
    def speed(self) -> Fraction:
        """Media seconds per scene second: 1 unless the movie plays at the wrong speed (another rate,
        not adjusted), when sound made for the media's time runs out of step with the picture."""
        return self.media_frames_per_strip_frame * self.scene_rate / self.media_rate


def blender_strip_timing(
    *,
    frame_start: float,
    frame_final_start: float,
    frame_final_end: float,
    frame_duration: float,
    media_frame_count: int | None,
    movie_fps: float | Fraction | str,
    scene_fps: Fraction,
    animation_offset_start: int = 0,
    animation_offset_end: int = 0,
) -> StripTiming:
    """`StripTiming` of a movie strip from its RNA properties.

    The rate factor comes from the two rates, not from the strip's length: Blender stores the adjusted
    length truncated (``strip->len / factor`` as an int: 119 frames for 125 frames of 25 fps in a 23.976
    scene), so a ratio of lengths is off by up to a frame over the strip. The length only tells whether
    Blender adjusted the rate: it is then ``media frames * scene_fps / movie_fps`` rounded down (in
    float32, so within one frame).

    Args:
        frame_start: ``strip.frame_start``.
        frame_final_start: ``strip.frame_final_start`` (visible in-point, scene frames).
        frame_final_end: ``strip.frame_final_end`` (visible out-point, exclusive).
        frame_duration: ``strip.frame_duration`` (the strip's content length in scene frames).
        media_frame_count: the movie's own frame count (e.g. from a MovieClip), or None when unknown
            (then the strip is taken as not adjusted).
        movie_fps: ``strip.fps``, the movie's native rate.
        scene_fps: the scene's rate (`parse_rate` of ``render.fps``, ``render.fps_base``).
        animation_offset_start, animation_offset_end: ``strip.animation_offset_start/end``.

    Raises:
        RangeError: no visible frames, or a length that neither rate explains (retiming keys, speed
            effects: not supported).
    """
    start, final_start, final_end = exact(frame_start), exact(frame_final_start), exact(frame_final_end)
    if final_end <= final_start:
        raise RangeError(f"strip shows no frames ({frame_final_start}..{frame_final_end})")
    movie_rate = parse_rate(movie_fps)
    factor = Fraction(1)
    if media_frame_count and movie_rate != scene_fps:
        held = media_frame_count - animation_offset_start - animation_offset_end  # Blender's strip->len
        adjusted = held * scene_fps / movie_rate
        if exact(frame_duration) != held:
            if abs(exact(frame_duration) - adjusted) > 1:
                raise RangeError(
                    f"the strip shows {held} media frames over {frame_duration} scene frames, which "
                    f"neither its rate nor Blender's playback-rate adjustment ({float(adjusted):.2f}) "
                    "explains: retimed strips (retiming keys, speed) are not supported"
                )
            factor = movie_rate / scene_fps
    return StripTiming(
        start, final_start, final_end, movie_rate, scene_fps, factor, Fraction(animation_offset_start)
    )


def resolve_item_range(
    *, left_offset: float | int, duration: float | int, timeline_rate: Fraction
) -> MediaRange:
    """Source range of a Resolve timeline item.

    Args:
        left_offset: ``item.GetLeftOffset()`` — the source in-point in timeline-rate frames (exact,
            unlike ``GetSourceStartFrame()``, which is off by one on some items).
        duration: ``item.GetDuration()`` in timeline frames.
        timeline_rate: the timeline's rate (`parse_rate` of ``timeline.GetSetting("timelineFrameRate")``).
    """
    start = frames_to_seconds(left_offset, timeline_rate)
    return MediaRange(start, start + frames_to_seconds(duration, timeline_rate))


@dataclass(frozen=True)
class ItemRange:
    """A REAPER item's media range and where its audio starts relative to the item's position."""

    media_range: MediaRange
    lead_in_s: Fraction  # project seconds of silence before the media starts (item extended left of it)
    clamped: bool  # the item loops or runs past the end of its source; the range stops at the source's end


def reaper_item_range(
    *,
    start_offset_s: float,
    length_s: float,
    play_rate: float,
    source_length_s: float | None = None,
    section_offset_s: float = 0.0,
) -> ItemRange:
    """Source range of a REAPER item (take ``D_STARTOFFS``, item ``D_LENGTH``, take ``D_PLAYRATE``).

    The item plays ``length_s * play_rate`` seconds of its source, starting ``start_offset_s`` into it.
    A negative start offset (item extended left of the source) becomes a lead-in; a range past the
    source's end (a looped item) is clamped to it. For a take whose source is a section of a file
    (``PCM_Source_GetSectionInfo``), the start offset and ``source_length_s`` are the section's and
    ``section_offset_s`` is where the section starts in the file; the range returned is in the file.
    """
    rate = exact(play_rate)
    if rate <= 0:
        raise RangeError(f"play rate must be positive, got {play_rate}")
    start, end = exact(start_offset_s), exact(start_offset_s) + exact(length_s) * rate
    lead_in = Fraction(0)
    if start < 0:
        lead_in, start = -start / rate, Fraction(0)
    clamped = False
    if source_length_s is not None and source_length_s > 0 and end > exact(source_length_s):
        end, clamped = exact(source_length_s), True
    offset = exact(section_offset_s)
    return ItemRange(MediaRange(start + offset, end + offset), lead_in, clamped)
