"""YouTube's binaural decoder: the upstream signal flow, the shipped filters, and the cues it gives."""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

from visage.model.audio.ambisonics import encode_mono
from visage.model.audio.binaural import BinauralError, render_binaural
from visage.model.audio.youtube_binaural import YOUTUBE_FILTER_RATE, symmetric_decoder
from visage.model.audio.youtube_filters import FILTER_NAMES, SHIPPED_FILTERS, read_youtube_filters

REPO_ROOT = Path(__file__).resolve().parents[3]
UPSTREAM = REPO_ROOT / ".." / "shared" / "media" / "google_spatial_audio"
RATE = 48_000
LEFT, RIGHT = 0, 1


@pytest.fixture(scope="module")
def shipped():
    return read_youtube_filters()


@pytest.fixture(scope="module")
def decoder(shipped):
    return symmetric_decoder(shipped.filters, shipped.sample_rate)


def _upstream_flow(foa: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The README's diagram by direct convolution: left = Σ ch_n ∗ h_n; right the same with Y inverted."""
    n = foa.shape[1]
    left = sum(np.convolve(foa[c], h[c])[:n] for c in range(4))
    right = sum(np.convolve(-foa[c] if c == 1 else foa[c], h[c])[:n] for c in range(4))
    return np.stack([left, right])


def test_rendering_follows_the_upstream_signal_flow(shipped, decoder) -> None:
    foa = np.random.default_rng(11).standard_normal((4, 3000)) * 0.2
    expected = _upstream_flow(foa, shipped.filters)
    np.testing.assert_allclose(render_binaural(foa, decoder), expected, atol=2e-6)


def test_any_four_filters_follow_the_same_flow() -> None:
    rng = np.random.default_rng(5)
    filters = rng.standard_normal((4, 37)) * 0.3
    foa = rng.standard_normal((4, 500))
    rendered = render_binaural(foa, symmetric_decoder(filters, 16_000))
    np.testing.assert_allclose(rendered, _upstream_flow(foa, filters), atol=2e-5)


def test_shipped_filters_are_the_upstream_files_unchanged(shipped) -> None:
    assert shipped.sample_rate == YOUTUBE_FILTER_RATE and shipped.filters.shape == (4, 256)
    upstream = UPSTREAM / "symmetric-ambisonic-binaural-decoder"
    for name in FILTER_NAMES:
        ours, theirs = (SHIPPED_FILTERS / name).read_bytes(), (upstream / name).read_bytes()
        assert hashlib.sha256(ours).digest() == hashlib.sha256(theirs).digest(), name
    for licence in ("LICENSE", "NOTICE"):
        assert (SHIPPED_FILTERS / licence).read_bytes() == (UPSTREAM / licence).read_bytes()


def test_a_built_wheel_holds_the_filters_and_their_licence(tmp_path) -> None:
    """pyproject's package-data puts the filters, LICENSE and NOTICE into the wheel (built from a copy)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for folder in ("model", "bridge", "host_plugins"):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(tmp_path / 'out')!r}))"
    subprocess.run([sys.executable, "-c", build], cwd=source, check=True, capture_output=True)
    (wheel,) = (tmp_path / "out").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = "visage/model/audio/data/google_spatial_audio/"
    assert {shipped + name for name in (*FILTER_NAMES, "LICENSE", "NOTICE")} <= names


def _source(azimuth_deg: float, seconds: float = 0.5) -> np.ndarray:
    noise = np.random.default_rng(7).standard_normal(int(RATE * seconds)) * 0.1
    return encode_mono(noise, math.radians(azimuth_deg), 0.0)


def _ild_db(stereo: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(stereo[LEFT] ** 2) / np.mean(stereo[RIGHT] ** 2)))


def _right_lag_us(stereo: np.ndarray) -> float:
    """How much later the right ear hears the sound below 1.5 kHz (cross-correlation peak), in µs."""
    sos = butter(4, 1500, "low", fs=RATE, output="sos")
    left, right = sosfiltfilt(sos, stereo[LEFT]), sosfiltfilt(sos, stereo[RIGHT])
    lags = np.arange(-60, 61)
    core = slice(200, len(left) - 200)
    scores = [np.dot(left[core], np.roll(right, -lag)[core]) for lag in lags]
    return 1e6 * lags[int(np.argmax(scores))] / RATE


def test_a_source_on_the_left_is_louder_and_earlier_in_the_left_ear(decoder) -> None:
    stereo = render_binaural(_source(90.0), decoder)
    assert _ild_db(stereo) > 6.0
    assert 200.0 < _right_lag_us(stereo) < 1000.0  # a head is ~0.6-0.7 ms across


def test_a_source_on_the_right_mirrors_it(decoder) -> None:
    left_side, right_side = render_binaural(_source(90.0), decoder), render_binaural(_source(-90.0), decoder)
    np.testing.assert_allclose(right_side[::-1], left_side, atol=1e-6)  # the ears swap, nothing else


def test_a_source_in_front_reaches_both_ears_alike(decoder) -> None:
    stereo = render_binaural(_source(0.0), decoder)
    np.testing.assert_allclose(stereo[LEFT], stereo[RIGHT], atol=1e-6)


def test_turning_the_listener_toward_the_source_centres_it(decoder) -> None:
    stereo = render_binaural(_source(90.0), decoder, yaw=math.radians(90.0))
    assert abs(_ild_db(stereo)) < 0.1


def test_bad_filter_sets_are_refused(tmp_path) -> None:
    with pytest.raises(BinauralError, match=r"\[4, K\]"):
        symmetric_decoder(np.zeros((3, 16)), RATE)
    with pytest.raises(BinauralError, match="NaN"):
        symmetric_decoder(np.full((4, 4), np.nan), RATE)
    with pytest.raises(BinauralError, match="no such folder"):
        read_youtube_filters(tmp_path / "none")
    for channel, name in enumerate(FILTER_NAMES[:3]):
        sf.write(str(tmp_path / name), np.full(8, 0.1 * channel), RATE)
    with pytest.raises(BinauralError, match="binaural_decoder_3.wav: missing"):
        read_youtube_filters(tmp_path)
    sf.write(str(tmp_path / FILTER_NAMES[3]), np.zeros((8, 2)), RATE)
    with pytest.raises(BinauralError, match="binaural_decoder_3.wav: expected one channel"):
        read_youtube_filters(tmp_path)
    sf.write(str(tmp_path / FILTER_NAMES[3]), np.zeros(8), 44_100)
    with pytest.raises(BinauralError, match="share one rate and length"):
        read_youtube_filters(tmp_path)
    (tmp_path / FILTER_NAMES[3]).write_bytes(b"not a wav")
    with pytest.raises(BinauralError, match="binaural_decoder_3.wav: not a readable WAV"):
        read_youtube_filters(tmp_path)
