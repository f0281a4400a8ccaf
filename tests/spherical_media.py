"""Test media for 360° metadata: tiny videos, and spherical boxes/elements written from the RFCs' layouts.

These writers are the tests' oracle: they follow Google's Spherical Video RFCs (V1 ``uuid`` XML, V2
``st3d``/``sv3d``, Matroska ``Projection``) field by field and share no code with
``visage.model.files``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np

SPHERICAL_UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")  # V1 RFC, "MP4" section
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def full_box(box_type: bytes, fields: bytes, version: int = 0) -> bytes:
    return box(box_type, bytes([version, 0, 0, 0]) + fields)


def st3d(stereo_mode: int) -> bytes:
    """0 mono, 1 top-bottom, 2 left-right, 3 custom, 4 right-left."""
    return full_box(b"st3d", bytes([stereo_mode]))


def sv3d(projection: bytes, pose=(0.0, 0.0, 0.0), source: bytes = b"test tool") -> bytes:
    """``projection`` is a complete equi/cbmp/mshp box; pose in degrees (16.16 fixed point)."""
    prhd = full_box(b"prhd", struct.pack(">3i", *(int(round(a * 65536)) for a in pose)))
    return box(b"sv3d", full_box(b"svhd", source + b"\0") + box(b"proj", prhd + projection))


def equi(top: int = 0, bottom: int = 0, left: int = 0, right: int = 0) -> bytes:
    """Bounds as 0.32 fixed-point fractions cropped from each edge."""
    return full_box(b"equi", struct.pack(">4I", top, bottom, left, right))


def cbmp(layout: int = 0, padding: int = 0) -> bytes:
    return full_box(b"cbmp", struct.pack(">2I", layout, padding))


def spherical_xml(**elements: object) -> bytes:
    """V1 GSpherical XML with the mandatory elements, plus ``elements`` (e.g. StereoMode="top-bottom")."""
    fields = {
        "Spherical": "true",
        "Stitched": "true",
        "StitchingSoftware": "test stitcher",
        "ProjectionType": "equirectangular",
        **elements,
    }
    body = "".join(f"<GSpherical:{k}>{v}</GSpherical:{k}>" for k, v in fields.items())
    return (
        '<?xml version="1.0"?><rdf:SphericalVideo xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        f'xmlns:GSpherical="http://ns.google.com/videos/1.0/spherical/">{body}</rdf:SphericalVideo>'
    ).encode()


def uuid_box(xml: bytes) -> bytes:
    return box(b"uuid", SPHERICAL_UUID + xml)


def make_video(
    path: Path, *, codec: str = "h264", width: int = 64, height: int = 32, frames: int = 5
) -> Path:
    """A tiny video (container from the suffix: .mp4, .mov, .webm) of flat grey frames, 10 fps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 30 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def with_video_boxes(source: Path, output: Path, *, entry: bytes = b"", trak: bytes = b"") -> Path:
    """Copy a one-track MP4 whose ``moov`` comes last, appending ``entry`` boxes to its video sample
    entry and ``trak`` boxes to its ``trak`` (no chunk offset moves: nothing follows ``moov``)."""
    data = source.read_bytes()
    position = 0
    while position < len(data):
        size, box_type = struct.unpack_from(">I4s", data, position)
        if box_type == b"moov":
            assert position + size == len(data), "the test video must end with moov"
            output.write_bytes(data[:position] + _grow(data[position:], entry, trak))
            return output
        position += size
    raise AssertionError("no moov")


def _grow(moov: bytes, entry: bytes, trak: bytes) -> bytes:
    """Rebuild ``moov`` with the boxes appended (sizes recomputed on the way up)."""

    def rebuild(buffer: bytes, skip: int, box_type: bytes) -> bytes:
        size, found = struct.unpack_from(">I4s", buffer)
        assert found == box_type and size == len(buffer)
        head, body = buffer[8 : 8 + skip], buffer[8 + skip :]
        out, position = b"", 0
        while position < len(body):
            child_size, child_type = struct.unpack_from(">I4s", body, position)
            child = body[position : position + child_size]
            if child_type in _CONTAINERS:
                child = rebuild(child, 0, child_type)
            elif child_type == b"stsd":
                child = rebuild(child, 8, b"stsd")
            elif found == b"stsd":  # the sample entry: 78 bytes of fields, then child boxes
                child = box(child_type, child[8:] + entry)
            out += child
            position += child_size
        if found == b"trak":
            out += trak
        return box(found, head + out)

    return rebuild(moov, 0, b"moov")


def ebml(element_id: int, payload: bytes) -> bytes:
    """An EBML element: its ID bytes as written in the spec, an 8-byte size (0x01 marker), the payload."""
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return id_bytes + bytes([0x01]) + len(payload).to_bytes(7, "big") + payload


def ebml_uint(element_id: int, value: int) -> bytes:
    return ebml(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def projection(projection_type: int, private: bytes | None = None, pose=(0.0, 0.0, 0.0)) -> bytes:
    """A Matroska ``Projection`` element (0x7670) with float64 poses."""
    children = ebml_uint(0x7671, projection_type)
    if private is not None:
        children += ebml(0x7672, private)
    for element_id, angle in zip((0x7673, 0x7674, 0x7675), pose, strict=True):
        children += ebml(element_id, struct.pack(">d", angle))
    return ebml(0x7670, children)


def matroska_bytes(
    video_children: bytes, *, track_type: int = 1, unknown_segment_size: bool = False
) -> bytes:
    """A minimal Matroska document: EBML header, Segment > Info, Tracks > TrackEntry > Video, a Cluster."""
    header = ebml(0x1A45DFA3, ebml(0x4282, b"webm"))
    entry = ebml(0xAE, ebml_uint(0xD7, 1) + ebml_uint(0x83, track_type) + ebml(0xE0, video_children))
    body = ebml(0x1549A966, ebml_uint(0x2AD7B1, 1_000_000)) + ebml(0x1654AE6B, entry) + ebml(0x1F43B675, b"")
    if unknown_segment_size:
        return header + bytes.fromhex("18538067 01ffffffffffffff") + body
    return header + ebml(0x18538067, body)
