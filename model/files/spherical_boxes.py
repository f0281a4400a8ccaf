"""The spherical-video boxes of an MP4/MOV video track: find them in ``moov``, read them, put them in another.

Why: ``visage mux`` copies the picture packet for packet, but the muxer drops the boxes that make it
360° (FFmpeg writes ``sv3d``/``st3d`` only with ``-strict unofficial`` and never the V1 ``uuid``
box). Copying the source's boxes byte for byte into the output's video track keeps exactly what the
camera or the stitcher wrote, including what this project does not interpret (cubemap, mesh, stereo).

Where they live: ``st3d`` and ``sv3d`` in the first video track's sample entry (``avc1``, ``hvc1``,
``vp09``, ...), after the codec's boxes and before ``clap``/``pasp`` (the V2 RFC); the V1 ``uuid`` box
directly in the video ``trak``. Pure: bytes in, bytes out.
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
    track_sample_entries,
    visual_entry_children_start,
)
from .spherical_metadata import SphericalVideo, SphericalVideoError
from .spherical_xml import SPHERICAL_UUID, parse_spherical_xml
from .sv3d import parse_st3d, parse_sv3d

_OPTIONAL_TAIL = (b"clap", b"pasp")  # the V2 boxes go before these


@dataclass(frozen=True)
class SphericalBoxes:
    """The spherical-video boxes of a video track, as complete boxes (empty bytes where absent).

    Attributes:
        st3d: the stereo box, in the sample entry.
        sv3d: the V2 spherical box, in the sample entry.
        uuid: the V1 XML box, in the ``trak``.
    """

    st3d: bytes = b""
    sv3d: bytes = b""
    uuid: bytes = b""

    def __bool__(self) -> bool:
        return bool(self.st3d or self.sv3d or self.uuid)


def find_spherical_boxes(moov: bytes) -> SphericalBoxes:
    """The spherical boxes of the first video track's first sample entry (all empty without a video track).

    Raises:
        SphericalVideoError: a malformed box tree.
    """
    try:
        entries = track_sample_entries(moov, b"vide")
        if not entries:
            return SphericalBoxes()
        ancestors, entry = entries[0]
        trak = ancestors[1]
        in_entry = {b.type: b for b in iter_boxes(moov, visual_entry_children_start(entry), entry.end)}
        uuid = next(
            (
                b
                for b in iter_boxes(moov, trak.payload_start, trak.end)
                if b.type == b"uuid"
                and b.size - b.header_size >= 16
                and moov[b.payload_start : b.payload_start + 16] == SPHERICAL_UUID
            ),
            None,
        )
    except BoxError as exc:
        raise SphericalVideoError(f"cannot read the video track's boxes: {exc}") from None
    return SphericalBoxes(
        st3d=_bytes_of(moov, in_entry.get(b"st3d")),
        sv3d=_bytes_of(moov, in_entry.get(b"sv3d")),
        uuid=_bytes_of(moov, uuid),
    )


def read_moov_spherical(moov: bytes) -> SphericalVideo | None:
    """The spherical metadata of ``moov``'s first video track: V2 ``sv3d`` first, else V1 ``uuid``, else None.

    ``st3d`` alone marks flat 3-D video, not 360°: read as None.

    Raises:
        SphericalVideoError: malformed boxes, or metadata the RFCs do not define.
    """
    boxes = find_spherical_boxes(moov)
    if boxes.sv3d:
        return parse_sv3d(boxes.sv3d, parse_st3d(boxes.st3d) if boxes.st3d else "mono")
    if boxes.uuid:
        width, height = _frame_size(moov)
        return parse_spherical_xml(boxes.uuid[_uuid_payload_start(boxes.uuid) :], width, height)
    return None


def insert_spherical_boxes(moov: bytes, boxes: SphericalBoxes, moov_offset: int) -> bytes:
    """Add ``boxes`` to the first video track of ``moov``, skipping any kind it already has.

    ``st3d`` then ``sv3d`` go into the sample entry before its ``clap``/``pasp`` boxes (at its end
    without them), ``uuid`` at the end of the ``trak``. Chunk offsets at or past ``moov_offset``
    move by the bytes added (see ``insert_sa3d``).

    Raises:
        SphericalVideoError: no video track, or a malformed box tree.
    """
    try:
        entries = track_sample_entries(moov, b"vide")
        if not entries:
            raise SphericalVideoError("the file has no video track to carry the spherical metadata")
        present = find_spherical_boxes(moov)
        ancestors, entry = entries[0]
        in_entry = list(iter_boxes(moov, visual_entry_children_start(entry), entry.end))
        position = next((b.start for b in in_entry if b.type in _OPTIONAL_TAIL), entry.end)
        added_to_entry = (b"" if present.st3d else boxes.st3d) + (b"" if present.sv3d else boxes.sv3d)
        added_to_trak = b"" if present.uuid else boxes.uuid
        if added_to_entry:
            moov = insert_bytes(moov, [*ancestors, entry], position, added_to_entry)
        if added_to_trak:  # found again: the entry's growth moved the trak's end and sizes
            moov_box, trak = track_sample_entries(moov, b"vide")[0][0][:2]
            moov = insert_bytes(moov, [moov_box, trak], trak.end, added_to_trak)
        return shift_chunk_offsets(moov, len(added_to_entry) + len(added_to_trak), moov_offset)
    except BoxError as exc:
        raise SphericalVideoError(f"cannot add spherical boxes to the video track: {exc}") from None


def _bytes_of(data: bytes, box: Box | None) -> bytes:
    return b"" if box is None else data[box.start : box.end]


def _uuid_payload_start(box: bytes) -> int:
    (size,) = struct.unpack_from(">I", box)
    return (16 if size == 1 else 8) + 16


def _frame_size(moov: bytes) -> tuple[int, int]:
    """Width and height of the first video sample entry (payload bytes 24-27, u16 each)."""
    _, entry = track_sample_entries(moov, b"vide")[0]
    return struct.unpack_from(">HH", moov, entry.payload_start + 24)
