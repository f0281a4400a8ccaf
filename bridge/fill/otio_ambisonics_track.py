"""The new audio track of a filled edit: one AmbiX clip under every generated shot, gaps elsewhere.

Pure: shot results in, an ``opentimelineio`` ``Track`` out. Each clip sits at exactly its shot's record
range (same rate, same values), its media reference points at the generated WAV with an
``available_range`` covering the whole file, and a shot played at another speed carries the same
``LinearTimeWarp`` so picture and sound stay in step. The track takes the chosen video tracks'
``source_range`` and is padded with a gap to their end, so both share one time frame.

Metadata goes under ``metadata["visage"]`` on the track and on every clip: the channel layout (AmbiX:
ACN order W, Y, Z, X, SN3D, first order, 4 channels), the model, direction, guidance and seed, and the
shot it was made for. For an edit that came from DaVinci Resolve the shapes Resolve's importer needs are
added (hosts_and_formats §2.5): bare file paths instead of ``file://`` URLs and ``Resolve_OTIO`` track
and clip metadata with four source channels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from .otio_shots import NAMESPACE, RESOLVE_NAMESPACE, Shot, ShotList

TRACK_NAME = "Ambisonics (AmbiX)"
SCHEMA = 1
LAYOUT: Mapping[str, Any] = {
    "format": "AmbiX",
    "order": 1,
    "channels": 4,
    "ordering": "ACN",
    "normalization": "SN3D",
    "channel_names": ["W", "Y", "Z", "X"],
}


@dataclass(frozen=True)
class FilledShot:
    """A shot whose audio was generated.

    Attributes:
        shot: the shot.
        wav: the generated AmbiX file (absolute).
        media: the video file it was generated from.
        media_start_s: media seconds of the first generated sample.
        media_end_s: media seconds of the end.
        direction: ``{"yaw": deg, "pitch": deg}`` or ``{"curve": path}``.
        seed: sampling seed.
        key: the shot's content key (`fill_manifest.shot_key`).
    """

    shot: Shot
    wav: Path
    media: Path
    media_start_s: float
    media_end_s: float
    direction: Mapping[str, Any]
    seed: int
    key: str


@dataclass(frozen=True)
class Provenance:
    """What made the audio, recorded on the track and on every clip."""

    model: str
    guidance_mode: str
    guidance_scale: float
    sample_rate: int
    generator: str = "visage fill"


def build_ambisonics_track(
    shots: ShotList, filled: Sequence[FilledShot], provenance: Provenance, *, resolve: bool = False
) -> otio.schema.Track:
    """The "Ambisonics (AmbiX)" audio track for ``filled`` shots of ``shots``.

    Args:
        shots: every shot of the chosen tracks (for the time frame: rate, end, ``source_range``).
        filled: the shots that have audio, any order; a shot missing here gets a gap.
        provenance: model and options, recorded in metadata.
        resolve: add the shapes DaVinci Resolve's importer needs.
    """
    rate = shots.rate
    track = otio.schema.Track(name=TRACK_NAME, kind=otio.schema.TrackKind.Audio)
    track.source_range = shots.source_range
    track.metadata[NAMESPACE] = {
        "schema": SCHEMA,
        "role": "ambisonics",
        "layout": dict(LAYOUT),
        **_provenance(provenance),
        "video_tracks": list(shots.tracks),
    }
    if resolve:
        track.metadata[RESOLVE_NAMESPACE] = {"Locked": False, "SoloOn": False}
    cursor = RationalTime(0, rate)
    for item in sorted(filled, key=lambda f: f.shot.record.start_time.to_seconds()):
        record = item.shot.record
        if record.duration.value <= 0:
            continue
        if record.start_time > cursor:
            track.append(otio.schema.Gap(duration=record.start_time - cursor))
        track.append(_clip(item, provenance, rate, resolve=resolve))
        cursor = record.end_time_exclusive()
    if shots.end > cursor:
        track.append(otio.schema.Gap(duration=shots.end - cursor))
    return track


def is_ambisonics_track(track: otio.schema.Track, made_by_fill: Callable[[Path], bool] | None = None) -> bool:
    """True for a track this module made (an earlier fill of the same edit).

    Known by our metadata or name, or, after a format that keeps neither (FCP 7 XML drops both), by its
    media: an audio track whose every clip plays a file for which ``made_by_fill`` is true.
    """
    ours = track.metadata.get(NAMESPACE) if track.metadata else None
    if isinstance(ours, Mapping) and ours.get("role") == "ambisonics":
        return True
    if track.kind != otio.schema.TrackKind.Audio:
        return False
    if track.name == TRACK_NAME:
        return True
    clips = list(track.find_clips(shallow_search=True))
    if made_by_fill is None or not clips:
        return False
    files = [_local_file(clip.media_reference) for clip in clips]
    return all(path is not None and made_by_fill(path) for path in files)


def _local_file(reference: otio.core.MediaReference | None) -> Path | None:
    """The local file an external reference names (a ``file:`` URL, or a bare path as Resolve writes)."""
    url = getattr(reference, "target_url", None)
    if not url:
        return None
    if url.startswith("file:"):
        return Path(otio.url_utils.filepath_from_url(url))
    return None if "://" in url else Path(url)


def _clip(item: FilledShot, provenance: Provenance, rate: float, *, resolve: bool) -> otio.schema.Clip:
    shot = item.shot
    duration = shot.record.duration
    # The file holds the shot's media range: record duration x speed (a freeze frame: record duration).
    speed = shot.speed if shot.speed > 0 else 1.0
    file_length = RationalTime(duration.value * speed, rate)
    reference = otio.schema.ExternalReference(
        target_url=item.wav.as_posix() if resolve else otio.url_utils.url_from_filepath(str(item.wav)),
        available_range=TimeRange(RationalTime(0, rate), file_length),
    )
    reference.name = item.wav.name
    clip = otio.schema.Clip(
        name=f"{shot.name} (AmbiX)",
        media_reference=reference,
        source_range=TimeRange(RationalTime(0, rate), duration),
    )
    if shot.speed not in (0, 1):
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=shot.speed))
    clip.metadata[NAMESPACE] = {
        "schema": SCHEMA,
        "layout": dict(LAYOUT),
        **_provenance(provenance),
        "direction": dict(item.direction),
        "seed": item.seed,
        "source": {
            "clip": shot.name,
            "track": shot.track,
            "media": str(item.media),
            "start_s": item.media_start_s,
            "end_s": item.media_end_s,
        },
        "key": item.key,
    }
    if resolve:
        channels = [{"Source Channel ID": c, "Source Track ID": 0} for c in range(LAYOUT["channels"])]
        clip.metadata[RESOLVE_NAMESPACE] = {"Channels": channels}
    return clip


def _provenance(provenance: Provenance) -> dict[str, Any]:
    return {
        "model": provenance.model,
        "guidance": {"mode": provenance.guidance_mode, "scale": provenance.guidance_scale},
        "sample_rate": provenance.sample_rate,
        "generator": provenance.generator,
    }
