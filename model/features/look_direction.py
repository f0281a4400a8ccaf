"""Where to look in a panorama: the direction of the most motion (``--look auto``).

A 360° clip has no camera direction of its own; the model needs one field of view per 5-s window. This
picks the view where things move, the most likely place of a sound's visible cause:

1. **motion**: the absolute frame-to-frame difference of the grey frames (Rec. 601 luma in [0, 1]),
   summed over the window, on panoramas reduced to at most :data:`ANALYSIS_WIDTH` columns (block means);
2. **solid angle**: each row weighted by cos(elevation), the area an equirectangular pixel covers on
   the sphere, so that the stretched rows near the poles do not outweigh the horizon;
3. **smoothing**: the weighted motion summed over a spherical cap of ``cap_radius_deg`` around every
   pixel (exact on the sphere: for each pair of rows the cap spans a fixed number of columns, so each
   row pair is one circular box sum, and the panorama's left and right edges meet);
4. **direction**: the cap with the most motion; the direction returned is the motion-weighted mean of
   the unit vectors inside it (finer than a pixel, and continuous across the ±180° seam), its pitch
   clamped to ``max_pitch_deg``.

A window whose frames do not change (one frame, a still picture: no pixel of the analysis size changes
by :data:`STILL_MOTION` per frame pair) has no motion direction: ``None``,
and the caller keeps the direction it was given. Pure numpy; equirectangular geometry as in
``features.equirect`` (centre column = azimuth 0 = AmbiX front, left half = positive azimuth, top = up).

Shapes: F frames, H x W equirectangular rows x columns (C colour channels, optional).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from visage.model.features.direction import CameraDirection
from visage.model.features.equirect import equirect_direction

ANALYSIS_WIDTH = 256  # columns the motion is measured on at most (1.4° per column)
DEFAULT_CAP_RADIUS_DEG = 15.0  # smoothing: about the size of an object that fills part of a 90° view
# The dataset's pitch units reach β = 89° (e = 0) and fold β = −91° to −89° (features/direction.py).
MODEL_MAX_PITCH_DEG = 89.0
STILL_MOTION = 0.02  # largest |difference| per frame pair (grey in [0, 1]; 5 of 255 levels) of a still window
_LUMA = np.array([0.299, 0.587, 0.114])


class LookDirectionError(ValueError):
    """Frames or settings the motion direction cannot be computed from."""


def motion_map(frames: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Summed absolute frame-to-frame difference of the grey frames, at most ANALYSIS_WIDTH columns wide.

    Args:
        frames: ``[F, H, W, 3]`` RGB or ``[F, H, W]`` grey equirectangular frames; integer frames are
            scaled by their dtype's maximum, float frames taken as [0, 1].

    Returns:
        ``[h, w]`` float64 (``w = W / k`` for the smallest integer k that brings it to ANALYSIS_WIDTH or
        below, ``h = H / k``); all zeros for a single frame.
    """
    array = _checked_frames(frames)
    height, width = array.shape[1:3]
    factor = max(1, math.ceil(width / ANALYSIS_WIDTH))
    h, w = height // factor, width // factor
    if h < 2 or w < 2:
        raise LookDirectionError(f"panoramas of {width} x {height} pixels are too small")
    motion = np.zeros((h, w))
    previous = None
    for frame in array:  # one frame at a time: a window of full-size panoramas stays in uint8
        small = _grey(frame)[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))
        if previous is not None:
            motion += np.abs(small - previous)
        previous = small
    return motion  # [h, w]


