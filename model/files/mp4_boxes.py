"""The ISO-BMFF / QuickTime box tree (MP4, MOV): find boxes, insert bytes into one, fix what moves.

Why: the spatial-audio box (``SA3D``) lives inside the audio track's sample entry, five levels down
in ``moov``, and no muxer this project can rely on writes it for MOV; the spherical-video boxes
(``st3d``, ``sv3d``) sit in the video track's sample entry and the muxer drops them. Adding bytes there means
growing every enclosing box and, when ``moov`` comes before the media data (``faststart`` files),
moving every chunk offset in ``stco``/``co64`` by as much. These functions do that on the bytes of
``moov`` alone; the media data is never parsed.

Box layout (ISO/IEC 14496-12 §4.2): ``<u32 size> <4-char type>``, where size 1 means a ``u64``
size follows and size 0 means "to the end of the enclosing space"; all integers big-endian.
Pure: bytes in, bytes out (``top_level_boxes`` alone reads headers from an open file).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from typing import BinaryIO, NamedTuple

# Boxes whose payload is only child boxes (those on the way to sample entries and chunk offsets).
CONTAINER_TYPES = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta"})

# Sound sample entries: QuickTime/ISO PCM, AAC and Opus (the ones the spatial-media injector knows).
SOUND_ENTRY_TYPES = frozenset(
    {b"mp4a", b"Opus", b"lpcm", b"sowt", b"twos", b"in24", b"in32", b"fl32", b"fl64", b"raw ", b"NONE"}
)

_SOUND_ENTRY_FIELDS = {0: 28, 1: 44, 2: 64}  # bytes before child boxes, by sound description version
_VISUAL_ENTRY_FIELDS = 78  # ISO/IEC 14496-12 §12.1.3, the same in QuickTime
_U32_MAX = 0xFFFFFFFF


class BoxError(ValueError):
    """Bytes that are not a well-formed box tree, or an edit the tree cannot take."""


class Box(NamedTuple):
    """A box found in a byte buffer (offsets into that buffer)."""

    type: bytes
    start: int  # first byte of the header
    header_size: int  # 8, or 16 with a 64-bit size
    size: int  # header + payload

    @property
    def payload_start(self) -> int:
        """Offset of the first byte after the header."""
        return self.start + self.header_size

    @property
    def end(self) -> int:
        """Offset just past the box."""
        return self.start + self.size


def read_box_header(header: bytes, position: int, end: int) -> Box:
    """The box whose header starts ``header`` (at least 16 bytes, or all that is left before ``end``).

    Args:
        header: the bytes from ``position`` on.
        position: offset of the box in its buffer or file.
        end: offset where the enclosing space ends (a size of 0 extends the box to it).

    Raises:
        BoxError: a header that is cut off or a size that overruns ``end``.
    """
    if len(header) < 8 or end - position < 8:
        raise BoxError(f"truncated box header at offset {position}")
    size, box_type = struct.unpack_from(">I4s", header)
    header_size = 8
    if size == 1:
        if len(header) < 16 or end - position < 16:
            raise BoxError(f"truncated 64-bit box size at offset {position}")
        (size,) = struct.unpack_from(">Q", header, 8)
        header_size = 16
    elif size == 0:
        size = end - position
    if size < header_size or position + size > end:
        raise BoxError(f"box {box_type!r} at offset {position} has size {size}, which overruns its space")
    return Box(box_type, position, header_size, size)


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in ``data[start:end]``.

    Raises:
        BoxError: a header that is cut off or a size that overruns ``end``.
    """
    end = len(data) if end is None else end
    position = start
    while position < end:
        box = read_box_header(data[position : min(position + 16, end)], position, end)
        yield box
        position = box.end


def top_level_boxes(f: BinaryIO) -> Iterator[Box]:
    """The top-level boxes of an open file, read header by header (media data is never loaded).

    Raises:
        BoxError: a header that is cut off or a size that overruns the file.
    """
    end = f.seek(0, os.SEEK_END)
    position = 0
    while position < end:
        f.seek(position)
        box = read_box_header(f.read(16), position, end)
        yield box
        position = box.end


def children(data: bytes, box: Box) -> list[Box]:
    """The child boxes of a container box."""
    return list(iter_boxes(data, box.payload_start, box.end))


def find_first(data: bytes, box_type: bytes, start: int = 0, end: int | None = None) -> Box | None:
    """The first box of a type among the boxes laid end to end in ``data[start:end]``."""
    return next((box for box in iter_boxes(data, start, end) if box.type == box_type), None)


