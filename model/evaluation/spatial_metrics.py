"""Spatial metrics of the paper: CC and AUC-Judd between audio energy maps on the sphere.

A first-order ambisonic clip is decoded on a 2-degree sphere grid, its RMS per direction is an
energy map (paper Eq. 1), the map is resampled with fewer points near the poles (sin-theta
sampling), and the maps of the prediction and the ground truth are compared with the saliency
metrics CC and AUC-Judd, over the whole clip and over 1-s and 0.2-s windows.

Two modes:

* ``"paper"`` reproduces the official evaluation (``evaluate_spatial.py``), bugs included, so that
  numbers are comparable with the paper's tables: the decoding matrix weights the horizontal
  dipoles by sqrt(2) (which pulls peaks toward the horizon: a source at elevation 40 degrees peaks
  near 30.7 degrees), and AUC-Judd counts one fixation too few at each threshold.
* ``"corrected"`` decodes with true SN3D (so a source peaks at its own direction) and uses the
  standard MIT AUC-Judd.

Audio is AmbiX: ACN channel order W, Y, Z, X with SN3D normalisation, time-major ``[T, C]``.
Shapes: T samples, C = 4 channels, V windows, G = 90*180 grid points, N = 10312 sphere samples.
Everything here is pure: arrays in, arrays or numbers out; randomness only from a passed RNG.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from visage.model.audio.ambisonics import grid_degrees

Mode = Literal["paper", "corrected"]
Window = Literal["all", "1fps", "5fps"]
JitterRng = np.random.RandomState | np.random.Generator

SAMPLE_RATE = 16_000  # the evaluation resamples every clip to 16 kHz
CLIP_SECONDS = 5
GRID_STEP_DEG = 2.0
N_SPHERE_SAMPLES = 10_312  # sum over the 90 grid rows of round(180 sin(pi (row + 0.5) / 90))
JITTER_SCALE = 1e7  # the official AUC-Judd adds randn / 1e7 to break ties

_WINDOWS_PER_CLIP: dict[str, int] = {"all": 1, "1fps": CLIP_SECONDS, "5fps": 5 * CLIP_SECONDS}


def _check_mode(mode: str) -> None:
    if mode not in ("paper", "corrected"):
        raise ValueError(f"mode must be 'paper' or 'corrected', got {mode!r}")


def spherical_grid() -> tuple[np.ndarray, np.ndarray]:
    """Azimuths and elevations of the evaluation grid, in degrees, in the official order.

    Returns:
        ``phi`` [180]: azimuth 178, 176, ..., -180 (positive = left, ACN convention);
        ``nu`` [90]: elevation -90, -88, ..., 88. The grid is ``nu`` rows x ``phi`` columns,
        flattened row-major into G points. Energy maps are flipped upside down, so map row ``r``
        is elevation ``nu[::-1][r]`` (= 88 - 2r) and map column ``c`` is azimuth ``phi[c]``.
    """
    phi, elevations = grid_degrees(GRID_STEP_DEG)  # the one grid of the project, elevations descending
    return phi, np.flip(elevations)


def decoding_matrix(mode: Mode = "paper") -> np.ndarray:
    """First-order spherical harmonics on the grid: ``y = x @ M`` decodes audio to directions.

    Rows in ACN order: W = 1, Y = k cos(nu) sin(phi), Z = sin(nu), X = k cos(nu) cos(phi), with
    k = sqrt(2) in ``"paper"`` mode (the official normalisation factor misplaces a bracket) and
    k = 1 (true SN3D) in ``"corrected"`` mode.

    Returns:
        ``[C, G]`` float64.
    """
    _check_mode(mode)
    phi_deg, nu_deg = spherical_grid()
    phi_mesh, nu_mesh = np.meshgrid(phi_deg / 180.0 * np.pi, nu_deg / 180.0 * np.pi)  # [90, 180] each
    phi, nu = phi_mesh.reshape(-1), nu_mesh.reshape(-1)  # [G], row-major
    dipole = math.sqrt(2.0) if mode == "paper" else 1.0
    return np.stack(
        [
            np.ones_like(phi),
            dipole * np.cos(nu) * np.sin(phi),
            np.sin(nu),
            dipole * np.cos(nu) * np.cos(phi),
        ]
    )


def fit_length(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Truncate or zero-pad ``[T, C]`` audio to exactly the 5-s evaluation length, as float32.

    The official evaluation does this to every generated and ground-truth clip, so a model whose
    output is a few samples short is not penalised by a shape error.
    """
    n_samples = CLIP_SECONDS * sample_rate
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise ValueError(f"expected audio [T, C], got shape {audio.shape}")
    if audio.shape[0] >= n_samples:
        return audio[:n_samples]
    return np.pad(audio, ((0, n_samples - audio.shape[0]), (0, 0)))


