"""The shots an edit shows: OpenTimelineIO video tracks -> the clips on screen, where, and from what media.

Pure: a ``Timeline`` in, `Shot` values out; no file is opened (finding the media files is
`media_relink`'s job). A shot is the part of a clip that is actually seen:

* **Record position** (`Shot.record`): where the shot sits on the timeline, in the timeline's rate and in
  the coordinates of the chosen tracks' content (`Track.range_of_child`), so a new track built with the
  same ``source_range`` lines up frame for frame. Transitions take no record time: the cut point
  separates two shots, as OTIO's own track layout does.
* **Layers**: several chosen video tracks (and nested stacks) are flattened the way a viewer composites
  them, top layer wins: a clip partly covered by a clip on a higher track becomes one shot per visible
  piece. Gaps are transparent; disabled items are ignored.
* **Overlays**: generated pictures (titles, bars, slugs) and clips marked as having alpha
  (FCP XML ``alphatype`` other than ``none``, or ``metadata["visage"]["alpha"]``) never hide what is
  below them; they become shots only where nothing else shows. A fully opaque solid generator (see
  `OPAQUE_SOLIDS`) does hide: the clips it hides are named in its shot (`Shot.hides`), so the run can
  report them.
* **Track trims**: each chosen track shows its ``source_range`` window at the start of the stack
  (``Stack.range_of_child``), so tracks trimmed differently are composited in the stack's time. When
  every chosen track has the same ``source_range``, records stay in the tracks' own content time and
  the new track takes that ``source_range``. The cmx_3600 reader stores an EDL's record start as a
  negative track ``source_range`` start with the content's duration, a window that holds none of the
  content (OpenTimelineIO issues #346, #1385); such a track is read as its content shifted by that start.
* **Nesting**: a nested track or stack is windowed by its own ``source_range`` and placed at its
  position in the parent.
* **Speed**: ``LinearTimeWarp`` scalars multiply (`Shot.speed`); a ``FreezeFrame`` (scalar 0) holds one
  picture, and its sound is generated from the held frame on. Reverse playback is reported, not guessed.
* **Direction**: ``metadata["visage"]`` (``yaw``, ``pitch`` in degrees, or ``direction_curve``, a file)
  on a clip, inherited from its enclosing stacks and tracks; what is not set comes from the command line.

Times stay ``RationalTime``/``TimeRange`` throughout; seconds appear only where a media range is handed
to the model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

NAMESPACE = "visage"  # our key in every OTIO metadata dictionary
RESOLVE_NAMESPACE = "Resolve_OTIO"  # DaVinci Resolve's key (hosts_and_formats §2.5)
FCP_NAMESPACE = "fcp_xml"  # the FCP 7 XML adapter's key; a clipitem's ``alphatype`` lands there
# Generator kinds that paint every pixel with one opaque colour, compared without case, spaces,
# underscores or hyphens: the cmx_3600 reader's ``black`` (EDL reels BL/BLACK), FCP 7's ``Slug``,
# Premiere's "Black Video" and "Color Matte", and the usual names of a solid colour.
OPAQUE_SOLIDS = frozenset({"black", "blackvideo", "slug", "colormatte", "color", "solid", "solidcolor"})


class ShotError(ValueError):
    """The edit cannot be turned into shots (no such track, tracks that cannot be flattened, ...)."""


@dataclass(frozen=True)
class DirectionOverride:
    """Camera direction set in an edit's ``metadata["visage"]``; None = not set there.

    Attributes:
        yaw_deg: AmbiX yaw (positive left).
        pitch_deg: pitch (positive up).
        curve: a direction-curve file (JSON/CSV), as written in the edit (may be relative to it).
    """

    yaw_deg: float | None = None
    pitch_deg: float | None = None
    curve: str | None = None

    def under(self, parent: DirectionOverride) -> DirectionOverride:
        """This override with what it leaves unset taken from ``parent``."""
        return DirectionOverride(
            self.yaw_deg if self.yaw_deg is not None else parent.yaw_deg,
            self.pitch_deg if self.pitch_deg is not None else parent.pitch_deg,
            self.curve if self.curve is not None else parent.curve,
        )


@dataclass(frozen=True)
class MediaHint:
    """What an edit says about a shot's media, for `media_relink` to find the file.

    Attributes:
        kind: the reference's schema: ``external``, ``missing``, ``generator`` or ``image_sequence``.
        target: ``ExternalReference.target_url`` as written (a URL or a path), or None.
        names: file names or stems to look for, best first (target's base name, reference name,
            clip name, EDL reel), without duplicates.
        origin: media time of the file's first frame (the reference's ``available_range`` start),
            or None when the edit does not say (then the file's own start timecode decides).
    """

    kind: str
    target: str | None
    names: tuple[str, ...]
    origin: RationalTime | None


@dataclass(frozen=True)
class Shot:
    """One visible piece of a clip.

    Attributes:
        index: position in record order, from 0.
        name: the clip's name.
        track: the name of the chosen top-level track it is on.
        record: where it sits, in the timeline's rate (content coordinates of the chosen tracks).
        source_start: the media time shown at ``record.start_time`` (the clip's source time).
        speed: media time per record time (1 normal, 2 double speed, 0 freeze frame).
        media: where its media is said to be.
        direction: direction set in the edit's metadata.
        problem: why it cannot be generated (reverse playback, a time effect on a nested stack), or None.
        generator: True for generated pictures (colour, bars, titles): nothing to listen to, not a failure.
        hides: names of the clips an opaque solid generator hides here (they get no audio there).
    """

    index: int
    name: str
    track: str
    record: TimeRange
    source_start: RationalTime
    speed: float
    media: MediaHint
    direction: DirectionOverride
    problem: str | None = None
    generator: bool = False
    hides: tuple[str, ...] = ()

    @property
    def media_range(self) -> TimeRange:
        """The media the audio is generated from, in the clip's source time.

        ``record.duration * speed`` of media; a freeze frame's sound runs on from the held frame for the
        shot's whole duration.
        """
        rate = self.source_start.rate
        record = self.record.duration.rescaled_to(rate)
        duration = record if self.speed == 0 else RationalTime(record.value * abs(self.speed), rate)
        return TimeRange(self.source_start, duration)


@dataclass(frozen=True)
class ShotList:
    """The shots of the chosen tracks and the frame the new track must share with them.

    Attributes:
        shots: visible pieces in record order.
        rate: the timeline's frame rate.
        end: end of the chosen tracks' content; the new track is padded to it.
        source_range: the chosen tracks' ``source_range`` when all share one (records are then in their
            content time), else None (records are in the stack's time); the new track takes it.
        tracks: names of the chosen tracks, bottom first.
    """

    shots: tuple[Shot, ...]
    rate: float
    end: RationalTime
    source_range: TimeRange | None
    tracks: tuple[str, ...]


@dataclass(frozen=True)
class _Piece:
    """A visible piece before numbering, in the coordinates of the composition being walked."""

    clip: otio.schema.Clip
    record: TimeRange
    source_start: RationalTime
    speed: float
    direction: DirectionOverride
    problem: str | None
    overlay: bool = False  # a generator or a clip with alpha: shows only where nothing opaque does
    hides: tuple[str, ...] = ()  # clips hidden by this piece when it is an opaque solid generator

    def clipped(self, start: RationalTime, end: RationalTime) -> _Piece | None:
        """The part of this piece inside [start, end), or None when nothing is left."""
        lo = max(self.record.start_time, start)
        hi = min(self.record.end_time_exclusive(), end)
        if hi <= lo:
            return None
        return replace(self, record=TimeRange(lo, hi - lo), source_start=self.source_at(lo))

    def source_at(self, time: RationalTime) -> RationalTime:
        """The media time shown at record ``time``."""
        offset = (time - self.record.start_time).rescaled_to(self.source_start.rate)
        return self.source_start + _scaled(offset, self.speed)


def read_direction(metadata: Mapping[str, Any], where: str) -> DirectionOverride:
    """The direction in ``metadata["visage"]`` (``yaw``, ``pitch``, ``direction_curve``).

    Raises:
        ShotError: a value of the wrong type (``where`` names the item).
    """
    ours = metadata.get(NAMESPACE) if metadata else None
    if ours is None:
        return DirectionOverride()
    if not isinstance(ours, Mapping):
        raise ShotError(f'{where}: metadata["{NAMESPACE}"] must be a dictionary, got {type(ours).__name__}')

    def angle(key: str) -> float | None:
        value = ours.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ShotError(f'{where}: metadata["{NAMESPACE}"]["{key}"] must be a number, got {value!r}')
        return float(value)

    curve = ours.get("direction_curve")
    if curve is not None and (not isinstance(curve, str) or not curve):
        raise ShotError(f'{where}: metadata["{NAMESPACE}"]["direction_curve"] must be a file path')
    return DirectionOverride(angle("yaw"), angle("pitch"), curve)


def choose_video_tracks(timeline: otio.schema.Timeline, selectors: Sequence[str]) -> list[otio.schema.Track]:
    """The video tracks named by ``selectors`` (1-based numbers, V1 at the bottom, or names), bottom first.

    No selector means every enabled video track, as the viewer composites them (a disabled track shows
    nothing, so it must neither hide the tracks below nor get shots); a track named explicitly is used
    even when disabled.

    Raises:
        ShotError: no video track, or a selector that matches none or several.
    """
    tracks = list(timeline.video_tracks())
    if not tracks:
        raise ShotError("the edit has no video track")
    if not selectors:
        enabled = [t for t in tracks if t.enabled]
        if not enabled:
            raise ShotError("every video track of the edit is disabled; choose one with --video-track")
        return enabled
    chosen: list[otio.schema.Track] = []
    for selector in selectors:
        if selector.isdigit():
            number = int(selector)
            if not 1 <= number <= len(tracks):
                raise ShotError(f"--video-track {selector}: the edit has video tracks 1 to {len(tracks)}")
            match = [tracks[number - 1]]
        else:
            match = [t for t in tracks if t.name == selector] or [
                t for t in tracks if t.name.casefold() == selector.casefold()
            ]
        names = ", ".join(repr(t.name) for t in tracks)
        if not match:
            raise ShotError(f"--video-track {selector!r}: no such video track (there are: {names})")
        if len(match) > 1:
            raise ShotError(f"--video-track {selector!r}: several video tracks have that name; use a number")
        if match[0] not in chosen:
            chosen.append(match[0])
    return [t for t in tracks if t in chosen]


def list_shots(tracks: Sequence[otio.schema.Track], *, rate: float | None = None) -> ShotList:
    """The visible shots of ``tracks`` (bottom first), flattened top layer first.

    Args:
        tracks: chosen top-level video tracks (see `choose_video_tracks`).
        rate: the timeline's rate; default the rate of the first track's duration.

    Raises:
        ShotError: an item whose duration OTIO cannot compute (a clip with neither ``source_range`` nor
            an ``available_range``), or bad ``metadata["visage"]``.
    """
    if not tracks:
        raise ShotError("no video track chosen")
    shared = len({_range_key(t.source_range) for t in tracks}) == 1
    try:
        # An empty track's duration has rate 1: whole seconds would swallow every cut.
        durations = [t.duration() for t in tracks]
        rate = float(rate or next((d.rate for d in durations if d.value > 0), durations[0].rate))
        layers = []
        for track in tracks:
            window = _window(track)
            # Shared trims: records in the tracks' content time. Otherwise the stack's time, where a
            # track's content time t shows at t - its trimmed start (Stack.range_of_child starts at 0).
            start = window.start_time if shared else window.start_time - track.trimmed_range().start_time
            placed = TimeRange(start, window.duration)
            layers.append([(piece, track.name) for piece in _item_pieces(track, placed, DirectionOverride())])
        if shared:
            end = max(t.available_range().end_time_exclusive().rescaled_to(rate) for t in tracks)
        else:
            end = max(
                (_window(t).end_time_exclusive() - t.trimmed_range().start_time).rescaled_to(rate)
                for t in tracks
            )
    except otio.exceptions.OTIOError as exc:  # not a ValueError: callers would see a traceback
        raise ShotError(f"cannot lay out the video tracks: {exc}") from exc
    visible = _flatten(layers)
    visible.sort(key=lambda item: item[0].record.start_time.to_seconds())
    numbered = (_shot(0, piece, track, rate) for piece, track in visible)
    shots = tuple(
        replace(shot, index=i, name=shot.name or f"shot {i + 1}")
        for i, shot in enumerate(s for s in numbered if s is not None)
    )
    source_range = tracks[0].source_range if shared else None
    return ShotList(shots, rate, end, source_range, tuple(t.name for t in tracks))


def media_hint(clip: otio.schema.Clip) -> MediaHint:
    """What ``clip`` says about its media (see `MediaHint`)."""
    ref = clip.media_reference
    kind = {
        otio.schema.ExternalReference: "external",
        otio.schema.GeneratorReference: "generator",
        otio.schema.ImageSequenceReference: "image_sequence",
    }.get(type(ref), "missing")
    target = getattr(ref, "target_url", None) or None
    names: list[str] = []
    if target:
        names.append(_base_name(otio.url_utils.filepath_from_url(target) if "://" in target else target))
    cmx = clip.metadata.get("cmx_3600") if clip.metadata else None
    reel = cmx.get("reel") if isinstance(cmx, Mapping) else None
    for name in (ref.name if ref is not None else None, clip.name, reel):
        if isinstance(name, str) and name.strip() and name.strip() not in names:
            names.append(name.strip())
    available = ref.available_range if ref is not None else None
    return MediaHint(kind, target, tuple(names), available.start_time if available is not None else None)


def is_from_resolve(timeline: otio.schema.Timeline) -> bool:
    """True when DaVinci Resolve wrote the edit (its ``Resolve_OTIO`` metadata is present)."""
    if RESOLVE_NAMESPACE in (timeline.metadata or {}):
        return True
    return any(RESOLVE_NAMESPACE in (t.metadata or {}) for t in timeline.tracks)


# -- walking compositions ---------------------------------------------------------------------------


def _inherited(item: otio.core.Item, parent: DirectionOverride | None = None) -> DirectionOverride:
    own = read_direction(item.metadata, _describe(item))
    return own if parent is None else own.under(parent)


def _window(item: otio.core.Item) -> TimeRange:
    """The part of its own time an item shows: its ``trimmed_range``, except a track of the cmx_3600
    reader's shape (see the module docstring), which shows its content."""
    window = item.trimmed_range()
    if isinstance(item, otio.schema.Track) and item.source_range is not None:
        content = item.available_range()
        if (
            window.start_time.value < 0
            and window.duration == content.duration
            and window.end_time_exclusive() <= content.start_time
        ):
            return content
    return window


def _track_pieces(track: otio.schema.Track, direction: DirectionOverride) -> list[_Piece]:
    """Visible pieces of a track's children, in the track's content coordinates."""
    pieces: list[_Piece] = []
    for child in track:
        if isinstance(child, (otio.schema.Transition, otio.schema.Gap)) or not child.enabled:
            continue
        pieces.extend(_item_pieces(child, track.range_of_child(child), direction))
    return pieces


def _stack_pieces(stack: otio.schema.Stack, direction: DirectionOverride) -> list[_Piece]:
    """Visible pieces of a stack: its children are layers, the last one on top."""
    layers = [
        [(piece, "") for piece in _item_pieces(child, stack.range_of_child(child), direction)]
        for child in stack
        if child.enabled and not isinstance(child, (otio.schema.Gap, otio.schema.Transition))
    ]
    return [piece for piece, _ in _flatten(layers)]


def _item_pieces(item: otio.core.Item, placed: TimeRange, parent: DirectionOverride) -> list[_Piece]:
    """Pieces of one item that sits at ``placed`` in its parent's coordinates."""
    direction = _inherited(item, parent)
    speed, problem = _speed(item)
    if isinstance(item, otio.schema.Clip):
        trimmed = item.trimmed_range()
        return [
            _Piece(item, placed, trimmed.start_time, speed, direction, problem, overlay=_is_overlay(item))
        ]
    if isinstance(item, otio.schema.Track):
        inner = _track_pieces(item, direction)
    elif isinstance(item, otio.schema.Stack):
        inner = _stack_pieces(item, direction)
    else:  # an unknown composable: nothing we can listen to
        return []
    window = _window(item)
    if speed == 0:  # a held frame: whatever the content shows at the window's start, all along
        held = window.start_time
        return [
            replace(piece, record=placed, source_start=piece.source_at(held), speed=0.0, problem=problem)
            for piece in inner
            if piece.record.contains(held)
        ]
    if speed < 0:
        problem = problem or "reverse playback is not supported"
        speed = 1.0
    # The composition plays its content from the window's start at ``speed``.
    content_end = window.start_time + _scaled(window.duration, speed)
    result = []
    for piece in inner:
        kept = piece.clipped(window.start_time, content_end)
        if kept is not None:
            start = placed.start_time + _scaled(kept.record.start_time - window.start_time, 1 / speed)
            record = TimeRange(start, _scaled(kept.record.duration, 1 / speed))
            result.append(
                replace(kept, record=record, speed=kept.speed * speed, problem=kept.problem or problem)
            )
    return result


def _flatten(layers: Sequence[Sequence[tuple[_Piece, str]]]) -> list[tuple[_Piece, str]]:
    """Composite layers (bottom first) as a viewer does.

    The top opaque piece wins; an overlay shows only where no layer is opaque, the top overlay winning.
    A visible opaque solid generator names the pictures it hides (what would show without it).
    """
    visible = _top_opaque(layers)
    covered = [piece.record for layer in layers for piece, _ in layer if not piece.overlay]
    for level in reversed(range(len(layers))):
        overlays = [(piece, track) for piece, track in layers[level] if piece.overlay]
        for piece, track in overlays:
            visible.extend((part, track, level) for part in _subtract(piece, covered))
        covered.extend(piece.record for piece, _ in overlays)
    result = []
    for piece, track, level in visible:
        if not piece.overlay and _is_generator(piece.clip):
            below = _top_opaque(layers[:level])
            hidden = [
                p.clip.name
                for p, _, _ in below
                if not _is_generator(p.clip) and _overlaps(p.record, piece.record)
            ]
            piece = replace(piece, hides=tuple(dict.fromkeys((*piece.hides, *hidden))))
        result.append((piece, track))
    return result


def _top_opaque(layers: Sequence[Sequence[tuple[_Piece, str]]]) -> list[tuple[_Piece, str, int]]:
    """The visible parts of the opaque pieces of ``layers`` (bottom first), with their layer index."""
    visible: list[tuple[_Piece, str, int]] = []
    covered: list[TimeRange] = []
    for level in reversed(range(len(layers))):
        opaque = [(piece, track) for piece, track in layers[level] if not piece.overlay]
        for piece, track in opaque:
            visible.extend((part, track, level) for part in _subtract(piece, covered))
        covered.extend(piece.record for piece, _ in opaque)
    return visible


def _subtract(piece: _Piece, covered: Iterable[TimeRange]) -> list[_Piece]:
    parts = [piece]
    for cover in covered:
        next_parts = []
        for part in parts:
            if not _overlaps(part.record, cover):
                next_parts.append(part)
                continue
            start, end = part.record.start_time, part.record.end_time_exclusive()
            for lo, hi in ((start, cover.start_time), (cover.end_time_exclusive(), end)):
                kept = part.clipped(lo, hi) if lo < hi else None
                if kept is not None:
                    next_parts.append(kept)
        parts = next_parts
    return parts


def _overlaps(a: TimeRange, b: TimeRange) -> bool:
    return a.start_time < b.end_time_exclusive() and b.start_time < a.end_time_exclusive()


def _is_generator(clip: otio.schema.Clip) -> bool:
    return isinstance(clip.media_reference, otio.schema.GeneratorReference)


def _is_overlay(clip: otio.schema.Clip) -> bool:
    """Clips marked as having alpha, and generators other than opaque solids, let what is below show."""
    if _has_alpha(clip):
        return True
    if not _is_generator(clip):
        return False
    kind = re.sub(r"[\s_-]+", "", clip.media_reference.generator_kind or "").casefold()
    return kind not in OPAQUE_SOLIDS


def _has_alpha(clip: otio.schema.Clip) -> bool:
    """FCP 7 XML's ``alphatype`` (none, straight, black, white) or our ``metadata["visage"]["alpha"]``."""
    fcp = clip.metadata.get(FCP_NAMESPACE)
    alphatype = fcp.get("alphatype") if isinstance(fcp, Mapping) else None
    if isinstance(alphatype, str) and alphatype.strip().casefold() not in ("", "none"):
        return True
    ours = clip.metadata.get(NAMESPACE)
    return isinstance(ours, Mapping) and ours.get("alpha") is True


def _shot(index: int, piece: _Piece, track: str, rate: float) -> Shot | None:
    """Number a piece; its edges go to the frame whose centre they precede (only retimed nesting makes
    them fractional), so a frame belongs to the piece seen at its centre; None when nothing is left."""
    start = RationalTime(_frame_edge(piece.record.start_time.value_rescaled_to(rate)), rate)
    end = RationalTime(_frame_edge(piece.record.end_time_exclusive().value_rescaled_to(rate)), rate)
    if end <= start:
        return None
    hint = media_hint(piece.clip)
    problem = piece.problem
    if problem is None and piece.speed < 0:
        problem = "reverse playback is not supported"
    return Shot(
        index=index,
        name=piece.clip.name,  # unnamed clips are named by `list_shots` once numbered
        track=track,
        record=TimeRange(start, end - start),
        source_start=piece.source_at(start),
        speed=piece.speed,
        media=hint,
        direction=piece.direction,
        problem=problem,
        generator=hint.kind == "generator",
        hides=piece.hides,
    )


def _frame_edge(value: float) -> int:
    """The first frame whose centre lies at or after ``value`` (in frames)."""
    return math.ceil(value - 0.5 - 1e-9)


def _speed(item: otio.core.Item) -> tuple[float, str | None]:
    """Product of the item's linear time warps (a freeze frame is 0)."""
    speed = 1.0
    for effect in item.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):  # FreezeFrame is one, with scalar 0
            speed *= float(effect.time_scalar)
        elif isinstance(effect, otio.schema.TimeEffect):
            return speed, f"time effect {effect.effect_name or type(effect).__name__!r} is not supported"
    return speed, None


def _scaled(duration: RationalTime, speed: float) -> RationalTime:
    return RationalTime(duration.value * speed, duration.rate)


def _range_key(source_range: TimeRange | None) -> tuple[float, float] | None:
    if source_range is None:
        return None
    return (source_range.start_time.to_seconds(), source_range.duration.to_seconds())


def _base_name(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _describe(item: otio.core.Item) -> str:
    return f"{type(item).__name__} {item.name!r}"
