"""360° strips: when a host treats a movie as an equirectangular panorama, and where its front is.

A strip is a 360° panorama when the user says so, or (``AUTO``) when its file carries spherical-video
metadata (``spherical_movie``), or when the scene renders one: its active camera, or the object named as
the front, is an equirectangular panoramic camera (Blender: ``camera.data.type == "PANO"`` and
``camera.data.panorama_type == "EQUIRECTANGULAR"``, the same names in 4.5 and 5.0; before 4.0 the panorama
type lived in ``camera.data.cycles``). Blender's own movie output carries no such metadata, which is
why the scene's camera counts: a render of it is 360° all the same. The daemon is then asked to read the
movie as a panorama (option ``equirect``) and renders the view it hears from at the direction sent.

Directions are relative to the panorama's front, its centre column. An equirectangular camera puts its
view direction (local −Z) at the centre column and its local +Y at the top (checked against a Cycles
render), so as a front reference (``camera.camera_angles``'s frame: +Y front, +Z up, +X right) it is the
frame whose columns are the camera's +X, −Z and +Y. With no other front, a panoramic active camera is its
own front: it "looks" at its centre column, yaw 0, pitch 0.

Pure: strings and 3x3 row tuples in, values out.
"""

from __future__ import annotations

from .camera import Matrix3, rotation_part

PANORAMIC_CAMERA = "PANO"
EQUIRECTANGULAR = "EQUIRECTANGULAR"
MODES = ("AUTO", "ON", "OFF")


def is_equirect_camera(camera_type: str, panorama_type: str | None) -> bool:
    """Whether a camera renders a full equirectangular panorama (Blender's type names)."""
    return camera_type == PANORAMIC_CAMERA and panorama_type == EQUIRECTANGULAR


def picture_front(camera_matrix: Matrix3) -> Matrix3:
    """The front reference of an equirectangular camera's picture: +Y its view, +Z its up, +X its right."""
    r = rotation_part(camera_matrix)
    return (
        (r[0][0], -r[0][2], r[0][1]),
        (r[1][0], -r[1][2], r[1][1]),
        (r[2][0], -r[2][2], r[2][1]),
    )


def is_panorama(mode: str, *, has_spherical_metadata: bool, scene_renders_panorama: bool) -> bool:
    """Whether to send a strip as a 360° panorama: ``ON``/``OFF`` as told, ``AUTO`` from the file or scene.

    Raises:
        ValueError: a mode not in ``MODES``.
    """
    if mode not in MODES:
        raise ValueError(f"360° mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "AUTO":
        return mode == "ON"
    return has_spherical_metadata or scene_renders_panorama