def energy_maps(
    audio: np.ndarray,
    window: Window = "all",
    *,
    mode: Mode = "paper",
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """RMS of the decoded audio in every grid direction, per time window (paper Eq. 1).

    Computed as the quadratic form ``sqrt(m^T Cov m)`` with the 4x4 second-moment matrix of each
    window, which equals the RMS over time of ``x @ M`` but never materialises the official
    ``[T, G]`` intermediate (5 GB for one clip). The matrix and the result are rounded to float32
    like theirs, which keeps the maps within 3e-7 (relative) of the official ones.

    Args:
        audio: ``[T, C]`` AmbiX audio, T = 5 s at ``sample_rate`` (see `fit_length`).
        window: ``"all"`` (one map of the whole clip), ``"1fps"`` (five 1-s windows) or ``"5fps"``
            (twenty-five 0.2-s windows).
        mode: ``"paper"`` or ``"corrected"`` decoding (see `decoding_matrix`).
        sample_rate: of ``audio``; must be a multiple of 5 so the windows tile the clip.

    Returns:
        ``[V, 90, 180]`` float32, flipped upside down: row 0 is elevation 88 degrees, column 89
        is the front (see `spherical_grid`).
    """
    if window not in _WINDOWS_PER_CLIP:
        raise ValueError(f"window must be one of {sorted(_WINDOWS_PER_CLIP)}, got {window!r}")
    if sample_rate % 5:
        raise ValueError(f"sample_rate must be a multiple of 5, got {sample_rate}")
    n_samples = CLIP_SECONDS * sample_rate
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape != (n_samples, 4):
        raise ValueError(f"expected audio [{n_samples}, 4] (use fit_length), got {audio.shape}")
    n_windows = _WINDOWS_PER_CLIP[window]
    frames = audio.astype(np.float64).reshape(n_windows, -1, 4)  # [V, T/V, C]
    moments = np.einsum("vti,vtj->vij", frames, frames) / frames.shape[1]  # [V, C, C]
    matrix = decoding_matrix(mode).astype(np.float32).astype(np.float64)  # [C, G]; theirs is float32
    power = np.einsum("vij,jg->vig", moments, matrix)  # [V, C, G]
    power = np.einsum("vig,ig->vg", power, matrix)  # [V, G]
    rms = np.sqrt(np.clip(power, 0.0, None)).astype(np.float32)  # clip: rounding below 0
    phi, nu = spherical_grid()
    return rms.reshape(n_windows, nu.size, phi.size)[:, ::-1, :].copy()  # [V, 90, 180]


@functools.lru_cache(maxsize=4)
def _sphere_sample_points(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, left column and fraction of every sin-theta sample point (``er_sphere_sample``)."""
    rows, cols = [], []
    for row in range(height):
        n_points = np.round(width * np.sin(np.pi * (row + 0.5) / height))
        cols.append(np.arange(n_points) * (width - 0.5 * (width / n_points)) / n_points)
        rows.append(np.full(int(n_points), row))
    x = np.concatenate(cols)  # [N]
    left = np.minimum(np.floor(x).astype(np.int64), width - 2)
    return np.concatenate(rows), left, x - left


def sphere_sample(maps: np.ndarray) -> np.ndarray:
    """Resample equirectangular maps with ``round(W sin(theta))`` points per row.

    Equirectangular rows near the poles cover little of the sphere, so sampling every row at
    full width would weight the poles far too much; the paper samples fewer points there.
    Row ``e`` (colatitude theta = pi (e + 0.5) / H) gets S = round(W sin theta) points at
    columns ``k (W - W / (2 S)) / S``, linearly interpolated along the row exactly as
    ``np.interp`` does.

    Args:
        maps: ``[..., H, W]`` (``[..., 90, 180]`` for `energy_maps`).

    Returns:
        ``[..., N]`` float64, rows concatenated top to bottom (N = 10312 for 90 x 180).
    """
    maps = np.asarray(maps, dtype=np.float64)
    rows, left, frac = _sphere_sample_points(maps.shape[-2], maps.shape[-1])
    start = maps[..., rows, left]
    return (maps[..., rows, left + 1] - start) * frac + start


def correlation(pred: np.ndarray, gt: np.ndarray) -> float:
    """CC: Pearson correlation of the z-scored maps (population std); NaN if either is flat.

    Args:
        pred, gt: ``[N]`` sphere-sampled maps.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"maps differ in shape: {pred.shape} vs {gt.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.asarray(pred, dtype=np.float64)
        b = np.asarray(gt, dtype=np.float64)
        a = (a - np.mean(a)) / np.std(a)
        b = (b - np.mean(b)) / np.std(b)
        a = a - np.mean(a)
        b = b - np.mean(b)
        return float(np.sum(a * b) / float(np.sqrt(np.sum(a**2) * np.sum(b**2))))


def auc_judd(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    mode: Mode = "paper",
    jitter: JitterRng | None = None,
) -> float:
    """AUC-Judd: how well ``pred`` ranks the loudest directions of ``gt`` above the rest.

    "Fixations" are the points where ``gt > max(gt) - std(gt)``. Each fixation's prediction value
    is a threshold; the ROC curve pairs the fraction of fixations above it (true positives) with
    the fraction of other points above it (false positives). ``"paper"`` mode uses the official
    count ``k`` at the k-th threshold (0-based) where the MIT definition (``"corrected"``) has
    ``k + 1``.

    Args:
        pred, gt: ``[N]`` sphere-sampled maps.
        mode: ``"paper"`` or ``"corrected"``.
        jitter: RNG for the official tie-breaking noise ``standard_normal(N) / 1e7`` added to
            ``pred``; None adds none. The official script draws it from numpy's unseeded global
            RNG: ``np.random.RandomState(seed)`` reproduces a run after ``np.random.seed(seed)``.

    Returns:
        The area in [0, 1]; NaN if ``pred`` is flat (the official script exits there).
    """
    _check_mode(mode)
    if pred.shape != gt.shape or pred.ndim != 1:
        raise ValueError(f"expected two [N] maps, got {pred.shape} and {gt.shape}")
    saliency = np.asarray(pred, dtype=np.float64)
    if jitter is not None:
        saliency = saliency + jitter.standard_normal(saliency.shape[0]) / JITTER_SCALE
    span = np.max(saliency) - np.min(saliency)
    if not span > 0:
        return math.nan
    saliency = (saliency - np.min(saliency)) / span
    gt = np.asarray(gt, dtype=np.float64)
    at_fixations = saliency[gt > np.max(gt) - np.std(gt)]
    n_fix, n_points = at_fixations.size, saliency.size

    thresholds = np.sort(at_fixations)[::-1]  # [n_fix], descending
    above = n_points - np.searchsorted(np.sort(saliency), thresholds, side="left")  # #(S >= thr)
    hits = np.arange(n_fix) + (1 if mode == "corrected" else 0)
    tp = np.concatenate([[0.0], hits / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - hits) / (n_points - n_fix), [1.0]])
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2.0))  # trapezoid of tp over fp


