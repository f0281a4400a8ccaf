"""What a 360° video's metadata says, whichever container held it: projection, stereo layout, pose, crop.

Why: the three ways of marking a video as spherical (MP4 ``sv3d``/``st3d`` boxes, the older ``uuid``
XML box, Matroska's ``Projection`` element) say the same things in different units; one value type
lets the pipeline check what it can honour and lets ``visage mux`` translate between containers.

Stereo names follow the ``st3d`` box of Google's Spherical Video V2 RFC; the Matroska ``StereoMode``
values with the same meaning map onto them (the RFC allows only those). Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PROJECTIONS = ("equirectangular", "cubemap", "mesh")
ST3D_STEREO_MODES = ("mono", "top-bottom", "left-right", "stereo-custom", "right-left")
"""Stereo layout by ``st3d`` ``stereo_mode`` value (0-4)."""

MATROSKA_STEREO_MODES = {0: "mono", 1: "left-right", 3: "top-bottom", 11: "right-left", 15: "stereo-custom"}
"""Matroska ``StereoMode`` values that have an ``st3d`` equivalent."""

SOURCES = ("sv3d", "uuid", "matroska")


class SphericalVideoError(ValueError):
    """Spherical-video metadata that is malformed, or that this project cannot honour."""


@dataclass(frozen=True)
class SphericalVideo:
    """The spherical-video metadata of a video track.

    Attributes:
        projection: "equirectangular", "cubemap" or "mesh".
        stereo: "mono", "top-bottom", "left-right", "stereo-custom" or "right-left" (left eye named first).
        source: where it was read: "sv3d" (V2 boxes), "uuid" (V1 XML) or "matroska" (``Projection``).
        pose_yaw_deg: counter-clockwise rotation of the projection about the up axis.
        pose_pitch_deg: counter-clockwise rotation about the right axis, after yaw.
        pose_roll_deg: clockwise rotation about the forward axis, after yaw and pitch.
        crop_top: equirectangular only: the fraction of the full panorama's height cut away above
            the frame (0 = the frame reaches the north pole).
        crop_bottom: the fraction cut away below the frame.
        crop_left: the fraction of the full panorama's width cut away left of the frame.
        crop_right: the fraction cut away right of the frame.
        projection_private: cubemap and mesh only: the ``cbmp``/``mshp`` box payload (version, flags
            and fields), the same bytes as Matroska's ``ProjectionPrivate``; empty for equirectangular.
        initial_view_pitch_deg: V1 (``uuid``) only: ``InitialViewPitchDegrees``, where a player starts
            looking. The RFC makes it the initial viewport, not a rotation of the projection, so it is
            kept apart from the pose: the picture is level whatever it says.
        initial_view_roll_deg: V1 only: ``InitialViewRollDegrees``, likewise.
    """

    projection: str
    stereo: str
    source: str
    pose_yaw_deg: float = 0.0
    pose_pitch_deg: float = 0.0
    pose_roll_deg: float = 0.0
    crop_top: float = 0.0
    crop_bottom: float = 0.0
    crop_left: float = 0.0
    crop_right: float = 0.0
    projection_private: bytes = b""
    initial_view_pitch_deg: float = 0.0
    initial_view_roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise SphericalVideoError(
                f"unknown projection {self.projection!r}; expected one of {PROJECTIONS}"
            )
        if self.stereo not in ST3D_STEREO_MODES:
            raise SphericalVideoError(
                f"unknown stereo layout {self.stereo!r}; expected one of {ST3D_STEREO_MODES}"
            )
        if self.source not in SOURCES:
            raise SphericalVideoError(f"unknown metadata source {self.source!r}; expected one of {SOURCES}")
        poses = (self.pose_yaw_deg, self.pose_pitch_deg, self.pose_roll_deg)
        views = (self.initial_view_pitch_deg, self.initial_view_roll_deg)
        if not all(math.isfinite(p) for p in (*poses, *views)):
            raise SphericalVideoError(f"pose angles must be finite, got yaw/pitch/roll {poses}")
        crops = (self.crop_top, self.crop_bottom, self.crop_left, self.crop_right)
        if (
            not all(0.0 <= c < 1.0 for c in crops)
            or self.crop_top + self.crop_bottom >= 1.0
            or (self.crop_left + self.crop_right >= 1.0)
        ):
            raise SphericalVideoError(
                f"crop fractions (top {self.crop_top}, bottom {self.crop_bottom}, left {self.crop_left}, "
                f"right {self.crop_right}) must lie in [0, 1) and leave part of the frame"
            )

    @property
    def is_monoscopic_equirect(self) -> bool:
        """Whether this is the one kind of 360° video the project reads: one equirectangular view."""
        return self.projection == "equirectangular" and self.stereo == "mono"

    @property
    def is_full_sphere(self) -> bool:
        """Whether the frame covers the whole sphere (no crop)."""
        return not (self.crop_top or self.crop_bottom or self.crop_left or self.crop_right)

    def describe(self) -> str:
        """One phrase for messages, e.g. "monoscopic equirectangular, pose yaw 90° pitch 0° roll 0°"."""
        stereo = "monoscopic" if self.stereo == "mono" else f"{self.stereo} stereo"
        crop = (
            ""
            if self.is_full_sphere
            else (
                f", cropped top {self.crop_top:.3g} bottom {self.crop_bottom:.3g} left {self.crop_left:.3g} "
                f"right {self.crop_right:.3g}"
            )
        )
        view = (
            f", initial view pitch {self.initial_view_pitch_deg:g}° roll {self.initial_view_roll_deg:g}°"
            if self.initial_view_pitch_deg or self.initial_view_roll_deg
            else ""
        )
        return (
            f"{stereo} {self.projection}, pose yaw {self.pose_yaw_deg:g}° pitch {self.pose_pitch_deg:g}° "
            f"roll {self.pose_roll_deg:g}°{crop}{view}"
        )