def motion_direction(
    motion: npt.ArrayLike,
    *,
    cap_radius_deg: float = DEFAULT_CAP_RADIUS_DEG,
    max_pitch_deg: float = MODEL_MAX_PITCH_DEG,
    frame_pairs: int = 1,
) -> CameraDirection | None:
    """The direction of the most motion in an equirectangular motion map (steps 2-4 above).

    Args:
        motion: ``[H, W]`` non-negative motion per pixel (:func:`motion_map`).
        cap_radius_deg: radius of the smoothing cap, in (0, 90].
        max_pitch_deg: the returned pitch is clamped to ``±max_pitch_deg`` (in [0, 90]).
        frame_pairs: how many frame differences ``motion`` sums, to tell a still window apart.

    Returns:
        The direction, or None when no pixel's motion per frame pair reaches STILL_MOTION (compression
        noise of a still picture stays below it).
    """
    m = np.asarray(motion, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2 or m.shape[1] < 2 or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise LookDirectionError(f"expected a finite, non-negative motion map [H, W], got shape {m.shape}")
    if not 0.0 < cap_radius_deg <= 90.0:
        raise LookDirectionError(f"cap_radius_deg must lie in (0, 90], got {cap_radius_deg}")
    if not 0.0 <= max_pitch_deg <= 90.0:
        raise LookDirectionError(f"max_pitch_deg must lie in [0, 90], got {max_pitch_deg}")
    if m.max() < STILL_MOTION * max(frame_pairs, 1):
        return None
    height, width = m.shape
    azimuth, elevation = equirect_direction(
        np.arange(width)[None, :], np.arange(height)[:, None], width, height
    )  # [1, W], [H, 1]
    weighted = m * np.cos(elevation)  # [H, W]
    radius = math.radians(cap_radius_deg)
    sums = _cap_sums(weighted, elevation[:, 0], radius)  # [H, W]
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    rays = _unit_vectors(np.broadcast_to(azimuth, m.shape), np.broadcast_to(elevation, m.shape))  # [H, W, 3]
    centre = rays[row, col]
    inside = rays @ centre >= math.cos(radius)  # [H, W]
    mean = (weighted[inside][:, None] * rays[inside]).sum(axis=0)  # [3]
    if np.linalg.norm(mean) < 1e-12:  # motion spread evenly around the cap: its centre
        mean = centre
    yaw = math.degrees(math.atan2(mean[1], mean[0]))
    pitch = math.degrees(math.atan2(mean[2], math.hypot(mean[0], mean[1])))
    return CameraDirection(yaw, min(max(pitch, -max_pitch_deg), max_pitch_deg))


def look_direction(
    frames: npt.ArrayLike,
    *,
    cap_radius_deg: float = DEFAULT_CAP_RADIUS_DEG,
    max_pitch_deg: float = MODEL_MAX_PITCH_DEG,
) -> CameraDirection | None:
    """The direction of the most motion over a window's equirectangular frames; None if nothing moves.

    Args:
        frames: ``[F, H, W, 3]`` or ``[F, H, W]`` frames of one window (see :func:`motion_map`).
        cap_radius_deg, max_pitch_deg: as in :func:`motion_direction`.
    """
    frames = np.asarray(frames)
    return motion_direction(
        motion_map(frames),
        cap_radius_deg=cap_radius_deg,
        max_pitch_deg=max_pitch_deg,
        frame_pairs=len(frames) - 1,
    )


def _checked_frames(frames: npt.ArrayLike) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] != 3) or not len(array):
        raise LookDirectionError(f"expected frames [F, H, W, 3] or [F, H, W], got shape {array.shape}")
    return array


def _grey(frame: np.ndarray) -> npt.NDArray[np.float64]:
    """``[H, W]`` luma in [0, 1] of one ``[H, W, 3]`` or ``[H, W]`` frame."""
    scale = float(np.iinfo(frame.dtype).max) if np.issubdtype(frame.dtype, np.integer) else 1.0
    values = frame.astype(np.float64) / scale
    return values @ _LUMA if frame.ndim == 3 else values


def _unit_vectors(azimuth: np.ndarray, elevation: np.ndarray) -> npt.NDArray[np.float64]:
    """``[..., 3]`` unit vectors (x front, y left, z up) of directions in radians."""
    cos_el = np.cos(elevation)
    return np.stack([cos_el * np.cos(azimuth), cos_el * np.sin(azimuth), np.sin(elevation)], axis=-1)


def _cap_sums(
    weighted: npt.NDArray[np.float64], elevations: npt.NDArray[np.float64], radius: float
) -> npt.NDArray[np.float64]:
    """Sum of ``weighted`` [H, W] over the spherical cap of ``radius`` around every pixel centre.

    A pixel of row ``j`` lies in the cap around a pixel of row ``i`` when the azimuth difference Δ meets
    ``cos Δ ≥ (cos r − sin e_i sin e_j) / (cos e_i cos e_j)``: the same number of columns either side
    for the whole row pair, one circular box sum.
    """
    height, width = weighted.shape
    step = 2 * math.pi / width
    sums = np.zeros_like(weighted)
    totals = weighted.sum(axis=1)  # [H]
    sin_el, cos_el = np.sin(elevations), np.cos(elevations)
    for i in range(height):
        for j in range(height):
            if abs(elevations[i] - elevations[j]) > radius:
                continue
            denominator = cos_el[i] * cos_el[j]
            bound = (math.cos(radius) - sin_el[i] * sin_el[j]) / denominator if denominator > 0 else -2.0
            if bound <= -1.0:
                sums[i] += totals[j]
                continue
            half = int(math.acos(min(bound, 1.0)) / step)  # columns either side within the cap
            sums[i] += _circular_box_sum(weighted[j], half)
    return sums


def _circular_box_sum(row: npt.NDArray[np.float64], half: int) -> npt.NDArray[np.float64]:
    """``out[x] = sum(row[x - half .. x + half])`` with the row's ends joined."""
    width = len(row)
    if 2 * half + 1 >= width:
        return np.full(width, row.sum())
    padded = np.concatenate([row[width - half :], row, row[:half]])  # [W + 2 half]
    running = np.concatenate([[0.0], np.cumsum(padded)])
    return running[2 * half + 1 :] - running[:width]