@dataclass(frozen=True)
class WindowScores:
    """Mean CC and AUC-Judd over the windows of one clip where both are defined."""

    cc: float
    auc: float


def score_windows(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    mode: Mode = "paper",
    jitter: JitterRng | None = None,
) -> WindowScores:
    """CC and AUC-Judd per window, averaged over the windows where neither is NaN.

    Windows are scored in order, drawing jitter for each AUC in turn (as ``process_fps`` does).

    Args:
        pred, gt: ``[V, N]`` sphere-sampled maps of the same windows.
        mode, jitter: as in `auc_judd`.

    Returns:
        The means; NaN if no window is defined (a silent clip).
    """
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"expected two [V, N] map stacks, got {pred.shape} and {gt.shape}")
    ccs, aucs = [], []
    for pred_window, gt_window in zip(pred, gt, strict=True):
        cc = correlation(pred_window, gt_window)
        auc = auc_judd(pred_window, gt_window, mode=mode, jitter=jitter)
        if not (math.isnan(cc) or math.isnan(auc)):
            ccs.append(cc)
            aucs.append(auc)
    if not ccs:
        return WindowScores(math.nan, math.nan)
    return WindowScores(sum(ccs) / len(ccs), sum(aucs) / len(aucs))


@dataclass(frozen=True)
class SphereMaps:
    """Sphere-sampled energy maps of one clip, as the official ground-truth ``.npz`` stores them.

    Attributes:
        map_all: ``[N]`` whole clip (their key ``map``).
        map_1fps: ``[5, N]`` 1-s windows.
        map_5fps: ``[25, N]`` 0.2-s windows.
    """

    map_all: np.ndarray
    map_1fps: np.ndarray
    map_5fps: np.ndarray


