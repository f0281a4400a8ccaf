"""The spatial audio box ``SA3D`` (Google's Spatial Audio RFC): build it, parse it, put it in ``moov``.

Why: YouTube and VR players treat a 4-channel track as spatial only when its sample entry carries
this box; without it they play the file as quad (``hosts_and_formats.md`` §6.2).

Layout (big-endian, inside the sound sample entry, after its own child boxes)::

    u8  version                 0
    u8  head_locked_stereo << 7 | ambisonic_type (0 = periphonic)
    u32 ambisonic_order         1 for first order
    u8  ambisonic_channel_ordering   0 = ACN
    u8  ambisonic_normalization      0 = SN3D
    u32 num_channels            4, or 6 with head-locked stereo
    u32 channel_map[num_channels]    track channel i holds ACN component channel_map[i];
                                     the head-locked pair is numbered after the ambisonic components

The head-locked bit and the 6-channel layout (W, Y, Z, X, L, R with map 0..5) follow FFmpeg's
``mov_write_SA3D_tag`` and YouTube's upload rules; the RFC's syntax block shows that byte as the
ambisonic type alone. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .mp4_boxes import (
    Box,
    BoxError,
    insert_bytes,
    iter_boxes,
    shift_chunk_offsets,
    sound_entry_children_start,
    sound_sample_entries,
)

BOX_TYPE = b"SA3D"
_FIXED = struct.Struct(">BBIBBI")  # version, type byte, order, ordering, normalization, num_channels


class SpatialAudioError(ValueError):
    """An SA3D box that is malformed, or a file it cannot be put in."""


@dataclass(frozen=True, kw_only=True)
class SpatialAudio:
    """The fields of an SA3D box.

    Attributes:
        ambisonic_order: 1 for first order ((order + 1)² ambisonic channels).
        head_locked_stereo: two extra, non-rotating channels (L, R) follow the ambisonic ones.
        channel_map: ACN component held by each track channel (the stereo pair after them).
        ambisonic_type: 0 = periphonic (full 3-D), the only type the RFC defines.
        channel_ordering: 0 = ACN.
        normalization: 0 = SN3D.
        version: 0.
    """

    ambisonic_order: int = 1
    head_locked_stereo: bool = False
    channel_map: tuple[int, ...] = (0, 1, 2, 3)
    ambisonic_type: int = 0
    channel_ordering: int = 0
    normalization: int = 0
    version: int = 0

    @property
    def num_channels(self) -> int:
        """Channels of the audio track."""
        return len(self.channel_map)


def ambix_foa(head_locked_stereo: bool = False) -> SpatialAudio:
    """The metadata of this project's tracks: AmbiX FOA (W, Y, Z, X), optionally + head-locked L, R."""
    return SpatialAudio(
        head_locked_stereo=head_locked_stereo, channel_map=tuple(range(6 if head_locked_stereo else 4))
    )


def build_sa3d(spatial: SpatialAudio) -> bytes:
    """The complete SA3D box (header included).

    Raises:
        SpatialAudioError: a channel count that does not fit the order and the head-locked flag.
    """
    expected = (spatial.ambisonic_order + 1) ** 2 + (2 if spatial.head_locked_stereo else 0)
    if spatial.num_channels != expected:
        raise SpatialAudioError(
            f"order {spatial.ambisonic_order}{' + head-locked stereo' if spatial.head_locked_stereo else ''} "
            f"needs {expected} channels, the channel map has {spatial.num_channels}"
        )
    if not 0 <= spatial.ambisonic_type < 128:
        raise SpatialAudioError(f"ambisonic_type must fit in 7 bits, got {spatial.ambisonic_type}")
    type_byte = (0x80 if spatial.head_locked_stereo else 0) | spatial.ambisonic_type
    payload = _FIXED.pack(
        spatial.version,
        type_byte,
        spatial.ambisonic_order,
        spatial.channel_ordering,
        spatial.normalization,
        spatial.num_channels,
    ) + struct.pack(f">{spatial.num_channels}I", *spatial.channel_map)
    return struct.pack(">I4s", 8 + len(payload), BOX_TYPE) + payload