def track_sample_entries(moov: bytes, handler: bytes) -> list[tuple[list[Box], Box]]:
    """Every sample entry of every track with this handler type, with its ancestors down to ``stsd``.

    A track's handler type is the ``mdia/hdlr`` field: ``soun`` for audio, ``vide`` for video.

    Args:
        moov: the bytes of one ``moov`` box, header included.
        handler: the 4-byte handler type.

    Returns:
        ``[(ancestors, entry)]``: ancestors are ``[moov, trak, mdia, minf, stbl, stsd]``.
    """
    top = list(iter_boxes(moov))
    if len(top) != 1 or top[0].type != b"moov":
        raise BoxError("expected the bytes of exactly one moov box")
    (moov_box,) = top
    found = []
    for trak in (b for b in children(moov, moov_box) if b.type == b"trak"):
        mdia = find_first(moov, b"mdia", trak.payload_start, trak.end)
        hdlr = mdia and find_first(moov, b"hdlr", mdia.payload_start, mdia.end)
        if mdia is None or hdlr is None or moov[hdlr.payload_start + 8 : hdlr.payload_start + 12] != handler:
            continue
        path = [moov_box, trak, mdia]
        for box_type in (b"minf", b"stbl", b"stsd"):
            parent = path[-1]
            child = find_first(moov, box_type, parent.payload_start, parent.end)
            if child is None:
                raise BoxError(f"track at offset {trak.start} has no {box_type.decode()} box")
            path.append(child)
        stsd = path[-1]
        if stsd.size < stsd.header_size + 8:
            raise BoxError(f"stsd box at offset {stsd.start} is too short")
        for entry in iter_boxes(moov, stsd.payload_start + 8, stsd.end):  # after version/flags, count
            found.append((path, entry))
    return found


def sound_sample_entries(moov: bytes) -> list[tuple[list[Box], Box]]:
    """Every PCM, AAC or Opus sample entry of every audio track (see ``track_sample_entries``)."""
    return [
        (path, entry)
        for path, entry in track_sample_entries(moov, b"soun")
        if entry.type in SOUND_ENTRY_TYPES
    ]


def visual_entry_children_start(entry: Box) -> int:
    """Offset of the first child box of a video sample entry (``VisualSampleEntry``: 78 bytes of fields)."""
    start = entry.payload_start + _VISUAL_ENTRY_FIELDS
    if start > entry.end:
        raise BoxError(f"video sample entry {entry.type!r} at offset {entry.start} is too short")
    return start


def sound_entry_children_start(data: bytes, entry: Box) -> int:
    """Offset of the first child box of a sound sample entry (after its version-dependent fields).

    QuickTime sound descriptions have versions 0, 1 and 2 (28, 44 and 64 bytes of fields); ISO
    entries keep that field at 0, so they read as version 0.
    """
    if entry.size < entry.header_size + 10:
        raise BoxError(f"sound sample entry {entry.type!r} at offset {entry.start} is too short")
    (version,) = struct.unpack_from(">H", data, entry.payload_start + 8)
    if version not in _SOUND_ENTRY_FIELDS:
        raise BoxError(f"sound sample entry {entry.type!r} has unknown version {version}")
    start = entry.payload_start + _SOUND_ENTRY_FIELDS[version]
    if start > entry.end:
        raise BoxError(f"sound sample entry {entry.type!r} at offset {entry.start} is too short")
    return start


def insert_bytes(data: bytes, ancestors: Sequence[Box], position: int, payload: bytes) -> bytes:
    """Insert ``payload`` at ``position`` and grow every box in ``ancestors`` by its length.

    Args:
        data: a buffer of boxes.
        ancestors: the boxes that contain ``position`` (outermost first), whose sizes must grow.
        position: where the new bytes go.
        payload: the bytes (usually whole boxes).

    Returns:
        The edited buffer.
    """
    out = bytearray(data[:position] + payload + data[position:])
    for box in ancestors:
        if not box.start < position <= box.end:
            raise BoxError(f"offset {position} is not inside box {box.type!r} at {box.start}")
        new_size = box.size + len(payload)
        if box.header_size == 16:
            struct.pack_into(">Q", out, box.start + 8, new_size)
        elif new_size > _U32_MAX:
            raise BoxError(f"box {box.type!r} would exceed 4 GiB; 64-bit resizing is not supported")
        else:
            struct.pack_into(">I", out, box.start, new_size)
    return bytes(out)


def shift_chunk_offsets(moov: bytes, delta: int, from_offset: int) -> bytes:
    """Add ``delta`` to every chunk offset (``stco``, ``co64``) at or after ``from_offset``.

    Media data that followed ``moov`` in the file moves by the number of bytes ``moov`` grew;
    data before it stays.

    Args:
        moov: the bytes of one ``moov`` box.
        delta: bytes the data moved.
        from_offset: file offset at which moved data starts (where ``moov`` itself started).

    Returns:
        ``moov`` with the offsets rewritten (same length).
    """
    out = bytearray(moov)
    for box in _walk(moov, 0, len(moov)):
        if box.type not in (b"stco", b"co64"):
            continue
        width, fmt = (4, ">I") if box.type == b"stco" else (8, ">Q")
        (count,) = struct.unpack_from(">I", moov, box.payload_start + 4)
        table = box.payload_start + 8
        if table + count * width > box.end:
            raise BoxError(f"{box.type.decode()} at offset {box.start} lists more entries than it holds")
        for i in range(count):
            (offset,) = struct.unpack_from(fmt, moov, table + i * width)
            if offset >= from_offset:
                offset += delta
                if width == 4 and offset > _U32_MAX:
                    raise BoxError("a chunk offset passes 4 GiB in a 32-bit stco table")
                struct.pack_into(fmt, out, table + i * width, offset)
    return bytes(out)


def _walk(data: bytes, start: int, end: int) -> Iterator[Box]:
    """Every box under ``data[start:end]``, descending into container boxes only."""
    for box in iter_boxes(data, start, end):
        yield box
        if box.type in CONTAINER_TYPES:
            yield from _walk(data, box.payload_start, box.end)