def sphere_maps(audio: np.ndarray, *, mode: Mode = "paper", sample_rate: int = SAMPLE_RATE) -> SphereMaps:
    """All three map sets of a clip: `fit_length`, then `energy_maps`, then `sphere_sample`.

    Args:
        audio: ``[T, C]`` AmbiX audio of any length (truncated or zero-padded to 5 s).
        mode: decoding, see `decoding_matrix`.
        sample_rate: of ``audio``.
    """
    audio = fit_length(audio, sample_rate)

    def sampled(window: Window) -> np.ndarray:
        return sphere_sample(energy_maps(audio, window, mode=mode, sample_rate=sample_rate))

    return SphereMaps(sampled("all")[0], sampled("1fps"), sampled("5fps"))


@dataclass(frozen=True)
class SpatialScores:
    """The six spatial numbers of the paper's tables, for one clip or averaged over clips."""

    cc_all: float
    auc_all: float
    cc_1fps: float
    auc_1fps: float
    cc_5fps: float
    auc_5fps: float


def score_clip(
    pred: SphereMaps,
    gt: SphereMaps,
    *,
    mode: Mode = "paper",
    jitter: JitterRng | None = None,
) -> SpatialScores:
    """Score one generated clip against its ground truth, as ``evaluate_spatial.py`` does.

    Args:
        pred, gt: maps of the generated and the ground-truth clip (same ``mode``).
        mode, jitter: as in `auc_judd`; the jitter is drawn for the whole clip first, then per
            1-s window, then per 0.2-s window.
    """
    cc_all = correlation(pred.map_all, gt.map_all)
    auc_all = auc_judd(pred.map_all, gt.map_all, mode=mode, jitter=jitter)
    per_second = score_windows(pred.map_1fps, gt.map_1fps, mode=mode, jitter=jitter)
    per_fifth = score_windows(pred.map_5fps, gt.map_5fps, mode=mode, jitter=jitter)
    return SpatialScores(
        cc_all=cc_all,
        auc_all=auc_all,
        cc_1fps=per_second.cc,
        auc_1fps=per_second.auc,
        cc_5fps=per_fifth.cc,
        auc_5fps=per_fifth.auc,
    )


def mean_scores(clips: Sequence[SpatialScores]) -> SpatialScores:
    """Unweighted mean of every field over clips (the reported numbers); NaN propagates."""
    if not clips:
        raise ValueError("no clips to average")

    def mean(field: str) -> float:
        values = [getattr(clip, field) for clip in clips]
        return sum(values) / len(values)

    return SpatialScores(
        cc_all=mean("cc_all"),
        auc_all=mean("auc_all"),
        cc_1fps=mean("cc_1fps"),
        auc_1fps=mean("auc_1fps"),
        cc_5fps=mean("cc_5fps"),
        auc_5fps=mean("auc_5fps"),
    )