def parse_sa3d(box: bytes) -> SpatialAudio:
    """Read an SA3D box (header included); the inverse of ``build_sa3d``.

    Raises:
        SpatialAudioError: not an SA3D box, a wrong size, or an unknown version.
    """
    try:
        (found,) = list(iter_boxes(box))
    except ValueError as exc:  # BoxError, or not exactly one box
        raise SpatialAudioError(f"not a single well-formed box: {exc}") from None
    if found.type != BOX_TYPE:
        raise SpatialAudioError(f"expected an SA3D box, got {found.type!r}")
    payload = box[found.payload_start : found.end]
    if len(payload) < _FIXED.size:
        raise SpatialAudioError(f"SA3D payload of {len(payload)} bytes is shorter than its fixed fields")
    version, type_byte, order, ordering, normalization, count = _FIXED.unpack_from(payload)
    if version != 0:
        raise SpatialAudioError(f"unknown SA3D version {version}")
    if len(payload) != _FIXED.size + 4 * count:
        raise SpatialAudioError(
            f"SA3D declares {count} channels but holds {(len(payload) - _FIXED.size) / 4}"
        )
    return SpatialAudio(
        ambisonic_order=order,
        head_locked_stereo=bool(type_byte & 0x80),
        channel_map=struct.unpack_from(f">{count}I", payload, _FIXED.size),
        ambisonic_type=type_byte & 0x7F,
        channel_ordering=ordering,
        normalization=normalization,
        version=version,
    )


def insert_sa3d(moov: bytes, spatial: SpatialAudio, moov_offset: int) -> bytes:
    """Add an SA3D box to every sound sample entry of ``moov``.

    Media data after ``moov`` in the file (``faststart`` files) moves by the bytes added, so chunk
    offsets at or past ``moov_offset`` are shifted; data before ``moov`` keeps its offsets.

    Args:
        moov: the bytes of the ``moov`` box.
        spatial: what to write.
        moov_offset: file offset of ``moov``.

    Returns:
        The new ``moov``.

    Raises:
        SpatialAudioError: no audio track, an entry that already has SA3D, or a channel count that
            differs from the track's.
    """
    box = build_sa3d(spatial)
    try:
        entries = sound_sample_entries(moov)
    except BoxError as exc:
        raise SpatialAudioError(f"cannot read the file's track boxes: {exc}") from None
    if not entries:
        raise SpatialAudioError("the file has no audio track with a PCM, AAC or Opus sample entry")
    for _, entry in entries:
        first_child = sound_entry_children_start(moov, entry)
        if any(child.type == BOX_TYPE for child in iter_boxes(moov, first_child, entry.end)):
            raise SpatialAudioError("the audio track already carries an SA3D box")
        channels = _entry_channel_count(moov, entry)
        if channels is not None and channels != spatial.num_channels:
            raise SpatialAudioError(
                f"the audio track has {channels} channels, the SA3D box describes {spatial.num_channels}"
            )
    added = 0
    # Insert from the last entry backwards so earlier offsets stay valid.
    for ancestors, entry in reversed(entries):
        moov = insert_bytes(moov, [*ancestors, entry], entry.end, box)
        added += len(box)
    return shift_chunk_offsets(moov, added, moov_offset)


def read_sa3d(moov: bytes) -> list[SpatialAudio | None]:
    """The SA3D content of each sound sample entry in ``moov`` (None where an entry has none)."""
    found: list[SpatialAudio | None] = []
    for _, entry in sound_sample_entries(moov):
        boxes = iter_boxes(moov, sound_entry_children_start(moov, entry), entry.end)
        sa3d = next((b for b in boxes if b.type == BOX_TYPE), None)
        found.append(None if sa3d is None else parse_sa3d(moov[sa3d.start : sa3d.end]))
    return found


def _entry_channel_count(data: bytes, entry: Box) -> int | None:
    """Channels a sound sample entry declares (None where the entry leaves it to its codec box).

    Version 2 QuickTime entries hold the count at byte 40 of the payload (u32); others at byte 16
    (u16), which for Opus and AAC in MP4 is the real count too.
    """
    (version,) = struct.unpack_from(">H", data, entry.payload_start + 8)
    if version == 2:
        (count,) = struct.unpack_from(">I", data, entry.payload_start + 40)
    else:
        (count,) = struct.unpack_from(">H", data, entry.payload_start + 16)
    return count or None
