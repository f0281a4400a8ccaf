"""Integrated loudness (ITU-R BS.1770) of a result, and loudness normalisation that keeps directions.

Why: generated clips come out at arbitrary levels; editors and YouTube (which plays spatial audio
at about −14 LUFS) need the loudness, and a way to reach a target. An ambisonic file has no
loudspeaker channels to meter, so the omnidirectional W channel stands for the sound field (it is
what a single microphone at the listening position would record), and the binaural preview is
metered as the stereo programme a headphone listener hears.

Normalisation scales all four channels by one gain. Scaling channels separately would change the
ratio of W to X, Y, Z and so move (or blur) every source.

``pyloudnorm`` is imported on first use, so that importing this module stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .ambisonics import Acn, AmbisonicsError

BLOCK_SECONDS = 0.4  # BS.1770 gating block: shorter audio has no integrated loudness


class LoudnessError(ValueError):
    """Audio whose loudness cannot be measured (too short, silent) or a target that cannot be reached."""


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness of a result, in LUFS; None where it cannot be measured.

    Attributes:
        w_lufs: the W (omnidirectional) channel, metered as mono.
        binaural_lufs: the binaural preview as stereo, or None when none was rendered.
        w_peak: largest absolute sample of W (linear, 1.0 = full scale).
    """

    w_lufs: float | None
    binaural_lufs: float | None
    w_peak: float

    def as_metadata(self) -> dict[str, Any]:
        """JSON-ready keys for a result's sidecar (``{"loudness": ...}``)."""
        return {
            "standard": "ITU-R BS.1770-4 integrated (pyloudnorm)",
            "w_lufs": _rounded(self.w_lufs),
            "binaural_lufs": _rounded(self.binaural_lufs),
            "w_peak_dbfs": _rounded(20 * math.log10(self.w_peak)) if self.w_peak > 0 else None,
        }


class Normalized(NamedTuple):
    """Audio scaled to a loudness target."""

    audio: npt.NDArray[np.float32]  # [4, N]
    gain_db: float
    w_lufs_before: float


def integrated_loudness(audio: npt.ArrayLike, sample_rate: int) -> float | None:
    """BS.1770 integrated loudness of ``[C, N]`` audio (C = 1 or 2), or None if too short or silent.

    Args:
        audio: ``[N]`` mono or ``[C, N]`` channels-first.
        sample_rate: in Hz.

    Returns:
        LUFS, or None for audio shorter than one 400-ms block or below the −70 LUFS gate.
    """
    samples = np.asarray(audio, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[None, :]
    if samples.ndim != 2 or samples.shape[0] not in (1, 2):
        raise LoudnessError(f"expected mono [N] or stereo [2, N] audio, got shape {samples.shape}")
    if samples.shape[1] < BLOCK_SECONDS * sample_rate:
        return None
    meter = _meter(sample_rate)
    value = float(meter.integrated_loudness(np.ascontiguousarray(samples.T)))  # [N, C]
    return value if math.isfinite(value) else None


def measure_loudness(foa: npt.ArrayLike, sample_rate: int, binaural: npt.ArrayLike | None = None) -> Loudness:
    """Loudness of an AmbiX result (its W channel) and, if given, of its binaural preview.

    Args:
        foa: ``[4, N]`` AmbiX.
        sample_rate: in Hz (of both signals).
        binaural: ``[2, N]`` preview (left, right), or None.

    Returns:
        The measurements.
    """
    array = np.asarray(foa)
    if array.ndim != 2 or array.shape[0] != 4:
        raise AmbisonicsError(f"expected first-order AmbiX [4, N], got shape {array.shape}")
    w = array[Acn.W].astype(np.float64)
    return Loudness(
        w_lufs=integrated_loudness(w, sample_rate),
        binaural_lufs=None if binaural is None else integrated_loudness(binaural, sample_rate),
        w_peak=float(np.abs(w).max()) if w.size else 0.0,
    )


def measure_loudness_if_possible(
    foa: npt.ArrayLike, sample_rate: int, binaural: npt.ArrayLike | None = None
) -> Loudness | None:
    """:func:`measure_loudness`, or None when pyloudnorm is missing (metadata is then just poorer)."""
    try:
        return measure_loudness(foa, sample_rate, binaural)
    except ModuleNotFoundError:
        return None


def normalize_loudness(foa: npt.ArrayLike, sample_rate: int, target_lufs: float) -> Normalized:
    """Scale all four channels together so that W reaches ``target_lufs``.

    Args:
        foa: ``[4, N]`` AmbiX.
        sample_rate: in Hz.
        target_lufs: e.g. −14 (YouTube) or −23 (EBU R 128).

    Returns:
        The scaled audio and the gain applied. Peaks may exceed 1.0 after a large gain; the WAV
        writer clips and warns, or write float.

    Raises:
        LoudnessError: the target is not finite, or W is too short or silent to measure.
    """
    if not math.isfinite(target_lufs):
        raise LoudnessError(f"target loudness must be a finite LUFS value, got {target_lufs}")
    array = np.asarray(foa, dtype=np.float32)
    before = measure_loudness(array, sample_rate).w_lufs
    if before is None:
        raise LoudnessError(
            f"cannot normalise: W is silent or shorter than {BLOCK_SECONDS} s, so it has no loudness"
        )
    gain_db = target_lufs - before
    scaled = (array * np.float32(10.0 ** (gain_db / 20))).astype(np.float32)  # one gain: [4, N]
    return Normalized(scaled, gain_db, before)


def _meter(sample_rate: int) -> Any:
    try:
        import pyloudnorm
    except ImportError:
        raise ModuleNotFoundError(
            "loudness measurement needs pyloudnorm (a dependency of visage): pip install pyloudnorm",
            name="pyloudnorm",
        ) from None
    return pyloudnorm.Meter(sample_rate, block_size=BLOCK_SECONDS)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
