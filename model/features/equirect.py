"""Field-of-view (gnomonic) views of equirectangular 360° frames, and the geometry between the two.

An equirectangular frame ``[H, W]`` maps columns to azimuth and rows to elevation in the AmbiX frame of
the audio (YouTube's spatial-media layout): the centre column is the front, the left half of the image
is positive azimuth (left), the top row is up. With pixel centres at integer coordinates::

    azimuth   = π − 2π (x + 0.5) / W        (x = 0 is the back, seen from its left side)
    elevation = π/2 − π (y + 0.5) / H

A field-of-view view is the rectilinear (pinhole, gnomonic) picture a camera looking at a
:class:`~visage.model.features.direction.CameraDirection` would take with a square sensor and the given
vertical (= horizontal) field of view, as the official ``nfov`` crop (90°, 224 x 224, spec §7.1) does. Its
pixel ``(row, col)`` looks along ``forward + a·right + b·up`` with ``a = (2 (col + 0.5)/S − 1)·tan(fov/2)``
and ``b = (1 − 2 (row + 0.5)/S)·tan(fov/2)``; the camera has no roll, so its ``up`` lies in the
vertical plane.

Pure numpy: arrays in, arrays out. Angles are radians unless a name ends in ``_deg``.
Shapes: H, W equirectangular rows/columns; S the square view's side; C colour channels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from visage.model.features.direction import CameraDirection


class EquirectError(ValueError):
    """A frame or a view parameter that cannot be projected."""


class CameraBasis(NamedTuple):
    """Unit vectors of a camera in the frame x = front, y = left, z = up (each ``[3]`` float64)."""

    forward: npt.NDArray[np.float64]
    right: npt.NDArray[np.float64]
    up: npt.NDArray[np.float64]


def camera_basis(camera: CameraDirection) -> CameraBasis:
    """Forward, right and up vectors of a camera that looks at ``camera`` without roll."""
    yaw, pitch = math.radians(camera.yaw_deg), math.radians(camera.pitch_deg)
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    forward = np.array([cp * cy, cp * sy, sp])
    right = np.array([sy, -cy, 0.0])  # forward turned 90° clockwise seen from above
    up = np.array([-sp * cy, -sp * sy, cp])
    return CameraBasis(forward, right, up)


def _check_view(fov_deg: float, size: int) -> float:
    if not 0.0 < fov_deg < 180.0:
        raise EquirectError(f"fov_deg must lie in (0, 180) for a rectilinear view, got {fov_deg}")
    if size < 1:
        raise EquirectError(f"the view size must be positive, got {size}")
    return math.tan(math.radians(fov_deg) / 2)


def pixel_directions(
    rows: npt.ArrayLike,
    cols: npt.ArrayLike,
    camera: CameraDirection,
    *,
    fov_deg: float = 90.0,
    size: int = 224,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Azimuth and elevation (radians) seen at continuous view pixel positions (any broadcastable shapes)."""
    half = _check_view(fov_deg, size)
    basis = camera_basis(camera)
    a = (2 * (np.asarray(cols, dtype=np.float64) + 0.5) / size - 1) * half
    b = (1 - 2 * (np.asarray(rows, dtype=np.float64) + 0.5) / size) * half
    a, b = np.broadcast_arrays(a, b)
    rays = basis.forward + a[..., None] * basis.right + b[..., None] * basis.up  # [..., 3]
    azimuth = np.arctan2(rays[..., 1], rays[..., 0])
    elevation = np.arctan2(rays[..., 2], np.hypot(rays[..., 0], rays[..., 1]))
    return azimuth, elevation


def view_directions(
    camera: CameraDirection, *, fov_deg: float = 90.0, size: int = 224
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Azimuth and elevation seen by every pixel of the view.

    Returns:
        ``(azimuth, elevation)``, each ``[S, S]`` float64 radians (row 0 at the top).
    """
    index = np.arange(size)
    return pixel_directions(index[:, None], index[None, :], camera, fov_deg=fov_deg, size=size)


def view_pixel(
    azimuth: float, elevation: float, camera: CameraDirection, *, fov_deg: float = 90.0, size: int = 224
) -> tuple[float, float] | None:
    """Where a world direction appears in the view: continuous ``(row, col)``, None if not in front.

    The inverse of :func:`view_directions`; the position may lie outside ``[-0.5, S - 0.5]`` when the
    direction is in front of the camera but outside the field of view.
    """
    half = _check_view(fov_deg, size)
    basis = camera_basis(camera)
    ray = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth)])
    ray = np.append(ray, math.sin(elevation))
    depth = float(ray @ basis.forward)
    if depth <= 1e-12:
        return None
    a, b = float(ray @ basis.right) / depth, float(ray @ basis.up) / depth
    col = ((a / half) + 1) * size / 2 - 0.5
    row = ((-b / half) + 1) * size / 2 - 0.5
    return row, col


def equirect_coordinates(
    azimuth: npt.ArrayLike, elevation: npt.ArrayLike, width: int, height: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Continuous ``(x, y)`` pixel coordinates of directions in a ``W x H`` equirectangular frame."""
    az = np.asarray(azimuth, dtype=np.float64)
    el = np.asarray(elevation, dtype=np.float64)
    x = (math.pi - az) / (2 * math.pi) * width - 0.5
    y = (math.pi / 2 - el) / math.pi * height - 0.5
    return x, y


def equirect_direction(
    x: npt.ArrayLike, y: npt.ArrayLike, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation (radians) of continuous pixel coordinates; inverse of equirect_coordinates."""
    az = math.pi - 2 * math.pi * (np.asarray(x, dtype=np.float64) + 0.5) / width
    el = math.pi / 2 - math.pi * (np.asarray(y, dtype=np.float64) + 0.5) / height
    return np.arctan2(np.sin(az), np.cos(az)), el


def render_view(
    frame: npt.ArrayLike, camera: CameraDirection, *, fov_deg: float = 90.0, size: int = 224
) -> np.ndarray:
    """Bilinear field-of-view view of one equirectangular frame (the official ``nfov`` crop).

    Columns wrap around (the left and right edges of a panorama meet); rows are clamped at the poles.

    Args:
        frame: ``[H, W, C]`` (or ``[H, W]``) equirectangular image, any numeric dtype.
        camera: where the view looks.
        fov_deg: vertical and horizontal field of view.
        size: side S of the square view.

    Returns:
        ``[S, S, C]`` (or ``[S, S]``) in the frame's dtype (rounded for integer frames).
    """
    image = np.asarray(frame)
    if image.ndim not in (2, 3) or image.shape[0] < 2 or image.shape[1] < 2:
        raise EquirectError(f"expected an equirectangular frame [H, W, C] or [H, W], got {image.shape}")
    height, width = image.shape[:2]
    azimuth, elevation = view_directions(camera, fov_deg=fov_deg, size=size)
    x, y = equirect_coordinates(azimuth, elevation, width, height)  # [S, S] each
    y = np.clip(y, 0.0, height - 1.0)
    x0 = np.floor(x)
    y0 = np.minimum(np.floor(y), height - 2)
    fx, fy = x - x0, y - y0  # [S, S]
    x0 = x0.astype(np.int64) % width
    x1 = (x0 + 1) % width
    y0 = y0.astype(np.int64)
    y1 = y0 + 1
    pixels = image.astype(np.float64)
    if image.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    top = pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx
    bottom = pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx
    view = top * (1 - fy) + bottom * fy
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(view), info.min, info.max).astype(image.dtype)
    return view.astype(image.dtype)
