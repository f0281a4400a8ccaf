"""Where the sound is: audio energy maps over time, and where each direction lands in a picture.

Why: a reviewer judges a generated sound field by looking at it over the video. This module holds
the geometry and the numbers; ``visage.model.delivery.sound_map_picture`` colours them and
``visage.model.delivery.sound_map_render`` reads and writes the files.

Maps are paper Eq. 1 (``ambisonics.sphere_energy_map``: RMS of the first-order beam toward each
direction) over a window of audio, on an equirectangular grid of pixel centres (row 0 at the top,
column 0 at azimuth +180°, i.e. the panorama layout of YouTube and the AmbiX convention: the left
half of the picture is positive azimuth)::

    azimuth   = π − 2π (x + 0.5) / A        elevation = π/2 − π (y + 0.5) / E

A camera is a pinhole (gnomonic projection) looking at (yaw, pitch) with no roll and a horizontal
field of view; its pixel (x, y) looks along ``forward + a·right + b·up`` with
``a = (2 (x + 0.5) / W − 1)·tan(hfov/2)`` and ``b = (1 − 2 (y + 0.5) / H)·tan(hfov/2)·H / W`` (square
pixels). Angles are radians; azimuth positive left, elevation positive up.

Shapes: T time windows, E x A map grid, H x W picture.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from visage.model.audio.ambisonics import AmbisonicsError, SphereGrid, rotation_matrix, sphere_energy_map

_SILENCE = 1e-12  # RMS floor, so that log levels of digital silence stay finite


class CameraView(NamedTuple):
    """A pinhole camera: where it looks, how wide, and the picture size in pixels."""

    yaw: float  # radians, positive left
    pitch: float  # radians, positive up
    hfov: float  # horizontal field of view, radians, in (0, π)
    width: int
    height: int


class Pixels(NamedTuple):
    """Continuous pixel coordinates (pixel centres at integers) and whether each point is in front."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    in_front: npt.NDArray[np.bool_]


def map_grid(step_deg: float = 1.0) -> SphereGrid:
    """Pixel-centre equirectangular grid every ``step_deg`` degrees (E = 180/step rows, A = 2E columns).

    Unlike ``ambisonics.spherical_grid`` (the official evaluation grid, which starts at the poles),
    cells are centred, so the map can be drawn and sampled as an image without a half-cell shift.
    """
    rows = 180.0 / step_deg if step_deg > 0 else math.nan
    if not (math.isfinite(rows) and rows >= 1 and abs(rows - round(rows)) < 1e-9):
        raise AmbisonicsError(f"step_deg must be positive and divide 180, got {step_deg}")
    n_el = round(rows)
    azimuths = math.pi - 2 * math.pi * (np.arange(2 * n_el) + 0.5) / (2 * n_el)  # [A]
    elevations = math.pi / 2 - math.pi * (np.arange(n_el) + 0.5) / n_el  # [E]
    return SphereGrid(azimuths=azimuths, elevations=elevations)


def windowed_energy_maps(
    foa: npt.ArrayLike, sample_rate: int, centres_s: npt.ArrayLike, window_s: float, grid: SphereGrid
) -> npt.NDArray[np.float64]:
    """Energy maps of the audio around each time.

    Each window is ``[t − window_s/2, t + window_s/2)`` cut to the audio; a window entirely outside
    it gives a zero map.

    Args:
        foa: ``[4, N]`` AmbiX.
        sample_rate: in Hz.
        centres_s: ``[T]`` window centres in seconds from the first sample.
        window_s: window length in seconds (> 0).
        grid: directions of the map.

    Returns:
        ``[T, E, A]`` RMS values.
    """
    audio = np.asarray(foa)
    if audio.ndim != 2 or audio.shape[0] != 4:
        raise AmbisonicsError(f"expected first-order AmbiX [4, N], got shape {audio.shape}")
    if not window_s > 0:
        raise AmbisonicsError(f"window_s must be positive, got {window_s}")
    centres = np.atleast_1d(np.asarray(centres_s, dtype=np.float64))
    maps = np.zeros((len(centres), len(grid.elevations), len(grid.azimuths)))
    half = window_s / 2
    for i, centre in enumerate(centres):
        lo = max(0, round((centre - half) * sample_rate))
        hi = min(audio.shape[1], round((centre + half) * sample_rate))
        if hi > lo:
            maps[i] = sphere_energy_map(audio[:, lo:hi], grid.azimuths, grid.elevations)  # [E, A]
    return maps


