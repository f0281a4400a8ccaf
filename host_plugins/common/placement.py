"""Where a result goes: a free Blender channel, a free 4-channel track in Resolve or REAPER.

Hosts differ in what a lane is (a VSE channel, a Resolve audio track, a REAPER track) but share the
decision: the first lane, in a preferred order, whose spans leave ``[start, end)`` free. Resolve makes
this essential: ``AppendToTimeline`` silently drops a clip that would overlap an existing one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

BLENDER_MAX_CHANNEL = 128
AMBIX_TRACK_NAME = "FOA AmbiX (ACN/SN3D)"
RESOLVE_AMBIX_TRACK_TYPE = "adaptive4"  # Resolve has no ambisonic track type; 4 independent lanes
AMBIX_CHANNELS = 4


def overlaps(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    """Half-open intervals ``[a_start, a_end)`` and ``[b_start, b_end)`` share a point."""
    return a_start < b_end and b_start < a_end


@dataclass(frozen=True)
class Lane:
    """One lane of a host timeline and what already occupies it.

    Attributes:
        index: the host's lane number (Blender channel, Resolve 1-based track index, REAPER 0-based
            track index).
        spans: occupied ``(start, end)`` intervals, end exclusive, in the host's time unit.
        kind: the lane's format (Resolve track subtype such as "adaptive4"; "" when irrelevant).
        channels: the lane's channel count (REAPER ``I_NCHAN``; 0 when irrelevant).
        name: the lane's name.
    """

    index: int
    spans: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    kind: str = ""
    channels: int = 0
    name: str = ""

    def is_free(self, start: float, end: float) -> bool:
        return not any(overlaps(start, end, s, e) for s, e in self.spans)


def first_free_lane(
    lanes: Iterable[Lane], start: float, end: float, accept: Callable[[Lane], bool] = lambda lane: True
) -> Lane | None:
    """The first lane, in the given order, that ``accept`` takes and that is free over ``[start, end)``."""
    return next((lane for lane in lanes if accept(lane) and lane.is_free(start, end)), None)


def blender_sound_channel(
    occupied: Iterable[tuple[int, float, float]],
    start: float,
    end: float,
    *,
    above: int,
    max_channel: int = BLENDER_MAX_CHANNEL,
) -> int | None:
    """A VSE channel free over ``[start, end)``: the nearest above ``above``, else the nearest below.

    Args:
        occupied: ``(channel, frame_final_start, frame_final_end)`` of every strip in the editor.
        start, end: the new strip's frames (end exclusive).
        above: the source strip's channel.
        max_channel: Blender's highest channel.

    Returns:
        The channel, or None when every channel is taken there.
    """
    spans: dict[int, list[tuple[float, float]]] = {}
    for channel, s, e in occupied:
        spans.setdefault(int(channel), []).append((s, e))
    order = [*range(above + 1, max_channel + 1), *range(above - 1, 0, -1)]
    lane = first_free_lane((Lane(c, tuple(spans.get(c, ()))) for c in order), start, end)
    return None if lane is None else lane.index


def resolve_audio_track(tracks: Sequence[Lane], start: float, end: float) -> int | None:
    """An existing ``adaptive4`` audio track free over the record range, or None (add a new one)."""
    lane = first_free_lane(tracks, start, end, lambda t: t.kind == RESOLVE_AMBIX_TRACK_TYPE)
    return None if lane is None else lane.index


def reaper_ambix_track(tracks: Sequence[Lane], start: float, end: float) -> int | None:
    """An existing AmbiX track (our name, at least 4 channels) free over the item, or None (insert one)."""
    lane = first_free_lane(
        tracks, start, end, lambda t: t.name == AMBIX_TRACK_NAME and t.channels >= AMBIX_CHANNELS
    )
    return None if lane is None else lane.index
