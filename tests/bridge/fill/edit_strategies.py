"""Random edits (hypothesis strategies) with the features real editorial files have.

Several video tracks, each trimmed its own way (a ``source_range`` starting before, at or after its
content, or the cmx_3600 reader's record-start shape), disabled tracks and items, gaps, transitions
(also into and out of gaps), nested stacks and tracks (trimmed, retimed, frozen), clips with speed
changes and freeze frames, media at another rate than the timeline, generators that are overlays
(bars, titles), opaque solids (black, slug, solid colour) and clips marked as having alpha (FCP XML's
``alphatype``). Clip names say what each clip is (`is_overlay`), so the oracle need not guess.
"""

from __future__ import annotations

import itertools
import math

import opentimelineio as otio
from hypothesis import strategies as st
from opentimelineio.opentime import RationalTime, TimeRange

RATE = 24
OVERLAY_GENERATORS = ("SMPTEBars", "Title")  # generated pictures that leave what is below visible
OPAQUE_GENERATORS = ("black", "Slug", "SolidColor")  # solids that paint every pixel


def is_overlay(clip: otio.schema.Clip) -> bool:
    """True for the clips built as overlays (names starting with ``o``)."""
    return clip.name.startswith("o")


def is_generated(name: str) -> bool:
    """True for the names of clips built as generators, overlays or opaque solids (``og``, ``s``)."""
    return name.startswith(("og", "s"))


def _frames(item: otio.core.Item) -> float:
    return item.trimmed_range().duration.value_rescaled_to(RATE)


@st.composite
def clips(draw: st.DrawFn, names: itertools.count) -> otio.schema.Clip:
    """A clip: a picture, an overlay generator, an opaque solid, or a picture or slug with alpha."""
    kind = draw(st.sampled_from(["picture"] * 5 + ["overlay", "solid", "alpha", "alpha_slug"]))
    rate = draw(st.sampled_from([RATE, RATE, RATE, 2 * RATE]))
    source = TimeRange(
        RationalTime(draw(st.integers(0, 200)), rate), RationalTime(draw(st.integers(1, 8)), rate)
    )
    number = next(names)
    metadata = {}
    if kind in ("picture", "alpha"):
        name = f"{'c' if kind == 'picture' else 'oa'}{number}"
        reference: otio.core.MediaReference = otio.schema.ExternalReference(
            f"/media/{name}.mov", TimeRange(RationalTime(0, rate), RationalTime(100_000, rate))
        )
        if kind == "alpha":
            metadata = {"fcp_xml": {"alphatype": "straight"}}
    elif kind == "solid":
        name = f"s{number}"
        reference = otio.schema.GeneratorReference(generator_kind=draw(st.sampled_from(OPAQUE_GENERATORS)))
    else:
        name = f"og{number}"
        kind_name = "Slug" if kind == "alpha_slug" else draw(st.sampled_from(OVERLAY_GENERATORS))
        reference = otio.schema.GeneratorReference(generator_kind=kind_name)
        if kind == "alpha_slug":
            metadata = {"fcp_xml": {"alphatype": "straight"}}
    clip = otio.schema.Clip(name=name, media_reference=reference, source_range=source, metadata=metadata)
    effect = draw(st.sampled_from([None] * 6 + [0.5, 1.5, 2.0, 0.0]))
    if effect == 0.0:
        clip.effects.append(otio.schema.FreezeFrame())
    elif effect is not None:
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=effect))
    clip.enabled = draw(st.integers(0, 9)) > 0
    return clip


def items(names: itertools.count, depth: int) -> st.SearchStrategy[otio.core.Item]:
    """A track child: mostly clips, some gaps, and (above depth 0) nested stacks and tracks."""
    gap = st.integers(1, 6).map(lambda n: otio.schema.Gap(duration=RationalTime(n, RATE)))
    options = [clips(names), clips(names), clips(names), gap]
    if depth > 0:
        options += [stacks(names, depth - 1), tracks(names, depth - 1)]
    return st.one_of(*options)


