"""Binaural rendering of first-order AmbiX for headphones: a virtual-loudspeaker decode through HRTFs.

Why: every editor plays a 4-channel AmbiX file as quad speakers, so nobody can judge a result by ear
on a laptop. This renders it to two ears, for a listener who may turn their head.

How (the usual FOA-to-binaural route, ``hosts_and_formats.md`` §6.3): the sound field is decoded to
eight virtual loudspeakers on the corners of a cube (azimuth ±45°/±135°, elevation ±35.26°, a
spherical 3-design, so a first-order decode is exact there), and each feed reaches each ear
through a head-related transfer function. Decode and HRTFs fold into four SH-domain filters per ear
(``[C, 2, K]``), so rendering is eight FFT convolutions whatever the number of loudspeakers.

The decode is dual-band: the basic (mode-matching) weights below about ``c / (2π·a)`` ≈ 620 Hz,
which reproduce the velocity vector and hence the interaural time difference at a centred head, and
max-rE weights above, which concentrate energy toward the source (Daniel 2001; for order 1 in 3-D
the dipole weight is 1/√3), energy-matched so the timbre does not step at the crossover.

HRTFs come from either
* ``spherical_head_hrtfs``: an analytic rigid spherical head (no download, no data files): the
  Brown-Duda one-pole/one-zero head shadow (Brown & Duda 1998, "A structural model for binaural
  sound synthesis"), the Woodworth interaural delay, and a rear high-shelf that stands in for the
  pinna's shadowing of sound from behind (a sphere alone sounds the same in front and behind);
* ``hrtfs_from_hrirs``: measured HRIRs (e.g. a SOFA file read by ``visage.model.audio.sofa``), taking the
  measurement nearest each cube corner.

Conventions are AmbiX (``visage.model.audio.ambisonics``): azimuth positive to the LEFT, elevation up,
radians in the functions here. Output channel 0 is the left ear.

Shapes: C ambisonic channels (4), N samples, L virtual loudspeakers, F frequency bins, K filter taps,
M measured HRIR directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.signal import oaconvolve

from .ambisonics import AmbisonicsError, rotate, sh_gains

LEFT, RIGHT = 0, 1
_CUBE_ELEVATION = math.atan(1 / math.sqrt(2))  # 35.26°: the cube's corners seen from its centre
_MAX_RE_GAIN = 1 / math.sqrt(3)  # 3-D max-rE dipole weight at order 1: largest root of P2
_FILTER_SECONDS = 0.005  # analytic HRIRs: 5 ms holds delay, head shadow and shelf with room to spare
_DESIGN_OVERSAMPLING = 4  # frequency-sampled design on a 4x longer FFT, then windowed: no wrap-around
# Basic decode below, max-rE above c / (2π a) of an average head (620 Hz): up to there a first-order
# field is accurate over the whole head, so its velocity vector (hence the ITD) is right.
_CROSSOVER_HZ = 343.0 / (2 * math.pi * 0.0875)


class BinauralError(ValueError):
    """HRTF data or rendering parameters that cannot give a binaural render."""


@dataclass(frozen=True, kw_only=True)
class HeadModel:
    """Parameters of the analytic spherical head.

    Attributes:
        radius_m: head radius; 8.75 cm is the average adult value Brown & Duda use.
        speed_of_sound: in m/s.
        ear_azimuth_deg: ears sit this far from the front on each side; 100° puts them 10° behind
            the frontal plane, as real ears are, which also makes front and back differ slightly.
        min_shadow_gain: Brown-Duda α_min, the head shadow's high-frequency gain opposite the ear.
        min_shadow_angle_deg: Brown-Duda θ_min, the incidence angle of deepest shadow (not 180°:
            waves creeping round the sphere meet behind it, the "bright spot").
        rear_shelf_db: high-frequency attenuation of a source straight behind (pinna shadow).
        rear_shelf_hz: corner frequency of that shelf.
    """

    radius_m: float = 0.0875
    speed_of_sound: float = 343.0
    ear_azimuth_deg: float = 100.0
    min_shadow_gain: float = 0.1
    min_shadow_angle_deg: float = 150.0
    rear_shelf_db: float = 10.0
    rear_shelf_hz: float = 2000.0


class Hrtfs(NamedTuple):
    """Head-related transfer functions of a set of virtual loudspeakers.

    ``responses`` are on the FFT grid ``np.fft.rfftfreq(n_fft, 1 / sample_rate)``; their impulse
    responses start ``latency`` samples late (propagation delay plus a causal margin), which the
    renderer removes again so the output stays aligned with the input.
    """

    responses: npt.NDArray[np.complex128]  # [L, 2, F] left, right
    azimuths: npt.NDArray[np.float64]  # [L] radians
    elevations: npt.NDArray[np.float64]  # [L] radians
    sample_rate: int
    n_fft: int
    taps: int  # useful impulse-response length K
    latency: int  # samples


class BinauralDecoder(NamedTuple):
    """SH-domain binaural filters: ear ``e`` hears ``Σ_c foa[c] ∗ filters[c, e]``."""

    filters: npt.NDArray[np.float64]  # [4, 2, K]
    sample_rate: int
    latency: int  # samples the filters delay the sound; removed by ``render_binaural``


def cube_layout() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Directions of the eight virtual loudspeakers (a cube's corners), as (azimuths, elevations).

    Returns:
        ``[8]`` azimuths and ``[8]`` elevations in radians: ±45° and ±135°, each at ±35.26°.
    """
    azimuths = np.deg2rad(np.array([45.0, -45.0, 135.0, -135.0] * 2))
    elevations = np.repeat([_CUBE_ELEVATION, -_CUBE_ELEVATION], 4)
    return azimuths, elevations


