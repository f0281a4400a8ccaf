"""What a viewer sees at one instant of an edit: a brute-force walk of the OTIO structure.

Written from OpenTimelineIO's documented time model, not from the fill code: it answers one instant at a
time by descending from the timeline to a clip, with exact fractions, and never computes a range. The
rules (OTIO ``docs/tutorials/time-ranges.md`` and ``otio-timeline-structure.md``, and the way the
cmx_3600 and FCP adapters encode effects):

* The timeline shows its enabled video tracks stacked, the last one on top, each from the stack's time 0.
* An item placed at time P of its parent, seen at parent time p, is at its own time
  ``W.start + (p - P) * s``: W is its ``trimmed_range`` and s the product of its ``LinearTimeWarp``
  scalars (``FreezeFrame`` is one with scalar 0). It keeps its ``trimmed_range`` duration in the parent:
  the adapters store a speed change as the record duration plus the scalar.
* A clip's own time is the media time shown.
* A track lays out its children end to end from time 0, each for its duration; a transition takes no
  time: the item before it plays on for ``out_offset`` past the cut and the item after it starts
  ``in_offset`` before it, so inside a transition both are seen (either is a right answer).
* A stack starts all its children at its time 0; the last one is on top.
* Gaps and disabled items show nothing and keep their time.
* Layering: an opaque picture hides everything below it. Overlays (generated titles and bars, and clips
  marked as having alpha) hide nothing: one shows only where no layer shows anything opaque, the top
  one winning. Opaque solids (black, slug, solid colour) are opaque.
* One adapter convention: the cmx_3600 reader stores an EDL's record start R as a track
  ``source_range`` of (-R, content duration), a window holding none of the content (OTIO issues #346,
  #1385). Such a track shows its content, shifted by R.

Which clips are overlays is passed in (`Oracle.is_overlay`): the edit generator knows what it built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import opentimelineio as otio


@dataclass(frozen=True)
class View:
    """A clip seen at an instant, and the media time (seconds) it shows."""

    clip: str
    source_s: Fraction


@dataclass(frozen=True)
class _Seen:
    """What a layer (or several, composited) shows: the top opaque view and the top overlay view."""

    opaque: View | None = None
    overlay: View | None = None

    def over(self, below: _Seen) -> _Seen:
        return _Seen(self.opaque or below.opaque, self.overlay or below.overlay)

    @property
    def final(self) -> View | None:
        return self.opaque or self.overlay


_NOTHING = _Seen()


def seconds(time: otio.opentime.RationalTime) -> Fraction:
    """A RationalTime as exact seconds."""
    return Fraction(time.value) / Fraction(time.rate)


class Oracle:
    """Answers "what is seen at stack time t" for a timeline.

    Args:
        timeline: the edit.
        is_overlay: whether a clip is an overlay (hides nothing below it).
    """

    def __init__(
        self, timeline: otio.schema.Timeline, is_overlay: Callable[[otio.schema.Clip], bool]
    ) -> None:
        self.tracks = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video and t.enabled]
        self.is_overlay = is_overlay

    def seen(self, t: Fraction) -> set[View | None]:
        """Every view that may be the one seen at stack time ``t`` seconds (several inside transitions)."""
        return {seen.final for seen in self._stack(self.tracks, t)}

    def placement(self, item: otio.core.Item) -> tuple[Fraction, Fraction]:
        """(start, duration) in seconds of a child of a stack, in the stack's time."""
        window = self._window(item)
        return seconds(window.start_time - item.trimmed_range().start_time), seconds(window.duration)

    def _window(self, item: otio.core.Item) -> otio.opentime.TimeRange:
        window = item.trimmed_range()
        if isinstance(item, otio.schema.Track) and item.source_range is not None:
            content = item.available_range()
            trimmed_out = seconds(window.end_time_exclusive()) <= seconds(content.start_time)
            if (
                window.start_time.value < 0
                and trimmed_out
                and seconds(window.duration) == seconds(content.duration)
            ):
                return content  # the cmx_3600 record-start shape
        return window

    def _enter(self, item: otio.core.Item, offset: Fraction) -> list[_Seen]:
        """What ``item`` shows ``offset`` seconds after its placement start."""
        if not item.enabled or isinstance(item, otio.schema.Gap):
            return [_NOTHING]
        scalar = Fraction(1)
        for effect in item.effects:
            if isinstance(effect, otio.schema.LinearTimeWarp):
                scalar *= Fraction(effect.time_scalar)
        own = seconds(self._window(item).start_time) + offset * scalar
        if isinstance(item, otio.schema.Clip):
            view = View(item.name, own)
            return [_Seen(overlay=view) if self.is_overlay(item) else _Seen(opaque=view)]
        if isinstance(item, otio.schema.Track):
            return self._track(item, own)
        if isinstance(item, otio.schema.Stack):
            return self._stack(list(item), own)
        raise AssertionError(f"the oracle does not know {type(item).__name__}")

    def _track(self, track: otio.schema.Track, t: Fraction) -> list[_Seen]:
        children = list(track)
        found: list[_Seen] = []
        position = Fraction(0)
        for i, child in enumerate(children):
            if isinstance(child, otio.schema.Transition):
                continue
            duration = seconds(child.trimmed_range().duration)
            before = children[i - 1] if i > 0 else None
            after = children[i + 1] if i + 1 < len(children) else None
            lead = seconds(before.in_offset) if isinstance(before, otio.schema.Transition) else 0
            tail = seconds(after.out_offset) if isinstance(after, otio.schema.Transition) else 0
            if position - lead <= t < position + duration + tail:
                found.extend(self._enter(child, t - position))
            position += duration
        return found or [_NOTHING]

    def _stack(self, children: list[otio.core.Item], t: Fraction) -> list[_Seen]:
        composites = [_NOTHING]
        for child in children:  # bottom first
            start, duration = self.placement(child)
            layer = self._enter(child, t - start) if start <= t < start + duration else [_NOTHING]
            composites = list(dict.fromkeys(top.over(below) for below in composites for top in layer))
        return composites
