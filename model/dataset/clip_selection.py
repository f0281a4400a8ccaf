"""Which 5-s clips of a 360° recording become training clips, and where their camera looks.

YT-Ambigen's curation (paper §4), as far as it can be done without their classifiers: every whole
second of a recording is *valid* when its omnidirectional level (RMS of W) reaches a threshold and no
channel is dead (the paper drops audio whose mean absolute amplitude in a second is below 1e-20 on any
channel, a sign of fake "ambisonics" with empty channels); consecutive 5-s windows on whole seconds
(``<video>_<second>``, as the official clip ids) are kept when more than 3 of their seconds are valid.
The camera of a kept clip looks at the peak of the clip's audio energy map (paper Eq. 1), i.e. at the
dominant sound. The paper gives no RMS threshold; ours (:data:`DEFAULT_RMS_THRESHOLD_DB`) is a choice.

The energy map here is true SN3D (``ambisonics.sphere_energy_map``), so a single source peaks at its
own direction; the official evaluation's √2 dipole weighting would pull peaks toward the horizon.

Pure: arrays in, values out. Shapes: C = 4 AmbiX channels (W, Y, Z, X), N samples, S whole seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visage.model.audio.ambisonics import peak_direction, sphere_energy_map, spherical_grid
from visage.model.features.direction import CameraDirection

DEFAULT_RMS_THRESHOLD_DB = -50.0  # dBFS of W per second; our choice (the paper does not say)
DEAD_CHANNEL_LEVEL = 1e-20  # mean |x| per second below which a channel counts as empty (paper §4)
GRID_STEP_DEG = 2.0  # the dataset's direction units are 2°


@dataclass(frozen=True)
class SelectionRules:
    """How clips are cut and kept.

    Attributes:
        clip_seconds: whole seconds per clip (the model's 5-s window).
        min_valid_seconds: a clip is kept when it has *more* valid seconds than this (paper: > 3 s).
        rms_threshold_db: per-second RMS of W, in dB relative to full scale, for a second to be valid.
    """

    clip_seconds: int = 5
    min_valid_seconds: int = 3
    rms_threshold_db: float = DEFAULT_RMS_THRESHOLD_DB

    def __post_init__(self) -> None:
        if self.clip_seconds < 1:
            raise ValueError(f"clip_seconds must be >= 1, got {self.clip_seconds}")
        if not 0 <= self.min_valid_seconds < self.clip_seconds:
            raise ValueError(f"min_valid_seconds must lie in [0, clip_seconds), got {self.min_valid_seconds}")
        if not math.isfinite(self.rms_threshold_db):
            raise ValueError(f"rms_threshold_db must be finite, got {self.rms_threshold_db}")


def valid_seconds(foa: npt.ArrayLike, sample_rate: int, rms_threshold_db: float) -> npt.NDArray[np.bool_]:
    """Per whole second: is W loud enough and is every channel alive?

    Args:
        foa: ``[4, N]`` AmbiX audio; a trailing partial second is ignored.
        sample_rate: of ``foa``.
        rms_threshold_db: minimum RMS of W in dBFS.

    Returns:
        ``[S]`` bool with S = N // sample_rate.
    """
    audio = np.asarray(foa, dtype=np.float64)
    if audio.ndim != 2 or audio.shape[0] != 4:
        raise ValueError(f"expected AmbiX audio [4, N], got shape {audio.shape}")
    seconds = audio.shape[1] // sample_rate
    per_second = audio[:, : seconds * sample_rate].reshape(4, seconds, sample_rate)  # [C, S, sr]
    rms_w = np.sqrt(np.mean(per_second[0] ** 2, axis=-1))  # [S]
    alive = np.all(np.mean(np.abs(per_second), axis=-1) >= DEAD_CHANNEL_LEVEL, axis=0)  # [S]
    return (rms_w >= 10.0 ** (rms_threshold_db / 20.0)) & alive


def clip_starts(valid: npt.ArrayLike, rules: SelectionRules) -> list[int]:
    """Start seconds of the kept clips: consecutive windows on whole seconds with enough valid seconds."""
    flags = np.asarray(valid, dtype=bool)
    starts = range(0, len(flags) - rules.clip_seconds + 1, rules.clip_seconds)
    return [s for s in starts if int(flags[s : s + rules.clip_seconds].sum()) > rules.min_valid_seconds]


def dominant_direction(foa: npt.ArrayLike) -> CameraDirection:
    """Camera direction toward the peak of the clip's energy map (2° grid, true SN3D)."""
    grid = spherical_grid(GRID_STEP_DEG)
    peak = peak_direction(sphere_energy_map(foa, grid.azimuths, grid.elevations), grid)
    return CameraDirection(math.degrees(peak.azimuth), math.degrees(peak.elevation))
