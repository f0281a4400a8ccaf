"""Is this video 360°, and in a form the project can read? Spherical-video metadata of MP4, MOV, WebM, MKV.

Why: a 360° clip says so only in its metadata; an equirectangular frame read as a flat camera view
(or a cubemap read as equirectangular) gives wrong directions for every sound. The pipeline reads
monoscopic equirectangular video only and must say clearly when a file is something else.

Where the metadata lives (the formats' own modules hold the byte layouts):

* MP4/MOV V2: ``st3d`` + ``sv3d`` boxes in the video sample entry (``sv3d``, ``spherical_boxes``);
* MP4/MOV V1: the GSpherical XML ``uuid`` box in the video ``trak`` (``spherical_xml``);
  when a file has both, V2 wins (the V2 RFC);
* WebM/Matroska: ``Projection`` (+ ``StereoMode``) in the first video track (``matroska_projection``).

Other containers carry none of these: read as no metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

from .matroska_projection import EBML_HEADER, read_matroska_projection
from .mp4_boxes import BoxError, top_level_boxes
from .spherical_boxes import SphericalBoxes, find_spherical_boxes, read_moov_spherical
from .spherical_metadata import SphericalVideo, SphericalVideoError
from .sv3d import build_st3d, build_sv3d

__all__ = [
    "SphericalBoxes",
    "SphericalVideo",
    "SphericalVideoError",
    "build_st3d",
    "build_sv3d",
    "spherical_boxes_for_mp4",
    "read_spherical_video",
    "require_monoscopic_equirect",
]

MAX_MOOV_BYTES = 512 << 20  # an index this large is not an MP4 this project can handle in memory
# Top-level box types that open an ISO-BMFF/QuickTime file.
_MP4_FIRST_BOXES = frozenset(
    {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp"}
)
_NO_METADATA_HINT = (
    "no spherical (360°) metadata (sv3d/st3d, uuid XML or Matroska Projection); "
    "pass --equirect if it is an equirectangular panorama"
)


def read_spherical_video(path: str | os.PathLike[str]) -> SphericalVideo | None:
    """The spherical-video metadata of a file's first video track; None when it has none.

    Raises:
        SphericalVideoError: the file cannot be read, its boxes/elements are malformed, or its
            metadata uses values the RFCs do not define (the message names the file).
    """
    return _read(Path(path))[0]


def spherical_boxes_for_mp4(path: str | os.PathLike[str]) -> tuple[SphericalVideo | None, SphericalBoxes]:
    """What a file's spherical metadata says, and the boxes that say it in an MP4/MOV video track.

    MP4/MOV sources give their own boxes byte for byte (whatever projection or stereo layout they
    describe); a Matroska ``Projection`` becomes ``st3d`` + ``sv3d`` (its ``ProjectionPrivate`` is the
    payload of the matching projection box, so cubemap and mesh translate too).

    Raises:
        SphericalVideoError: as ``read_spherical_video``.
    """
    return _read(Path(path))


def require_monoscopic_equirect(path: str | os.PathLike[str]) -> SphericalVideo:
    """The file's spherical metadata, which must say monoscopic equirectangular.

    Raises:
        SphericalVideoError: no spherical metadata, another projection, or stereo video; the message
            names the file and what its metadata says.
    """
    video = read_spherical_video(path)
    if video is None:
        raise SphericalVideoError(f"{path}: {_NO_METADATA_HINT}")
    if not video.is_monoscopic_equirect:
        says = [] if video.projection == "equirectangular" else [f"{video.projection} projection"]
        if video.stereo != "mono":
            says.append(f"{video.stereo} stereo")
        raise SphericalVideoError(
            f"{path}: its spherical metadata ({video.source}) says {' and '.join(says)}; "
            "only monoscopic equirectangular 360° video is supported"
        )
    return video


def _read(path: Path) -> tuple[SphericalVideo | None, SphericalBoxes]:
    """The metadata and its MP4 boxes (see ``spherical_boxes_for_mp4``), with errors naming the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0)
            if head[:4] == EBML_HEADER.to_bytes(4, "big"):
                video = read_matroska_projection(f)
                if video is None:
                    return None, SphericalBoxes()
                return video, SphericalBoxes(st3d=build_st3d(video.stereo), sv3d=build_sv3d(video))
            if head[4:8] not in _MP4_FIRST_BOXES:
                return None, SphericalBoxes()
            moov = next((b for b in top_level_boxes(f) if b.type == b"moov"), None)
            if moov is None:
                raise SphericalVideoError("no moov box; not a complete MP4/MOV file")
            if moov.size > MAX_MOOV_BYTES:
                raise SphericalVideoError(f"its moov box of {moov.size} bytes is implausibly large")
            f.seek(moov.start)
            moov_bytes = f.read(moov.size)
            return read_moov_spherical(moov_bytes), find_spherical_boxes(moov_bytes)
    except OSError as exc:
        raise SphericalVideoError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except BoxError as exc:
        raise SphericalVideoError(f"{path}: not a well-formed MP4/MOV file ({exc})") from None
    except SphericalVideoError as exc:
        raise SphericalVideoError(f"{path}: {exc}") from None
