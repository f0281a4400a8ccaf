"""Does a movie file say it is 360°? A small stdlib reader of MP4/MOV spherical-video metadata.

Why here and not ``visage.model.files.spherical_video``: the Blender extension carries no project code
beyond ``common/`` and the vendored client, and asking the daemon would need a round trip per strip. Only
the answer a host needs is read: the projection and stereo layout of the first video track, from the V2
boxes (``st3d``, ``sv3d``/``proj``/``equi|cbmp|mshp`` in the video sample entry) or else the V1
GSpherical XML ``uuid`` box of the track (Google's Spherical Video RFCs). Matroska/WebM ``Projection``
is not read (None): the daemon still finds it, and the user can say ``ON``.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

SPHERICAL_UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")  # V1 RFC, "MP4"
MAX_MOOV_BYTES = 256 << 20
_CONTAINERS = (b"trak", b"mdia", b"minf", b"stbl")
_VISUAL_SAMPLE_ENTRY_FIELDS = 78  # SampleEntry (8) + VisualSampleEntry (70) before its child boxes
_STEREO_MODES = {0: "mono", 1: "top-bottom", 2: "left-right", 3: "stereo-custom", 4: "right-left"}
_PROJECTIONS = {b"equi": "equirectangular", b"cbmp": "cubemap", b"mshp": "mesh"}


class SphericalMovie(NamedTuple):
    """What a file's spherical metadata says."""

    projection: str  # "equirectangular", "cubemap" or "mesh"
    stereo: str  # "mono", "top-bottom", "left-right", ...
    source: str  # "sv3d" (V2) or "uuid" (V1)


def read_spherical_movie(path: str | os.PathLike[str]) -> SphericalMovie | None:
    """The first video track's spherical metadata; None without any, or for a file that is not MP4/MOV.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        moov = _top_level_moov(f)
    if moov is None:
        return None
    for trak_start, trak_end in _children(moov, 0, len(moov), b"trak"):
        if _handler(moov, trak_start, trak_end) == b"vide":
            return _v2(moov, trak_start, trak_end) or _v1(moov, trak_start, trak_end)
    return None


def _top_level_moov(f: BinaryIO) -> bytes | None:
    """The ``moov`` box's payload, walking the top-level box headers only."""
    size_on_disk = os.fstat(f.fileno()).st_size
    position = 0
    while position + 8 <= size_on_disk:
        f.seek(position)
        header = f.read(16)
        size, kind = struct.unpack_from(">I4s", header)
        skip = 8
        if size == 1 and len(header) == 16:
            size, skip = struct.unpack_from(">Q", header, 8)[0], 16
        elif size == 0:
            size = size_on_disk - position
        if size < skip or not kind.isascii():
            return None  # not a box: not an MP4/MOV file
        if kind == b"moov":
            if size > MAX_MOOV_BYTES:
                return None
            f.seek(position + skip)
            return f.read(size - skip)
        position += size
    return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of the boxes in ``data[start:end]``; stops at a malformed one."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        skip = 8
        if size == 1 and position + 16 <= end:
            size, skip = struct.unpack_from(">Q", data, position + 8)[0], 16
        elif size == 0:
            size = end - position
        if size < skip or position + size > end:
            return
        yield kind, position + skip, position + size
        position += size


def _children(data: bytes, start: int, end: int, kind: bytes) -> Iterator[tuple[int, int]]:
    for found, payload, box_end in _boxes(data, start, end):
        if found == kind:
            yield payload, box_end


def _descend(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind in path:
        found = next(_children(data, start, end, kind), None)
        if found is None:
            return None
        start, end = found
    return start, end


def _handler(data: bytes, start: int, end: int) -> bytes | None:
    hdlr = _descend(data, start, end, (b"mdia", b"hdlr"))
    if hdlr is None or hdlr[1] - hdlr[0] < 12:
        return None
    return data[hdlr[0] + 8 : hdlr[0] + 12]  # version/flags, pre_defined, then handler_type


def _v2(data: bytes, start: int, end: int) -> SphericalMovie | None:
    stsd = _descend(data, start, end, (b"mdia", b"minf", b"stbl", b"stsd"))
    if stsd is None:
        return None
    entry = next(_boxes(data, stsd[0] + 8, stsd[1]), None)  # version/flags, entry count, first entry
    if entry is None:
        return None
    stereo, projection = "mono", None
    for kind, payload, box_end in _boxes(data, entry[1] + _VISUAL_SAMPLE_ENTRY_FIELDS, entry[2]):
        if kind == b"st3d" and box_end - payload >= 5:
            stereo = _STEREO_MODES.get(data[payload + 4], "stereo-custom")
        elif kind == b"sv3d":
            proj = _descend(data, payload, box_end, (b"proj",))
            if proj is not None:
                projection = next(
                    (_PROJECTIONS[k] for k, _, _ in _boxes(data, *proj) if k in _PROJECTIONS), None
                )
    return None if projection is None else SphericalMovie(projection, stereo, "sv3d")


def _v1(data: bytes, start: int, end: int) -> SphericalMovie | None:
    for payload, box_end in _children(data, start, end, b"uuid"):
        if data[payload : payload + 16] != SPHERICAL_UUID:
            continue
        xml = data[payload + 16 : box_end].decode("utf-8", "replace")
        projection = _xml_field(xml, "ProjectionType") or "equirectangular"
        stereo = _xml_field(xml, "StereoMode") or "mono"
        return SphericalMovie(projection, stereo, "uuid")
    return None


def _xml_field(xml: str, name: str) -> str | None:
    match = re.search(rf"<GSpherical:{name}>\s*([^<]*?)\s*</GSpherical:{name}>", xml)
    return match.group(1) if match else None
