"""Is a video read as a 360° panorama or as a flat camera view? The rules, and what is refused.

A video is a panorama when its spherical metadata says monoscopic equirectangular
(``files.spherical_video``: MP4/MOV ``sv3d`` or the V1 XML box, Matroska ``Projection``) or when the
caller forces it (``--equirect``, daemon option ``equirect``) on a 2:1 frame. Anything the views
cannot be rendered from faithfully is refused with :class:`UnsupportedVideo`, naming the file:

* cubemap, mesh or stereo metadata (``require_monoscopic_equirect``'s message), or ``--equirect`` on
  such a file: the metadata wins;
* an equirectangular frame cropped to less than the whole sphere (the views assume the full sphere);
* a pose with pitch or roll (V2 ``prhd``, Matroska): a tilted panorama would need rolled views, which
  the dataset never had. A V1 file's initial view pitch and roll are not a pose (``spherical_xml``):
  they only say where a player starts looking, so they are ignored, with :data:`INITIAL_VIEW_NOTE`;
* ``--equirect`` on a frame that is not 2:1;
* ``look="auto"`` on a flat video (there is nothing to look around in).

A pose **yaw** is honoured: the RFC's ``pose_yaw_degrees`` turns the projection counter-clockwise
(to the left, positive AmbiX azimuth) about the up axis, so what a player shows at world azimuth a is
the panorama's azimuth ``a − pose_yaw``. Directions given by the user and given to the model are in
the world (the player's) frame and the view is rendered at the panorama direction ``yaw − pose_yaw``;
the AmbiX result is world-fixed, its front the player's front (the panorama's centre column when the
pose is 0).

A 2:1 frame without metadata is **not** assumed to be 360°: it is read as flat video, with
:data:`TWO_TO_ONE_NOTE` in the result's sidecar. This module does not log it: the request is checked more
than once (validation, then generation), and ``visage generate`` prints the sidecar's note itself, so a
log warning here would show it on the terminal two or three times; the pipeline logs it once at INFO.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from visage.model.delivery.result_context import EQUIRECT_FLAG
from visage.model.features.direction import CameraDirection
from visage.model.files.panorama_video import is_two_to_one
from visage.model.files.spherical_video import (
    SphericalVideoError,
    read_spherical_video,
    require_monoscopic_equirect,
)
from visage.model.files.video_io import VideoInfo

LOOK_MODES = ("auto",)  # values of the look option: where the view of each window is chosen
TWO_TO_ONE_NOTE = (
    "2:1 frame without spherical metadata: treated as flat video; "
    "pass --equirect (daemon option equirect) if it is a panorama"
)
INITIAL_VIEW_NOTE = (
    "the V1 spherical metadata's initial view pitch {pitch:g}° roll {roll:g}° only says where a player "
    "starts looking (the picture is level): ignored; its heading is taken as the pose yaw"
)
FORCED = EQUIRECT_FLAG  # PanoramaInput.detected_by when the caller forced it (mux and viz read it back)


class UnsupportedVideo(ValueError):
    """A video that cannot be read the way it was asked (or the way its metadata says); names the file."""


@dataclass(frozen=True)
class PanoramaInput:
    """How a video is read.

    Attributes:
        panorama: True for a 360° equirectangular panorama, False for a flat camera view.
        detected_by: what made it a panorama: the metadata's source (``sv3d``, ``uuid``, ``matroska``)
            or :data:`FORCED`; None for flat video.
        pose_yaw_deg: the metadata's pose yaw (0 without metadata), honoured as described above.
        note: for the sidecar (``visage generate`` prints it): why a panorama-shaped frame was read
            as flat, or what a panorama's metadata said that was ignored; None when nothing was.
    """

    panorama: bool
    detected_by: str | None = None
    pose_yaw_deg: float = 0.0
    note: str | None = None

    def panorama_direction(self, world: CameraDirection) -> CameraDirection:
        """The panorama direction shown at a world (player) direction: yaw minus the pose yaw."""
        return CameraDirection(world.yaw_deg - self.pose_yaw_deg, world.pitch_deg)

    def world_direction(self, panorama: CameraDirection) -> CameraDirection:
        """The world direction of a panorama direction (inverse of :meth:`panorama_direction`)."""
        return CameraDirection(panorama.yaw_deg + self.pose_yaw_deg, panorama.pitch_deg)

    def sound_field_frame(self) -> str:
        """One sentence for the sidecar: which way the result's front is."""
        if not self.panorama:
            return "camera direction given in the sound field's frame (AmbiX front = yaw 0)"
        front = "the panorama's centre column"
        if self.pose_yaw_deg:
            front = f"the player's front: the panorama's azimuth {-self.pose_yaw_deg:g}° (pose yaw honoured)"
        return f"world-fixed: AmbiX front (azimuth 0) = {front}"


def panorama_input(
    media: Path, info: VideoInfo, *, equirect: bool = False, look: str | None = None
) -> PanoramaInput:
    """Decide how ``media`` is read (the rules above).

    Args:
        media: the video file.
        info: its ``video_io.probe_video`` description (the displayed frame size).
        equirect: read it as a panorama even without spherical metadata.
        look: None, or ``"auto"`` (needs a panorama).

    Raises:
        UnsupportedVideo: the file cannot be read as asked; the message names it and says why.
        ValueError: ``look`` is not one of :data:`LOOK_MODES`.
    """
    if look is not None and look not in LOOK_MODES:
        raise ValueError(f"look must be {' or '.join(LOOK_MODES)}, got {look!r}")
    try:
        metadata = read_spherical_video(media)
        if metadata is not None:
            metadata = require_monoscopic_equirect(media)
    except SphericalVideoError as exc:
        raise UnsupportedVideo(str(exc)) from None
    two_to_one = is_two_to_one(info.display_width, info.display_height)
    if metadata is not None:
        if not metadata.is_full_sphere:
            raise UnsupportedVideo(
                f"{media}: its spherical metadata says {metadata.describe()}; only full-sphere "
                "equirectangular video is supported"
            )
        if metadata.pose_pitch_deg or metadata.pose_roll_deg:
            raise UnsupportedVideo(
                f"{media}: its spherical metadata says {metadata.describe()}; a pose with pitch or roll "
                "is not supported (re-export the panorama level, with pose pitch and roll 0)"
            )
        pitch, roll = metadata.initial_view_pitch_deg, metadata.initial_view_roll_deg
        note = INITIAL_VIEW_NOTE.format(pitch=pitch, roll=roll) if pitch or roll else None
        return PanoramaInput(True, metadata.source, metadata.pose_yaw_deg, note)
    if equirect:
        if not two_to_one:
            raise UnsupportedVideo(
                f"{media}: --equirect needs a 2:1 equirectangular frame, but the picture is "
                f"{info.display_width} x {info.display_height}"
            )
        return PanoramaInput(True, FORCED)
    if look is not None:
        raise UnsupportedVideo(
            f"{media}: --look {look} needs a 360° video (spherical metadata, or --equirect), "
            "and this one is read as flat"
        )
    if two_to_one:
        return PanoramaInput(False, note=TWO_TO_ONE_NOTE)
    return PanoramaInput(False)
