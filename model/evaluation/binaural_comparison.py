"""Interaural cues of two binaural renderers for a source swept around the head.

Why: ``visage binaural`` has the project's spherical head and YouTube's decoder; choosing the default,
and telling a user how far the preview is from what YouTube plays, needs their cues side by side. A
noise burst is encoded (AmbiX formulas, ``encode_mono``) at azimuths 0..345° in 15° steps, elevation 0,
rendered by each decoder for a listener facing the front, and measured:

* ILD: left-minus-right level in dB, broadband and above 1.5 kHz (where the head shadows);
* ITD: the lag of the right ear behind the left below 1.5 kHz, from the cross-correlation peak refined
  to a fraction of a sample by a parabola through its neighbours, in µs (positive: left ear first);
* front/back: how much more high-band (> 4 kHz) energy, both ears together, a source in front gives
  than the same source behind (dB): the spectral cue that tells them apart, where ILD and ITD cannot;
* Woodworth's ITD of a rigid sphere of radius 8.75 cm with ears at ±90° as an independent reference:
  ``(a / c)(θ + sin θ)`` with θ the source's lateral angle (``asin(sin az)``).

Pure: decoders and a burst in, rows out. Shapes: N samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfiltfilt

from visage.model.audio.ambisonics import encode_mono
from visage.model.audio.binaural import LEFT, RIGHT, BinauralDecoder, render_binaural

SPLIT_HZ = 1500.0  # below: time cues (ITD); above: level cues (ILD from the head shadow)
FRONT_BACK_HZ = 4000.0  # above: where the pinna (or the spherical head's rear shelf) tells front from back
HEAD_RADIUS_M = 0.0875
SPEED_OF_SOUND = 343.0
_MAX_LAG_S = 0.0015  # a head is under 1 ms across; search a little further


@dataclass(frozen=True)
class EarCues:
    """One renderer's cues for one source direction."""

    azimuth_deg: float
    ild_db: float  # broadband, left minus right
    ild_high_db: float  # above SPLIT_HZ
    itd_us: float  # right ear's lag behind the left below SPLIT_HZ


def noise_burst(sample_rate: int, seconds: float = 0.5, seed: int = 0) -> npt.NDArray[np.float64]:
    """White noise with 10-ms raised-cosine ends, peak about 0.3."""
    rng = np.random.default_rng(seed)
    burst = rng.standard_normal(int(sample_rate * seconds)) * 0.1
    ramp = int(0.01 * sample_rate)
    fade = 0.5 * (1 - np.cos(np.linspace(0, np.pi, ramp)))
    burst[:ramp] *= fade
    burst[-ramp:] *= fade[::-1]
    return burst


def ear_cues(stereo: npt.NDArray[np.floating], sample_rate: int, azimuth_deg: float) -> EarCues:
    """ILD (broadband, high band) and ITD of a ``[2, N]`` (left, right) render."""
    left, right = (np.asarray(stereo[ear], np.float64) for ear in (LEFT, RIGHT))
    low = butter(4, SPLIT_HZ, "low", fs=sample_rate, output="sos")
    high = butter(4, SPLIT_HZ, "high", fs=sample_rate, output="sos")
    return EarCues(
        azimuth_deg,
        _level_ratio_db(left, right),
        _level_ratio_db(sosfiltfilt(high, left), sosfiltfilt(high, right)),
        1e6 * _lag_samples(sosfiltfilt(low, left), sosfiltfilt(low, right), sample_rate) / sample_rate,
    )


def woodworth_itd_us(azimuth_deg: float) -> float:
    """ITD of a rigid sphere (ears at ±90°) for a far source in the horizontal plane, in µs."""
    lateral = math.asin(math.sin(math.radians(azimuth_deg)))
    return 1e6 * HEAD_RADIUS_M / SPEED_OF_SOUND * (lateral + math.sin(lateral))


def sweep_cues(
    decoder: BinauralDecoder, burst: npt.NDArray[np.float64], azimuths_deg: npt.ArrayLike
) -> list[EarCues]:
    """Cues of the burst encoded at each azimuth (elevation 0), rendered for a listener facing front."""
    return [
        ear_cues(render_binaural(encode_mono(burst, math.radians(az), 0.0), decoder), decoder.sample_rate, az)
        for az in np.asarray(azimuths_deg, np.float64).tolist()
    ]


def front_back_db(decoder: BinauralDecoder, burst: npt.NDArray[np.float64]) -> float:
    """High-band energy of a source at 0° over the same source at 180° (both ears), in dB."""
    high = butter(4, FRONT_BACK_HZ, "high", fs=decoder.sample_rate, output="sos")

    def energy(azimuth_deg: float) -> float:
        stereo = render_binaural(encode_mono(burst, math.radians(azimuth_deg), 0.0), decoder)
        return float(np.sum(sosfiltfilt(high, np.asarray(stereo, np.float64), axis=-1) ** 2))

    return 10 * math.log10(energy(0.0) / energy(180.0))


def _level_ratio_db(left: npt.NDArray[np.float64], right: npt.NDArray[np.float64]) -> float:
    return 10 * math.log10(float(np.sum(left**2)) / max(float(np.sum(right**2)), 1e-30))


def _lag_samples(left: npt.NDArray[np.float64], right: npt.NDArray[np.float64], sample_rate: int) -> float:
    """How many samples the right signal lags the left, at the cross-correlation peak (sub-sample)."""
    max_lag = math.ceil(_MAX_LAG_S * sample_rate)
    n = len(left)
    core = slice(max_lag, n - max_lag)
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.array([np.dot(left[core], right[max_lag + lag : n - max_lag + lag]) for lag in lags])
    best = int(np.argmax(scores))
    if 0 < best < len(lags) - 1:  # parabola through the peak and its neighbours
        before, peak, after = scores[best - 1 : best + 2]
        curvature = before - 2 * peak + after
        offset = 0.5 * (before - after) / curvature if curvature < 0 else 0.0
        return float(lags[best] + offset)
    return float(lags[best])
