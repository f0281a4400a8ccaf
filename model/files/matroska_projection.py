"""The spherical-video metadata of a WebM/Matroska file: the ``Projection`` element of its first video track.

Why: WebM 360° video (YouTube's own downloads among them) is marked by ``Segment/Tracks/TrackEntry/
Video/Projection`` (Google's Spherical Video V2 RFC) and the track's ``Video/StereoMode``; reading
them needs only the EBML element tree up to ``Tracks``, never the clusters.

EBML: each element is an ID (1-4 bytes, the length marked by the first byte's leading zeros, marker
kept), a size (1-8 bytes, marker removed; all ones = unknown size) and the payload. IDs used::

    1A45DFA3 EBML header     18538067 Segment     1654AE6B Tracks     1F43B675 Cluster
    AE TrackEntry   83 TrackType (1 = video)   E0 Video   53B8 StereoMode
    7670 Projection  7671 ProjectionType (0 rectangular, 1 equirectangular, 2 cubemap, 3 mesh)
    7672 ProjectionPrivate (the equi/cbmp/mshp payload)   7673/7674/7675 ProjectionPose Yaw/Pitch/Roll

A ``rectangular`` projection marks a flat video: read as no spherical metadata. Reading stops at the
first ``Cluster``: muxers write ``Tracks`` before the media. Pure apart from ``read_matroska_projection``,
which reads element headers from an open file and loads only ``Tracks``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from .spherical_metadata import MATROSKA_STEREO_MODES, SphericalVideo, SphericalVideoError
from .sv3d import projection_fields

EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067
_TRACKS = 0x1654AE6B
_CLUSTER = 0x1F43B675
_TRACK_ENTRY = 0xAE
_TRACK_TYPE = 0x83
_VIDEO = 0xE0
_STEREO_MODE = 0x53B8
_PROJECTION = 0x7670
_PROJECTION_TYPE = 0x7671
_PROJECTION_PRIVATE = 0x7672
_POSES = {0x7673: "pose_yaw_deg", 0x7674: "pose_pitch_deg", 0x7675: "pose_roll_deg"}
_VIDEO_TRACK = 1
_PROJECTION_TYPES = {1: "equirectangular", 2: "cubemap", 3: "mesh"}
_RECTANGULAR = 0
MAX_TRACKS_BYTES = 16 << 20  # Tracks is a few hundred bytes (codec private data aside)
_HEADER_BYTES = 12  # the longest ID (4) and size (8)


class Element(NamedTuple):
    """An EBML element found in a buffer or file (offsets into it); size None = unknown size."""

    id: int
    start: int
    payload_start: int
    size: int | None

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.payload_start + self.size


def read_element_header(header: bytes, position: int) -> Element:
    """The element whose ID and size start ``header`` (up to 12 bytes), found at ``position``.

    Raises:
        SphericalVideoError: a cut-off header or an invalid ID/size byte.
    """
    id_length = _vint_length(header, 0, 4, position, "ID")
    element_id = int.from_bytes(header[:id_length], "big")
    size_length = _vint_length(header, id_length, 8, position, "size")
    raw = int.from_bytes(header[id_length : id_length + size_length], "big")
    value = raw & ((1 << (7 * size_length)) - 1)
    size = None if value == (1 << (7 * size_length)) - 1 else value
    return Element(element_id, position, position + id_length + size_length, size)


def iter_elements(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Element]:
    """The elements laid end to end in ``data[start:end]`` (an unknown size runs to ``end``).

    Raises:
        SphericalVideoError: a cut-off header or a size that overruns ``end``.
    """
    end = len(data) if end is None else end
    position = start
    while position < end:
        element = read_element_header(data[position : min(position + _HEADER_BYTES, end)], position)
        if element.size is None:
            element = element._replace(size=end - element.payload_start)
        if element.payload_start > end or element.payload_start + (element.size or 0) > end:
            raise SphericalVideoError(
                f"EBML element {element.id:#x} at offset {position} overruns its parent"
            )
        yield element
        position = element.payload_start + (element.size or 0)


def parse_tracks(data: bytes, start: int = 0, end: int | None = None) -> SphericalVideo | None:
    """The spherical metadata of the first video track in a ``Tracks`` payload (None without a Projection).

    Raises:
        SphericalVideoError: malformed elements, an unknown projection type, a stereo mode with no
            ``st3d`` equivalent, or a bad ``ProjectionPrivate``.
    """
    for entry in iter_elements(data, start, end):
        if entry.id != _TRACK_ENTRY:
            continue
        children = list(iter_elements(data, entry.payload_start, entry.end))
        track_type = next((_uint(data, e) for e in children if e.id == _TRACK_TYPE), None)
        if track_type != _VIDEO_TRACK:
            continue
        video = next((e for e in children if e.id == _VIDEO), None)
        return None if video is None else _parse_video(data, video)
    return None


def read_matroska_projection(f: BinaryIO) -> SphericalVideo | None:
    """Read the first video track's ``Projection`` from an open Matroska/WebM file.

    Raises:
        SphericalVideoError: not an EBML file, no Segment, or malformed elements on the way to ``Tracks``.
    """
    file_end = f.seek(0, os.SEEK_END)
    header = _file_element(f, 0, file_end)
    if header.id != EBML_HEADER:
        raise SphericalVideoError("not a Matroska/WebM file (no EBML header)")
    position = _end_within(header, file_end)
    segment = None
    while position < file_end and segment is None:
        element = _file_element(f, position, file_end)
        if element.id == _SEGMENT:
            segment = element
        position = _end_within(element, file_end)
    if segment is None:
        raise SphericalVideoError("the Matroska file has no Segment")
    position, segment_end = segment.payload_start, _end_within(segment, file_end)
    while position < segment_end:
        element = _file_element(f, position, segment_end)
        if element.id == _CLUSTER:
            return None
        if element.id == _TRACKS:
            size = _end_within(element, segment_end) - element.payload_start
            if size > MAX_TRACKS_BYTES:
                raise SphericalVideoError(f"the Tracks element of {size} bytes is implausibly large")
            f.seek(element.payload_start)
            return parse_tracks(f.read(size))
        if element.size is None:
            raise SphericalVideoError(
                f"EBML element {element.id:#x} at offset {position} has an unknown size"
            )
        position = _end_within(element, segment_end)
    return None


def _parse_video(data: bytes, video: Element) -> SphericalVideo | None:
    children = list(iter_elements(data, video.payload_start, video.end))
    projection = next((e for e in children if e.id == _PROJECTION), None)
    if projection is None:
        return None
    stereo_code = next((_uint(data, e) for e in children if e.id == _STEREO_MODE), 0)
    if stereo_code not in MATROSKA_STEREO_MODES:
        raise SphericalVideoError(
            f"Matroska StereoMode {stereo_code} has no st3d equivalent (the RFC allows 0, 1, 3, 11 and 15)"
        )
    fields: dict[str, object] = {}
    projection_type = _RECTANGULAR
    private = None
    for element in iter_elements(data, projection.payload_start, projection.end):
        if element.id == _PROJECTION_TYPE:
            projection_type = _uint(data, element)
        elif element.id == _PROJECTION_PRIVATE:
            private = data[element.payload_start : element.end]
        elif element.id in _POSES:
            fields[_POSES[element.id]] = _float(data, element)
    if projection_type == _RECTANGULAR:
        return None
    if projection_type not in _PROJECTION_TYPES:
        raise SphericalVideoError(f"unknown Matroska ProjectionType {projection_type}")
    name = _PROJECTION_TYPES[projection_type]
    if private is None:
        if name != "equirectangular":
            raise SphericalVideoError(f"a {name} Matroska Projection needs a ProjectionPrivate element")
        private = bytes(20)  # the RFC's default: a version-0 equi payload with no crop
    return SphericalVideo(
        projection=name,
        stereo=MATROSKA_STEREO_MODES[stereo_code],
        source="matroska",
        **fields,  # type: ignore[arg-type]
        **projection_fields(name, private),
    )


def _uint(data: bytes, element: Element) -> int:
    if element.size is None or element.size > 8:
        raise SphericalVideoError(
            f"EBML unsigned integer {element.id:#x} has {element.size} bytes (at most 8)"
        )
    return int.from_bytes(data[element.payload_start : element.payload_start + element.size], "big")


def _float(data: bytes, element: Element) -> float:
    payload = data[element.payload_start : element.end]
    if len(payload) == 0:
        return 0.0
    if len(payload) not in (4, 8):
        raise SphericalVideoError(f"EBML float {element.id:#x} has {len(payload)} bytes (0, 4 or 8)")
    return float(struct.unpack(">f" if len(payload) == 4 else ">d", payload)[0])


def _vint_length(header: bytes, offset: int, longest: int, position: int, what: str) -> int:
    if offset >= len(header):
        raise SphericalVideoError(f"EBML element header at offset {position} is cut off")
    first = header[offset]
    length = 9 - first.bit_length() if first else 9
    if length > longest:
        raise SphericalVideoError(f"invalid EBML {what} byte {first:#04x} at offset {position + offset}")
    if offset + length > len(header):
        raise SphericalVideoError(f"EBML element header at offset {position} is cut off")
    return length


def _file_element(f: BinaryIO, position: int, end: int) -> Element:
    f.seek(position)
    return read_element_header(f.read(min(_HEADER_BYTES, end - position)), position)


def _end_within(element: Element, parent_end: int) -> int:
    """Where an element read from a file ends (an unknown size runs to its parent's end)."""
    end = parent_end if element.end is None else element.end
    if end > parent_end:
        raise SphericalVideoError(
            f"EBML element {element.id:#x} at offset {element.start} overruns its parent"
        )
    return end