def heat_levels(maps: npt.ArrayLike, range_db: float = 6.0, reference: float | None = None) -> np.ndarray:
    """Map energies to [0, 1] on a decibel scale below a reference (default: the largest value).

    One reference for a whole clip keeps quiet moments dark, and the decibel scale keeps a first-order
    map (which varies only as ``1 + cos γ`` around a single source) readable: with the default 6 dB
    a lone source lights the half of the sphere facing it, brightest at the source.

    Args:
        maps: ``[..., E, A]`` RMS energies.
        range_db: decibels below the reference that map to 0.
        reference: the RMS that maps to 1.

    Returns:
        Levels of the same shape, in [0, 1].
    """
    values = np.asarray(maps, dtype=np.float64)
    if not range_db > 0:
        raise AmbisonicsError(f"range_db must be positive, got {range_db}")
    ref = float(values.max(initial=0.0)) if reference is None else reference
    if ref <= _SILENCE:
        return np.zeros_like(values)
    db = 20 * np.log10(np.maximum(values, _SILENCE) / ref)
    return np.clip(1 + db / range_db, 0.0, 1.0)


def map_peak(values: npt.ArrayLike) -> tuple[float, float] | None:
    """Direction of the largest value of a ``map_grid`` map, refined between grid cells.

    The cell of the maximum is refined by a parabola through it and its neighbours along each axis
    (azimuth wraps), so a smooth first-order map gives its peak to a small fraction of a cell, far
    finer than the grid.

    Args:
        values: ``[E, A]`` map on ``map_grid(180 / E)``.

    Returns:
        (azimuth, elevation) in radians, or None for an all-zero map (silence).
    """
    grid_values = np.asarray(values, dtype=np.float64)
    n_el, n_az = grid_values.shape
    if n_el < 3 or n_az != 2 * n_el:
        raise AmbisonicsError(f"expected a map_grid map [E, 2E] with E >= 3, got shape {grid_values.shape}")
    if grid_values.max(initial=0.0) <= 0:
        return None
    row, col = divmod(int(np.argmax(grid_values)), n_az)
    d_col = _parabola_offset(*grid_values[row, [(col - 1) % n_az, col, (col + 1) % n_az]])
    d_row = _parabola_offset(*grid_values[[row - 1, row, row + 1], col]) if 0 < row < n_el - 1 else 0.0
    azimuth = math.pi - 2 * math.pi * (col + d_col + 0.5) / n_az
    elevation = math.pi / 2 - math.pi * (row + d_row + 0.5) / n_el
    return math.atan2(math.sin(azimuth), math.cos(azimuth)), elevation


def sample_map(values: npt.ArrayLike, azimuths: npt.ArrayLike, elevations: npt.ArrayLike) -> np.ndarray:
    """Bilinear value of a ``map_grid`` map toward each direction (azimuth wraps, elevation clamps).

    Args:
        values: ``[E, A]`` map on ``map_grid(180 / E)``.
        azimuths: radians, any shape.
        elevations: radians, the same shape.

    Returns:
        Values of that shape.
    """
    grid_values = np.asarray(values, dtype=np.float64)
    n_el, n_az = grid_values.shape
    if n_el < 2 or n_az != 2 * n_el:
        raise AmbisonicsError(f"expected a map_grid map [E, 2E] with E >= 2, got shape {grid_values.shape}")
    x = (math.pi - np.asarray(azimuths, dtype=np.float64)) / (2 * math.pi) * n_az - 0.5
    y = np.clip((math.pi / 2 - np.asarray(elevations, dtype=np.float64)) / math.pi * n_el - 0.5, 0, n_el - 1)
    x0, y0 = np.floor(x), np.minimum(np.floor(y), n_el - 2)
    fx, fy = x - x0, y - y0
    c0 = x0.astype(np.int64) % n_az
    c1 = (c0 + 1) % n_az
    r0 = y0.astype(np.int64)
    r1 = r0 + 1
    top = grid_values[r0, c0] * (1 - fx) + grid_values[r0, c1] * fx
    bottom = grid_values[r1, c0] * (1 - fx) + grid_values[r1, c1] * fx
    return top * (1 - fy) + bottom * fy


