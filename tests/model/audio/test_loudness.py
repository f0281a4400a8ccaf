"""Loudness of results: BS.1770 values, what cannot be measured, and normalisation that keeps directions."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from visage.model.audio.ambisonics import encode_mono, sphere_energy_map
from visage.model.audio.loudness import (
    Loudness,
    LoudnessError,
    integrated_loudness,
    measure_loudness,
    normalize_loudness,
)

RATE = 48_000
pytest.importorskip("pyloudnorm")


def _tone(seconds: float = 1.0, amplitude: float = 0.1) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * 997 * np.arange(int(RATE * seconds)) / RATE)


def test_a_full_scale_1khz_sine_reads_about_minus_3_lufs() -> None:
    # BS.1770's reference: a 0 dBFS 997 Hz sine in one channel is -3.01 LKFS
    assert integrated_loudness(_tone(amplitude=1.0), RATE) == pytest.approx(-3.01, abs=0.05)


def test_w_and_binaural_loudness_are_reported() -> None:
    foa = encode_mono(_tone(), math.radians(30), 0.0)
    stereo = np.stack([_tone(), _tone()])
    loudness = measure_loudness(foa, RATE, stereo)
    assert loudness.w_lufs == pytest.approx(-3.01 - 20, abs=0.05)
    assert loudness.binaural_lufs == pytest.approx(loudness.w_lufs + 3.01, abs=0.05)  # two channels add
    assert loudness.as_metadata() == {
        "standard": "ITU-R BS.1770-4 integrated (pyloudnorm)",
        "w_lufs": round(loudness.w_lufs, 2),
        "binaural_lufs": round(loudness.binaural_lufs, 2),
        "w_peak_dbfs": -20.0,
    }


def test_too_short_or_silent_audio_has_no_loudness() -> None:
    assert integrated_loudness(_tone(0.3), RATE) is None
    assert integrated_loudness(np.zeros(RATE), RATE) is None
    assert Loudness(None, None, 0.0).as_metadata()["w_peak_dbfs"] is None
    with pytest.raises(LoudnessError, match="no loudness"):
        normalize_loudness(np.zeros((4, RATE)), RATE, -14.0)


def test_normalisation_scales_all_channels_together() -> None:
    foa = encode_mono(_tone(), math.radians(70), math.radians(20)).astype(np.float32)
    normalized = normalize_loudness(foa, RATE, -30.0)
    assert measure_loudness(normalized.audio, RATE).w_lufs == pytest.approx(-30.0, abs=0.01)
    assert normalized.gain_db == pytest.approx(-30.0 - normalized.w_lufs_before)
    np.testing.assert_allclose(normalized.audio, foa * 10 ** (normalized.gain_db / 20), rtol=1e-5, atol=1e-8)
    # the direction of the energy map is unchanged
    az, el = np.deg2rad(np.arange(-180, 180, 10.0)), np.deg2rad(np.arange(-80, 81, 10.0))
    before, after = sphere_energy_map(foa, az, el), sphere_energy_map(normalized.audio, az, el)
    assert np.argmax(before) == np.argmax(after)


def test_missing_pyloudnorm_is_explained(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyloudnorm", None)
    with pytest.raises(ModuleNotFoundError, match="pip install pyloudnorm"):
        integrated_loudness(_tone(), RATE)