def spherical_head_hrtfs(
    azimuths: npt.ArrayLike, elevations: npt.ArrayLike, sample_rate: int, head: HeadModel | None = None
) -> Hrtfs:
    """Analytic HRTFs of a rigid spherical head with a rear pinna shelf, for far-field sources.

    Per ear, with θ the angle between the source and the ear's axis and ω0 = c / a:
    head shadow ``(1 + jα(θ)ω/2ω0) / (1 + jω/2ω0)``, ``α(θ) = 1 + α_min/2 + (1 − α_min/2)·cos(π·θ/θ_min)``
    (Brown & Duda 1998); Woodworth delay ``−(a/c)·cos θ`` for θ < 90° and ``(a/c)(θ − π/2)``
    beyond (the path round the sphere); and a shelf ``(1 + jgω/ωs) / (1 + jω/ωs)`` whose gain g
    falls to ``rear_shelf_db`` below 0 dB as the source moves from the side to straight behind.

    Args:
        azimuths: ``[L]`` radians, positive left.
        elevations: ``[L]`` radians, positive up.
        sample_rate: in Hz.
        head: model parameters (default ``HeadModel()``).

    Returns:
        ``Hrtfs`` with unit gain at 0 Hz for every direction and ear.
    """
    head = head or HeadModel()
    directions = _unit_vectors(azimuths, elevations)  # [L, 3]
    taps = 1 << math.ceil(math.log2(max(sample_rate * _FILTER_SECONDS, 16)))
    n_fft = _DESIGN_OVERSAMPLING * taps
    omega = 2 * np.pi * np.fft.rfftfreq(n_fft, 1 / sample_rate)  # [F]
    a_over_c = head.radius_m / head.speed_of_sound
    ear_az = math.radians(head.ear_azimuth_deg)
    ears = np.array([[math.cos(ear_az), math.sin(ear_az), 0.0], [math.cos(ear_az), -math.sin(ear_az), 0.0]])
    incidence = np.arccos(np.clip(directions @ ears.T, -1.0, 1.0))  # [L, 2]

    alpha_min, theta_min = head.min_shadow_gain, math.radians(head.min_shadow_angle_deg)
    alpha = (1 + alpha_min / 2) + (1 - alpha_min / 2) * np.cos(incidence / theta_min * np.pi)  # [L, 2]
    w = omega / (2 / a_over_c)  # ω / 2ω0, [F]
    shadow = (1 + 1j * alpha[..., None] * w) / (1 + 1j * w)  # [L, 2, F]

    # The earliest arrival (−a/c, at the ear's axis) plus a margin for the band-limited delay's
    # leading ripples sets the latency; every delay is then positive.
    latency = math.ceil(a_over_c * sample_rate) + taps // 16
    woodworth = np.where(incidence < np.pi / 2, -np.cos(incidence), incidence - np.pi / 2) * a_over_c
    delay = woodworth + latency / sample_rate  # [L, 2] seconds
    phase = np.exp(-1j * omega * delay[..., None])  # [L, 2, F]

    behind = np.clip(-directions[:, 0], 0.0, 1.0)  # [L]: 0 at the side or in front, 1 straight behind
    shelf_gain = 10.0 ** (-head.rear_shelf_db * behind / 20)  # [L]
    ws = omega / (2 * np.pi * head.rear_shelf_hz)  # [F]
    shelf = (1 + 1j * shelf_gain[:, None] * ws) / (1 + 1j * ws)  # [L, F]

    # A band-limited fractional delay rings at Nyquist (a sinc); fading the top of the band out
    # (cosine taper from 80 % of Nyquist) keeps that ringing from preceding the sound.
    nyquist_fraction = omega / omega[-1]
    taper = 0.5 * (1 + np.cos(np.pi * np.clip((nyquist_fraction - 0.8) / 0.2, 0.0, 1.0)))  # [F]
    responses = shadow * phase * shelf[:, None, :] * taper  # [L, 2, F]
    az, el = _angles(directions)
    return Hrtfs(responses, az, el, sample_rate, n_fft, taps, latency)