def view_directions(view: CameraView) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Azimuth and elevation seen by each pixel of the camera.

    Returns:
        ``([H, W], [H, W])`` radians.
    """
    half_w, half_h = _half_extents(view)
    forward, left, up = rotation_matrix(view.yaw, view.pitch).T  # columns of R: the camera's axes
    a = (2 * (np.arange(view.width) + 0.5) / view.width - 1) * half_w  # [W], to the right
    b = (1 - 2 * (np.arange(view.height) + 0.5) / view.height) * half_h  # [H], up
    rays = forward - a[None, :, None] * left + b[:, None, None] * up  # [H, W, 3]
    return np.arctan2(rays[..., 1], rays[..., 0]), np.arctan2(
        rays[..., 2], np.hypot(rays[..., 0], rays[..., 1])
    )


def view_pixels(view: CameraView, azimuths: npt.ArrayLike, elevations: npt.ArrayLike) -> Pixels:
    """Where directions land in the camera's picture (the inverse of ``view_directions``).

    Points behind the camera get ``in_front`` False (and meaningless coordinates); points in front
    may still fall outside ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
    """
    half_w, half_h = _half_extents(view)
    az = np.asarray(azimuths, dtype=np.float64)
    el = np.asarray(elevations, dtype=np.float64)
    rays = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)  # [..., 3]
    forward, left, up = rotation_matrix(view.yaw, view.pitch).T
    depth = rays @ forward
    in_front = depth > 1e-9
    safe = np.where(in_front, depth, 1.0)
    a = -(rays @ left) / safe
    b = (rays @ up) / safe
    x = (a / half_w + 1) * view.width / 2 - 0.5
    y = (1 - b / half_h) * view.height / 2 - 0.5
    return Pixels(x, y, in_front)


def panorama_directions(width: int, height: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Azimuth and elevation of each pixel of a ``width x height`` equirectangular panorama, ``[H, W]``."""
    if width < 1 or height < 1:
        raise AmbisonicsError(f"panorama size must be positive, got {width} x {height}")
    az = math.pi - 2 * math.pi * (np.arange(width) + 0.5) / width  # [W]
    el = math.pi / 2 - math.pi * (np.arange(height) + 0.5) / height  # [H]
    return np.broadcast_to(az, (height, width)), np.broadcast_to(el[:, None], (height, width))


def panorama_pixels(
    azimuths: npt.ArrayLike, elevations: npt.ArrayLike, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous (x, y) of directions in a ``width x height`` panorama (x in [-0.5, W - 0.5))."""
    az = np.asarray(azimuths, dtype=np.float64)
    x = np.mod((math.pi - az) / (2 * math.pi) * width, width) - 0.5
    y = (math.pi / 2 - np.asarray(elevations, dtype=np.float64)) / math.pi * height - 0.5
    return x, y


def _parabola_offset(before: float, peak: float, after: float) -> float:
    """Offset in cells (within ±0.5) of the vertex of the parabola through three equally spaced values."""
    curvature = before - 2 * peak + after
    return 0.0 if curvature >= 0 else float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))


def _half_extents(view: CameraView) -> tuple[float, float]:
    """tan of half the horizontal and vertical fields of view."""
    if not 0 < view.hfov < math.pi:
        raise AmbisonicsError(f"hfov must lie in (0, π) radians for a pinhole camera, got {view.hfov}")
    if view.width < 1 or view.height < 1:
        raise AmbisonicsError(f"picture size must be positive, got {view.width} x {view.height}")
    half_w = math.tan(view.hfov / 2)
    return half_w, half_w * view.height / view.width