@st.composite
def tracks(draw: st.DrawFn, names: itertools.count, depth: int) -> otio.schema.Track:
    """A track of 1-4 items with transitions between some neighbours; nested ones may be trimmed or
    retimed."""
    children: list[otio.core.Composable] = []
    for item in draw(st.lists(items(names, depth), min_size=1, max_size=4)):
        previous = children[-1] if children else None
        if previous is not None and draw(st.integers(0, 3)) == 0:
            longest_in, longest_out = min(3, int(_frames(previous))), min(3, int(_frames(item)))
            in_offset, out_offset = draw(st.integers(0, longest_in)), draw(st.integers(0, longest_out))
            if in_offset or out_offset:
                children.append(
                    otio.schema.Transition(
                        in_offset=RationalTime(in_offset, RATE), out_offset=RationalTime(out_offset, RATE)
                    )
                )
        children.append(item)
    track = otio.schema.Track(name=f"T{next(names)}", children=children)
    _nested_trim_and_speed(draw, track)
    return track


@st.composite
def stacks(draw: st.DrawFn, names: itertools.count, depth: int) -> otio.schema.Stack:
    """A nested stack of 1-2 tracks (the last on top), maybe trimmed, retimed or frozen."""
    stack = otio.schema.Stack(
        name=f"S{next(names)}", children=draw(st.lists(tracks(names, depth), min_size=1, max_size=2))
    )
    _nested_trim_and_speed(draw, stack)
    return stack


def _nested_trim_and_speed(draw: st.DrawFn, item: otio.core.Item) -> None:
    frames = math.floor(_frames(item))
    if frames >= 2 and draw(st.booleans()):
        start = draw(st.integers(0, frames - 1))
        duration = draw(st.integers(1, frames - start))
        item.source_range = TimeRange(RationalTime(start, RATE), RationalTime(duration, RATE))
    effect = draw(st.sampled_from([None] * 5 + [0.5, 2.0, 0.0]))
    if effect == 0.0:
        item.effects.append(otio.schema.FreezeFrame())
    elif effect is not None:
        item.effects.append(otio.schema.LinearTimeWarp(time_scalar=effect))
    item.enabled = draw(st.integers(0, 9)) > 0


@st.composite
def edits(draw: st.DrawFn, max_tracks: int = 3, depth: int = 1) -> otio.schema.Timeline:
    """A timeline of 1-``max_tracks`` video tracks (at least one enabled) and an audio track.

    Top-level tracks are trimmed alike (all the same ``source_range``) or each its own way: none, a
    window starting up to 6 frames before or after the content, or the cmx_3600 record-start shape.
    """
    names = itertools.count(1)
    video = draw(st.lists(tracks(names, depth), min_size=1, max_size=max_tracks))
    for track in video:
        track.effects.clear()
        track.source_range = None
        track.enabled = True
    shared = draw(st.booleans())
    trims = [_top_trim(draw, track) for track in video]
    for track, trim in zip(video, trims, strict=True):
        track.source_range = trims[0] if shared else trim
    if len(video) > 1:
        for track in video[:-1]:
            track.enabled = draw(st.integers(0, 5)) > 0
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    return otio.schema.Timeline(name="random edit", tracks=[*video, audio])


def _top_trim(draw: st.DrawFn, track: otio.schema.Track) -> TimeRange | None:
    content = math.ceil(_frames(track))
    choice = draw(st.sampled_from(["none", "none", "window", "window", "record_start"]))
    if choice == "none" or content == 0:
        return None
    if choice == "record_start":  # cmx_3600: (-record start, content duration)
        start = -(content + draw(st.integers(0, 5)))
        return TimeRange(RationalTime(start, RATE), track.available_range().duration)
    start = draw(st.integers(-6, 6))
    return TimeRange(RationalTime(start, RATE), RationalTime(draw(st.integers(1, content + 6)), RATE))