def hrtfs_from_hrirs(
    hrirs: npt.ArrayLike,
    azimuths: npt.ArrayLike,
    elevations: npt.ArrayLike,
    sample_rate: int,
    *,
    max_angle_deg: float = 20.0,
) -> Hrtfs:
    """HRTFs of the cube loudspeakers taken from measured HRIRs (nearest measurement to each corner).

    The decoder is then built for the directions actually measured, not the nominal corners, so an
    irregular set still decodes correctly. Responses are scaled so their mean low-frequency (below
    300 Hz) magnitude is 1, the level of the analytic head, whatever the measurement's gain.

    Args:
        hrirs: ``[M, 2, K]`` impulse responses, left ear first.
        azimuths: ``[M]`` radians of the measured directions, positive left (SOFA's convention too).
        elevations: ``[M]`` radians, positive up.
        sample_rate: of the HRIRs, in Hz; resample them to the audio's rate first.
        max_angle_deg: refuse a set with no measurement this close to a cube corner.

    Returns:
        ``Hrtfs`` of 8 loudspeakers.

    Raises:
        BinauralError: wrong shapes, or a set too sparse for the cube.
    """
    impulse = np.asarray(hrirs, dtype=np.float64)
    az = np.asarray(azimuths, dtype=np.float64)
    el = np.asarray(elevations, dtype=np.float64)
    if impulse.ndim != 3 or impulse.shape[1] != 2 or impulse.shape[2] < 2:
        raise BinauralError(f"expected HRIRs [M, 2, K] (left, right), got shape {impulse.shape}")
    if az.shape != (impulse.shape[0],) or el.shape != az.shape:
        raise BinauralError(
            f"need one azimuth and elevation per HRIR ({impulse.shape[0]}), got {az.shape} and {el.shape}"
        )
    if not np.isfinite(impulse).all():
        raise BinauralError("HRIRs contain NaN or infinite values")
    measured = _unit_vectors(az, el)  # [M, 3]
    corners = _unit_vectors(*cube_layout())  # [8, 3]
    cosines = corners @ measured.T  # [8, M]
    nearest = np.argmax(cosines, axis=1)  # [8]
    worst = math.degrees(math.acos(min(1.0, float(cosines[np.arange(8), nearest].min()))))
    if worst > max_angle_deg:
        raise BinauralError(
            f"the HRIR set has no measurement within {max_angle_deg:.0f}° of every cube corner "
            f"(worst {worst:.0f}°); a virtual-loudspeaker decode needs a set covering the sphere"
        )
    if len(set(nearest.tolist())) < len(nearest):
        raise BinauralError("the HRIR set is too sparse: two cube corners share one measurement")
    taps = impulse.shape[2]
    n_fft = _DESIGN_OVERSAMPLING * (1 << math.ceil(math.log2(taps)))
    responses = np.fft.rfft(impulse[nearest], n_fft, axis=-1)  # [8, 2, F]
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    low = np.abs(responses[..., (freqs > 0) & (freqs < 300.0)])
    level = float(low.mean()) if low.size else float(np.abs(responses[..., 0]).mean())
    if level <= 0:
        raise BinauralError("the HRIRs are silent at low frequencies")
    onset = np.abs(impulse[nearest]).max(axis=(0, 1))  # [K]
    latency = int(np.argmax(onset >= 0.1 * onset.max()))  # first sample of the earliest arrival
    corner_az, corner_el = _angles(measured[nearest])
    return Hrtfs(responses / level, corner_az, corner_el, sample_rate, n_fft, taps, latency)


