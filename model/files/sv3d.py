"""The V2 spherical-video boxes ``st3d`` and ``sv3d`` (Google's Spherical Video V2 RFC): build and parse them.

Why: YouTube and 360° players show an MP4/MOV as 360° video only when its video sample entry carries
``sv3d``; ``st3d`` says whether the frame holds one view or two. FFmpeg's MP4 muxer writes them only
from stream side data and only with ``-strict unofficial``, so ``visage mux`` copies or builds them.

Layout (big-endian; FullBox = u8 version 0, u24 flags 0, then the fields)::

    st3d  FullBox  u8 stereo_mode                 0 mono, 1 top-bottom, 2 left-right, 3 custom, 4 right-left
    sv3d  Box
      svhd  FullBox  UTF-8 metadata_source, NUL-terminated
      proj  Box
        prhd  FullBox  i32 yaw, pitch, roll       16.16 fixed-point degrees
        equi  FullBox  u32 top, bottom, left, right   0.32 fixed-point fractions cropped away
        | cbmp FullBox u32 layout, padding
        | mshp FullBox u32 crc, encoding, meshes  (kept as bytes, never decoded)

Parsers ignore unknown child boxes and extra bytes at the end of a box, as the RFC asks. Matroska's
``ProjectionPrivate`` holds the same bytes as the payload of ``equi``/``cbmp``/``mshp`` (version and
flags included), so ``projection_fields`` serves both containers. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from typing import Any

from .mp4_boxes import Box, BoxError, iter_boxes
from .spherical_metadata import ST3D_STEREO_MODES, SphericalVideo, SphericalVideoError

_PROJECTION_BOXES = {b"equi": "equirectangular", b"cbmp": "cubemap", b"mshp": "mesh"}
_PROJECTION_TYPES = {name: box for box, name in _PROJECTION_BOXES.items()}
_FIXED_16_16 = 1 << 16
_FIXED_0_32 = 1 << 32
_MIN_PRIVATE = {"equirectangular": 20, "cubemap": 12, "mesh": 12}  # version/flags + fixed fields
DEFAULT_METADATA_SOURCE = "visage"


def build_st3d(stereo: str) -> bytes:
    """The complete ``st3d`` box for a stereo layout ("mono", "top-bottom", "left-right", ...)."""
    if stereo not in ST3D_STEREO_MODES:
        raise SphericalVideoError(f"unknown stereo layout {stereo!r}; expected one of {ST3D_STEREO_MODES}")
    return _full_box(b"st3d", struct.pack(">B", ST3D_STEREO_MODES.index(stereo)))


def build_sv3d(video: SphericalVideo, metadata_source: str = DEFAULT_METADATA_SOURCE) -> bytes:
    """The complete ``sv3d`` box for ``video``'s projection, pose and crop (its stereo goes in ``st3d``).

    Raises:
        SphericalVideoError: a cubemap or mesh without its ``projection_private`` bytes, a pose
            beyond what 16.16 fixed point holds.
    """
    svhd = _full_box(b"svhd", metadata_source.encode() + b"\0")
    pose = (video.pose_yaw_deg, video.pose_pitch_deg, video.pose_roll_deg)
    fixed = [round(angle * _FIXED_16_16) for angle in pose]
    if not all(-(1 << 31) <= value < 1 << 31 for value in fixed):
        raise SphericalVideoError(f"pose {pose} does not fit 16.16 fixed-point degrees")
    prhd = _full_box(b"prhd", struct.pack(">3i", *fixed))
    if video.projection == "equirectangular":
        crops = (video.crop_top, video.crop_bottom, video.crop_left, video.crop_right)
        data = _full_box(
            b"equi", struct.pack(">4I", *(min(round(c * _FIXED_0_32), _FIXED_0_32 - 1) for c in crops))
        )
    else:
        private = video.projection_private
        if len(private) < _MIN_PRIVATE[video.projection]:
            raise SphericalVideoError(
                f"a {video.projection} projection needs its {_PROJECTION_TYPES[video.projection].decode()} "
                f"payload ({_MIN_PRIVATE[video.projection]}+ bytes), got {len(private)} bytes"
            )
        data = _box(_PROJECTION_TYPES[video.projection], private)
    return _box(b"sv3d", svhd + _box(b"proj", prhd + data))


def parse_st3d(box: bytes) -> str:
    """The stereo layout an ``st3d`` box (header included) names.

    Raises:
        SphericalVideoError: not a well-formed ``st3d`` box, or a mode the RFC does not define.
    """
    found = _single_box(box, b"st3d")
    payload = _full_box_payload(box, found, minimum=1)
    mode = payload[0]
    if mode >= len(ST3D_STEREO_MODES):
        raise SphericalVideoError(f"st3d stereo_mode {mode} is not defined by the Spherical Video V2 RFC")
    return ST3D_STEREO_MODES[mode]


def parse_sv3d(box: bytes, stereo: str = "mono") -> SphericalVideo:
    """Read an ``sv3d`` box (header included); ``stereo`` comes from the track's ``st3d`` box.

    Raises:
        SphericalVideoError: a malformed box tree, no ``proj`` box, no projection box or more than one.
    """
    found = _single_box(box, b"sv3d")
    try:
        proj = _only_child(box, found, b"proj")
        proj_children = list(iter_boxes(box, proj.payload_start, proj.end))
    except BoxError as exc:
        raise SphericalVideoError(f"malformed sv3d box: {exc}") from None
    pose = (0.0, 0.0, 0.0)
    prhd = [child for child in proj_children if child.type == b"prhd"]
    if len(prhd) > 1:
        raise SphericalVideoError("the proj box holds more than one prhd box")
    if prhd:
        fixed = struct.unpack_from(">3i", _full_box_payload(box, prhd[0], minimum=12))
        pose = tuple(value / _FIXED_16_16 for value in fixed)  # type: ignore[assignment]
    projections = [child for child in proj_children if child.type in _PROJECTION_BOXES]
    if len(projections) != 1:
        raise SphericalVideoError(
            f"the proj box must hold exactly one equi, cbmp or mshp box, it holds {len(projections)}"
        )
    (data,) = projections
    projection = _PROJECTION_BOXES[data.type]
    return SphericalVideo(
        projection=projection,
        stereo=stereo,
        source="sv3d",
        pose_yaw_deg=pose[0],
        pose_pitch_deg=pose[1],
        pose_roll_deg=pose[2],
        **projection_fields(projection, box[data.payload_start : data.end]),
    )


def projection_fields(projection: str, payload: bytes) -> dict[str, Any]:
    """The ``SphericalVideo`` fields that a projection box payload (or Matroska ``ProjectionPrivate``) gives.

    Equirectangular: the four crop fractions; cubemap and mesh: the payload kept as
    ``projection_private``.

    Raises:
        SphericalVideoError: a payload shorter than its fields, a version other than 0, or bounds
            that leave nothing of the frame.
    """
    if len(payload) < _MIN_PRIVATE[projection]:
        raise SphericalVideoError(
            f"{_PROJECTION_TYPES[projection].decode()} payload of {len(payload)} bytes is shorter than its "
            f"{_MIN_PRIVATE[projection]} bytes of fields"
        )
    if payload[0] != 0:
        raise SphericalVideoError(f"unknown {_PROJECTION_TYPES[projection].decode()} version {payload[0]}")
    if projection != "equirectangular":
        return {"projection_private": bytes(payload)}
    top, bottom, left, right = struct.unpack_from(">4I", payload, 4)
    if top + bottom >= _FIXED_0_32 - 1 or left + right >= _FIXED_0_32 - 1:
        raise SphericalVideoError(
            f"equi bounds top {top} bottom {bottom} left {left} right {right} crop away the whole frame"
        )
    return {
        "crop_top": top / _FIXED_0_32,
        "crop_bottom": bottom / _FIXED_0_32,
        "crop_left": left / _FIXED_0_32,
        "crop_right": right / _FIXED_0_32,
    }


def _single_box(data: bytes, box_type: bytes) -> Box:
    try:
        boxes = list(iter_boxes(data))
    except BoxError as exc:
        raise SphericalVideoError(f"malformed {box_type.decode()} box: {exc}") from None
    if len(boxes) != 1 or boxes[0].type != box_type:
        raise SphericalVideoError(f"expected one {box_type.decode()} box, got {[b.type for b in boxes]}")
    return boxes[0]


def _only_child(data: bytes, parent: Box, box_type: bytes) -> Box:
    found = [b for b in iter_boxes(data, parent.payload_start, parent.end) if b.type == box_type]
    if len(found) != 1:
        raise SphericalVideoError(
            f"the {parent.type.decode()} box must hold exactly one {box_type.decode()} box, "
            f"it holds {len(found)}"
        )
    return found[0]


def _full_box_payload(data: bytes, box: Box, *, minimum: int) -> bytes:
    """The fields of a FullBox after its version and flags (version 0 only)."""
    payload = data[box.payload_start : box.end]
    if len(payload) < 4 + minimum:
        raise SphericalVideoError(f"{box.type.decode()} box of {box.size} bytes is too short for its fields")
    if payload[0] != 0:
        raise SphericalVideoError(f"unknown {box.type.decode()} version {payload[0]}")
    return payload[4:]


def _box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def _full_box(box_type: bytes, fields: bytes) -> bytes:
    return _box(box_type, b"\0\0\0\0" + fields)
