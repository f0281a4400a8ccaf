"""Camera orientation -> AmbiX yaw/pitch, in Blender's conventions. Pure math on 3x3 row-major tuples.

Blender is Z-up and right-handed; a camera looks down its local -Z with local +Y up. The sound field's
front is world +Y by default (what a camera with Euler XYZ (90°, 0, 0) looks at), or the local +Y of a
reference object (an empty standing for the 360° rig). Mapping Blender +Y -> ambisonic +X (front),
-X -> +Y (left), +Z -> +Z (up) is a proper rotation, so with d the view direction in the reference
frame::

    yaw   = atan2(-d.x, d.y)              # positive = turned left (counter-clockwise seen from above)
    pitch = atan2(d.z, hypot(d.x, d.y))   # positive = up

Hand-checked cases (Euler XYZ degrees -> yaw, pitch): (90,0,0) -> (0,0); (90,0,90) -> (90,0);
(90,0,-90) -> (-90,0); (120,0,0) -> (0,30); (90,0,180) -> (-180,0); (0,0,0) -> (0,-90).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .result_files import contract

Vector3 = tuple[float, float, float]
Matrix3 = tuple[Vector3, Vector3, Vector3]  # rows

VERTICAL_EPSILON = 1e-9  # |horizontal part| below this: looking straight up/down, yaw undefined


class CameraAngles(NamedTuple):
    yaw_deg: float  # [-180, 180), positive left
    pitch_deg: float  # [-90, 90], positive up


def euler_xyz_matrix(x_deg: float, y_deg: float, z_deg: float) -> Matrix3:
    """Rotation matrix of a Blender Euler in 'XYZ' order (applied X, then Y, then Z: R = Rz·Ry·Rx)."""
    cx, sx = math.cos(math.radians(x_deg)), math.sin(math.radians(x_deg))
    cy, sy = math.cos(math.radians(y_deg)), math.sin(math.radians(y_deg))
    cz, sz = math.cos(math.radians(z_deg)), math.sin(math.radians(z_deg))
    return (
        (cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx),
        (sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx),
        (-sy, cy * sx, cy * cx),
    )


def quaternion_matrix(w: float, x: float, y: float, z: float) -> Matrix3:
    """Rotation matrix of a (not necessarily unit) quaternion."""
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if n == 0:
        raise ValueError("zero quaternion")
    w, x, y, z = w / n, x / n, y / n, z / n
    return (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )


def _normalized(v: Vector3) -> Vector3:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n == 0:
        raise ValueError("zero-length vector (degenerate rotation/scale)")
    return (v[0] / n, v[1] / n, v[2] / n)


def rotation_part(m: Matrix3) -> Matrix3:
    """The rotation of a 3x3 that may carry scale or shear (Gram-Schmidt on its columns)."""
    c0 = _normalized((m[0][0], m[1][0], m[2][0]))
    c1 = (m[0][1], m[1][1], m[2][1])
    dot = sum(a * b for a, b in zip(c0, c1, strict=True))
    c1 = _normalized((c1[0] - dot * c0[0], c1[1] - dot * c0[1], c1[2] - dot * c0[2]))
    c2 = (c0[1] * c1[2] - c0[2] * c1[1], c0[2] * c1[0] - c0[0] * c1[2], c0[0] * c1[1] - c0[1] * c1[0])
    return ((c0[0], c1[0], c2[0]), (c0[1], c1[1], c2[1]), (c0[2], c1[2], c2[2]))


def view_direction(camera_matrix: Matrix3) -> Vector3:
    """World direction a camera looks at: its matrix applied to local (0, 0, -1), normalised."""
    return _normalized((-camera_matrix[0][2], -camera_matrix[1][2], -camera_matrix[2][2]))


def in_reference_frame(direction: Vector3, reference: Matrix3 | None) -> Vector3:
    """``direction`` expressed in the reference object's frame (R^T d); world frame when None."""
    if reference is None:
        return direction
    r = rotation_part(reference)
    return (
        r[0][0] * direction[0] + r[1][0] * direction[1] + r[2][0] * direction[2],
        r[0][1] * direction[0] + r[1][1] * direction[1] + r[2][1] * direction[2],
        r[0][2] * direction[0] + r[1][2] * direction[1] + r[2][2] * direction[2],
    )


def direction_angles(direction: Vector3, *, fallback_yaw_deg: float = 0.0) -> CameraAngles:
    """Yaw/pitch of a direction in the reference frame (+Y front, +Z up).

    Straight up or down the yaw is undefined; ``fallback_yaw_deg`` (e.g. the previous frame's) is used.
    """
    x, y, z = _normalized(direction)
    horizontal = math.hypot(x, y)
    pitch = math.degrees(math.atan2(z, horizontal))
    if horizontal < VERTICAL_EPSILON:
        return CameraAngles(contract.wrap_yaw(fallback_yaw_deg), pitch)
    return CameraAngles(contract.wrap_yaw(math.degrees(math.atan2(-x, y))), pitch)


def camera_angles(
    camera_matrix: Matrix3, reference: Matrix3 | None = None, *, fallback_yaw_deg: float = 0.0
) -> CameraAngles:
    """AmbiX yaw/pitch of a camera with world rotation ``camera_matrix`` (scale allowed).

    Args:
        camera_matrix: the camera's world 3x3 (``matrix_world.to_3x3()`` as row tuples).
        reference: world 3x3 of the object whose local +Y is the front (None: world +Y).
        fallback_yaw_deg: yaw to report when the camera looks straight up or down.
    """
    direction = in_reference_frame(view_direction(camera_matrix), reference)
    return direction_angles(direction, fallback_yaw_deg=fallback_yaw_deg)