def binaural_decoder(hrtfs: Hrtfs) -> BinauralDecoder:
    """Fold the dual-band loudspeaker decode and the HRTFs into SH-domain filters.

    Args:
        hrtfs: HRTFs of the virtual loudspeakers (``spherical_head_hrtfs`` or ``hrtfs_from_hrirs``).

    Returns:
        The ``[4, 2, K]`` filters; a source's low frequencies reach both ears at the level of W.
    """
    gains = sh_gains(hrtfs.azimuths, hrtfs.elevations).T  # [4, L]
    decode = np.linalg.pinv(gains)  # [L, 4]: mode matching; on the cube Yᵀ·diag(1, 3, 3, 3) / 8
    freqs = np.fft.rfftfreq(hrtfs.n_fft, 1 / hrtfs.sample_rate).astype(np.float64)  # [F]
    weights = _dual_band_weights(freqs)  # [4, F]
    # filters[c, e, f] = Σ_l decode[l, c] · weights[c, f] · responses[l, e, f]
    spectra = np.einsum("lc,cf,lef->cef", decode, weights, hrtfs.responses)  # [4, 2, F]
    impulse = np.fft.irfft(spectra, hrtfs.n_fft, axis=-1)  # [4, 2, n_fft]
    length = min(hrtfs.n_fft, hrtfs.taps + hrtfs.latency + hrtfs.taps // 2)
    fade = hrtfs.taps // 4
    window = np.ones(length)
    window[length - fade :] = 0.5 * (1 + np.cos(np.linspace(0, np.pi, fade)))  # soft end, no click
    return BinauralDecoder(impulse[..., :length] * window, hrtfs.sample_rate, hrtfs.latency)


def render_binaural(
    foa: npt.ArrayLike, decoder: BinauralDecoder, *, yaw: float = 0.0, pitch: float = 0.0
) -> npt.NDArray[np.float32]:
    """Render AmbiX to two ears for a listener looking toward (yaw, pitch).

    Turning the head left by ``yaw`` moves every source right by the same angle, so the field is
    rotated by ``−yaw`` about the vertical, then by ``−pitch`` about the listener's ear axis.

    Args:
        foa: ``[4, N]`` AmbiX.
        decoder: filters at the audio's sample rate.
        yaw: radians the listener faces, positive left.
        pitch: radians the listener looks up.

    Returns:
        ``[2, N]`` float32 (left, right), time-aligned with the input.
    """
    array = np.asarray(foa)
    if array.ndim != 2 or array.shape[0] != 4 or array.shape[1] == 0:
        raise AmbisonicsError(f"expected first-order AmbiX [4, N] with N > 0, got shape {array.shape}")
    field = rotate(rotate(array.astype(np.float64), -yaw), 0.0, -pitch)  # [4, N]
    n = field.shape[1]
    ears = np.empty((2, n))
    for ear in (LEFT, RIGHT):
        full = oaconvolve(field, decoder.filters[:, ear, :], mode="full", axes=-1).sum(axis=0)  # [N + K - 1]
        ears[ear] = full[decoder.latency : decoder.latency + n]
    return ears.astype(np.float32)


def _dual_band_weights(freqs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """[4, F] SH weights: basic (1, 1, 1, 1) below ~620 Hz, energy-matched max-rE above, smooth between."""
    octaves = np.log2(np.maximum(freqs, 1e-9) / _CROSSOVER_HZ)
    blend = 0.5 * (1 + np.sin(np.pi * np.clip(octaves, -0.5, 0.5)))  # 0 half an octave below, 1 above
    max_re = np.array([1.0, _MAX_RE_GAIN, _MAX_RE_GAIN, _MAX_RE_GAIN])
    max_re *= math.sqrt(4 / (1 + 3 * _MAX_RE_GAIN**2))  # same loudspeaker energy as the basic decode
    return (1 - blend)[None, :] + blend[None, :] * max_re[:, None]


def _unit_vectors(azimuths: npt.ArrayLike, elevations: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """[L, 3] unit vectors (x front, y left, z up) toward the directions."""
    az, el = np.broadcast_arrays(np.asarray(azimuths, np.float64), np.asarray(elevations, np.float64))
    if az.ndim != 1 or not (np.isfinite(az).all() and np.isfinite(el).all()):
        raise BinauralError(f"expected finite 1-D azimuths and elevations, got shape {az.shape}")
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def _angles(vectors: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(azimuths, elevations) in radians of [L, 3] unit vectors."""
    return np.arctan2(vectors[:, 1], vectors[:, 0]), np.arcsin(np.clip(vectors[:, 2], -1.0, 1.0))
