"""The V1 spherical-video metadata: GSpherical XML in a ``uuid`` box of the video ``trak`` (Google's RFC).

Why: cameras and tools written before the V2 boxes (and some still) mark 360° MP4s only this way;
YouTube still reads it. The box is ``uuid`` with the 16-byte id ``ffcc8263-f855-4a93-8814-587a02521fdd``
followed by UTF-8 XML whose elements (namespace ``http://ns.google.com/videos/1.0/spherical/``) say
``Spherical``/``Stitched`` (true), ``ProjectionType`` (equirectangular), ``StereoMode`` (mono,
left-right, top-bottom), ``InitialView{Heading,Pitch,Roll}Degrees`` and the cropped area in pixels.

The initial view's heading becomes the pose yaw, as FFmpeg's MOV demuxer reads it (it picks which
panorama column is the front). Its pitch and roll do not become a pose: the RFC makes the initial view a
viewport, not a rotation of the projection, so they only say where a player starts looking and the
picture is level whatever they say (kept as ``initial_view_pitch_deg``/``_roll_deg``, pose pitch and
roll 0; FFmpeg would read them as a tilt). The cropped area becomes crop
fractions of the full panorama; the RFC's defaults fill in what is missing (the frame size, halved
along the stereo split). Pure: bytes in, a value out.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

from .spherical_metadata import SphericalVideo, SphericalVideoError

SPHERICAL_UUID = uuid.UUID("ffcc8263-f855-4a93-8814-587a02521fdd").bytes
MAX_XML_BYTES = 1 << 20  # the XML is a few hundred bytes; anything near this is not spherical metadata
_STEREO_MODES = ("mono", "left-right", "top-bottom")
_TRUE = "true"


def parse_spherical_xml(xml: bytes, frame_width: int, frame_height: int) -> SphericalVideo:
    """Read the GSpherical XML of a V1 ``uuid`` box (the bytes after the 16-byte id).

    Args:
        xml: the UTF-8 XML.
        frame_width: the video's coded width, for the crop defaults.
        frame_height: the video's coded height.

    Raises:
        SphericalVideoError: not XML, ``Spherical`` not true, an unknown projection or stereo mode,
            a number that is not an integer, a cropped area outside the full panorama.
    """
    if len(xml) > MAX_XML_BYTES:
        raise SphericalVideoError(f"spherical XML of {len(xml)} bytes is implausibly large")
    try:
        root = ET.fromstring(xml.decode("utf-8"))
    except (ET.ParseError, UnicodeDecodeError, ValueError) as exc:
        raise SphericalVideoError(f"the spherical uuid box does not hold readable XML ({exc})") from None
    fields = {element.tag.rpartition("}")[2]: (element.text or "").strip() for element in root.iter()}
    if fields.get("Spherical", "").lower() != _TRUE:
        raise SphericalVideoError("the spherical XML does not say <Spherical>true</Spherical>")
    projection = fields.get("ProjectionType", "").lower()
    if projection != "equirectangular":
        raise SphericalVideoError(
            f"the spherical XML names projection {projection or '(none)'!r}; V1 defines only equirectangular"
        )
    stereo = fields.get("StereoMode", "mono").lower() or "mono"
    if stereo not in _STEREO_MODES:
        raise SphericalVideoError(
            f"the spherical XML names stereo mode {stereo!r}; expected one of {_STEREO_MODES}"
        )
    # The stereo split halves the frame each eye sees, which is the default panorama size.
    eye_width = frame_width // 2 if stereo == "left-right" else frame_width
    eye_height = frame_height // 2 if stereo == "top-bottom" else frame_height
    full_width = _integer(fields, "FullPanoWidthPixels", eye_width)
    full_height = _integer(fields, "FullPanoHeightPixels", eye_height)
    width = _integer(fields, "CroppedAreaImageWidthPixels", eye_width)
    height = _integer(fields, "CroppedAreaImageHeightPixels", eye_height)
    left = _integer(fields, "CroppedAreaLeftPixels", 0)
    top = _integer(fields, "CroppedAreaTopPixels", 0)
    if not (
        0 < width
        and 0 <= left
        and left + width <= full_width
        and 0 < height
        and 0 <= top
        and top + height <= full_height
    ):
        raise SphericalVideoError(
            f"the spherical XML's cropped area ({width}x{height} at {left},{top}) does not lie inside its "
            f"full panorama ({full_width}x{full_height})"
        )
    return SphericalVideo(
        projection="equirectangular",
        stereo=stereo,
        source="uuid",
        pose_yaw_deg=_integer(fields, "InitialViewHeadingDegrees", 0),
        initial_view_pitch_deg=_integer(fields, "InitialViewPitchDegrees", 0),
        initial_view_roll_deg=_integer(fields, "InitialViewRollDegrees", 0),
        crop_top=top / full_height,
        crop_bottom=(full_height - top - height) / full_height,
        crop_left=left / full_width,
        crop_right=(full_width - left - width) / full_width,
    )


def _integer(fields: dict[str, str], name: str, default: int) -> int:
    text = fields.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise SphericalVideoError(f"the spherical XML's {name} is {text[:40]!r}, not an integer") from None
    if abs(value) > 1 << 31:
        raise SphericalVideoError(f"the spherical XML's {name} ({value}) is out of range")
    return value
