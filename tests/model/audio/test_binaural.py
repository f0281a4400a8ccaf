"""Binaural rendering: interaural level and time differences, front/back, listener rotation, HRIR sets."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from visage.model.audio.ambisonics import AmbisonicsError, encode_mono, rotate
from visage.model.audio.binaural import (
    BinauralError,
    binaural_decoder,
    cube_layout,
    hrtfs_from_hrirs,
    render_binaural,
    spherical_head_hrtfs,
)
from visage.model.audio.sofa import SofaError, read_sofa

RATE = 48_000
LEFT, RIGHT = 0, 1


@pytest.fixture(scope="module")
def decoder():
    return binaural_decoder(spherical_head_hrtfs(*cube_layout(), RATE))


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(RATE // 2) * 0.1


def _source(noise: np.ndarray, azimuth_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
    return encode_mono(noise, math.radians(azimuth_deg), math.radians(elevation_deg))


def _level_db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.asarray(x, np.float64) ** 2)))


def _ild_db(stereo: np.ndarray) -> float:
    """Broadband left-minus-right level difference."""
    return _level_db(stereo[LEFT]) - _level_db(stereo[RIGHT])


def _itd_ms(stereo: np.ndarray) -> float:
    """How much later the right ear hears the sound below 1.5 kHz (cross-correlation peak), in ms."""
    sos = butter(4, 1500, "low", fs=RATE, output="sos")
    left, right = sosfiltfilt(sos, stereo[LEFT]), sosfiltfilt(sos, stereo[RIGHT])
    lags = np.arange(-60, 61)
    core = slice(200, len(left) - 200)
    scores = [np.dot(left[core], np.roll(right, -lag)[core]) for lag in lags]
    return 1000 * lags[int(np.argmax(scores))] / RATE


def _band_db(x: np.ndarray, low: float, high: float) -> float:
    return _level_db(sosfiltfilt(butter(4, [low, high], "band", fs=RATE, output="sos"), x))


def test_source_on_the_left_is_louder_and_earlier_in_the_left_ear(decoder, noise) -> None:
    stereo = render_binaural(_source(noise, 90), decoder)
    assert stereo.shape == (2, len(noise)) and stereo.dtype == np.float32
    assert _ild_db(stereo) > 8.0  # measured 10.3 dB
    assert 0.3 < _itd_ms(stereo) < 0.7  # measured 0.42 ms; a real head gives up to ~0.7 ms


def test_left_and_right_are_mirror_images(decoder, noise) -> None:
    left = render_binaural(_source(noise, 90), decoder)
    right = render_binaural(_source(noise, -90), decoder)
    assert _ild_db(right) == pytest.approx(-_ild_db(left), abs=1e-3)
    assert _itd_ms(right) == pytest.approx(-_itd_ms(left))
    np.testing.assert_allclose(right[LEFT], left[RIGHT], atol=1e-6)


def test_source_in_front_reaches_both_ears_alike(decoder, noise) -> None:
    stereo = render_binaural(_source(noise, 0), decoder)
    assert abs(_ild_db(stereo)) < 0.01
    assert _itd_ms(stereo) == 0.0


@pytest.mark.parametrize("azimuth", [30, 60, 120])
def test_level_difference_grows_toward_the_side(decoder, noise, azimuth) -> None:
    assert (
        1.0
        < _ild_db(render_binaural(_source(noise, azimuth), decoder))
        < _ild_db(render_binaural(_source(noise, 90), decoder)) + 0.5
    )


def test_front_and_back_differ(decoder, noise) -> None:
    front = render_binaural(_source(noise, 0), decoder)
    back = render_binaural(_source(noise, 180), decoder)
    assert abs(_ild_db(back)) < 0.01  # both on the median plane: no lateral cue
    for ear in (LEFT, RIGHT):
        # the pinna shadows sound from behind: the back source is duller (measured 3.4 dB at 4-12 kHz)
        assert _band_db(front[ear], 4000, 12000) - _band_db(back[ear], 4000, 12000) > 2.0
        assert abs(_band_db(front[ear], 100, 400) - _band_db(back[ear], 100, 400)) < 0.5


def test_low_frequencies_reach_the_ears_at_the_level_of_w(decoder) -> None:
    tone = np.sin(2 * np.pi * 150 * np.arange(RATE // 4) / RATE)
    for azimuth, elevation in [(0, 0), (90, 0), (135, 30), (-60, -40)]:
        stereo = render_binaural(_source(tone, azimuth, elevation), decoder)[:, 2000:-2000]
        for ear in (LEFT, RIGHT):
            assert _level_db(stereo[ear]) == pytest.approx(_level_db(tone), abs=1.5)


def test_output_is_aligned_with_the_input(decoder) -> None:
    impulse = np.zeros(2048)
    impulse[1000] = 1.0
    stereo = render_binaural(_source(impulse, 0), decoder)
    head = math.ceil(0.0875 / 343 * RATE)  # the sound crosses the head's radius in 12.2 samples
    for ear in (LEFT, RIGHT):
        assert abs(int(np.argmax(np.abs(stereo[ear]))) - 1000) <= head
        energy = np.cumsum(stereo[ear].astype(np.float64) ** 2)
        assert energy[1000 - head - 1] < 1e-2 * energy[-1]  # under -20 dB arrives before the wave can


def test_turning_the_head_toward_a_source_centres_it(decoder, noise) -> None:
    foa = _source(noise, 90)
    facing = render_binaural(foa, decoder, yaw=math.radians(90))
    assert abs(_ild_db(facing)) < 0.01 and _itd_ms(facing) == 0.0
    # a source straight ahead is on the right of a listener who looks 90° to the left
    assert _ild_db(render_binaural(_source(noise, 0), decoder, yaw=math.radians(90))) < -8.0


def test_listener_rotation_is_the_inverse_field_rotation(decoder, noise) -> None:
    foa = _source(noise, 40, 20)
    turned = render_binaural(foa, decoder, yaw=0.7, pitch=0.3)
    expected = render_binaural(rotate(rotate(foa, -0.7), 0.0, -0.3), decoder)
    np.testing.assert_allclose(turned, expected, atol=1e-6)


def test_looking_up_brings_a_source_overhead_to_the_front(decoder, noise) -> None:
    overhead = render_binaural(_source(noise, 0, 90), decoder, pitch=math.radians(90))
    front = render_binaural(_source(noise, 0), decoder)
    np.testing.assert_allclose(overhead, front, atol=1e-5)


def test_rejects_audio_that_is_not_first_order(decoder) -> None:
    with pytest.raises(AmbisonicsError, match=r"\[4, N\]"):
        render_binaural(np.zeros((2, 100)), decoder)


def _analytic_hrir_set(step_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 'measured' HRIR set on a grid, made from the analytic head (stands in for a SOFA file)."""
    az, el = np.meshgrid(np.arange(-180, 180, step_deg), np.arange(-80, 81, step_deg))
    az, el = np.deg2rad(az.ravel()), np.deg2rad(el.ravel())
    hrtfs = spherical_head_hrtfs(az, el, RATE)
    hrirs = np.fft.irfft(hrtfs.responses, hrtfs.n_fft, axis=-1)[..., :256] * 0.3  # arbitrary gain
    return hrirs, az, el


def test_measured_hrirs_give_the_same_cues(noise) -> None:
    hrirs, az, el = _analytic_hrir_set(10.0)
    measured = binaural_decoder(hrtfs_from_hrirs(hrirs, az, el, RATE))
    stereo = render_binaural(_source(noise, 90), measured)
    assert _ild_db(stereo) > 8.0 and 0.3 < _itd_ms(stereo) < 0.7
    # the set's own gain is normalised away: low frequencies come out at the level of W
    tone = np.sin(2 * np.pi * 150 * np.arange(RATE // 4) / RATE)
    front = render_binaural(_source(tone, 0), measured)[:, 2000:-2000]
    assert _level_db(front[LEFT]) == pytest.approx(_level_db(tone), abs=1.5)


def test_sparse_or_malformed_hrir_sets_are_refused() -> None:
    hrirs, az, el = _analytic_hrir_set(10.0)
    with pytest.raises(BinauralError, match="cube corner"):
        keep = np.abs(el) < np.deg2rad(15)  # horizontal plane only
        hrtfs_from_hrirs(hrirs[keep], az[keep], el[keep], RATE)
    with pytest.raises(BinauralError, match=r"\[M, 2, K\]"):
        hrtfs_from_hrirs(hrirs[:, :1], az, el, RATE)
    with pytest.raises(BinauralError, match="one azimuth"):
        hrtfs_from_hrirs(hrirs, az[:-1], el[:-1], RATE)


def test_sofa_needs_an_hdf5_file(tmp_path) -> None:
    fake = tmp_path / "hrtf.sofa"
    fake.write_bytes(b"CDF\x01 netCDF-3 is not SOFA")
    with pytest.raises(SofaError, match="no HDF5 signature"):
        read_sofa(fake)
    with pytest.raises(SofaError, match="no such SOFA file"):
        read_sofa(tmp_path / "missing.sofa")


def test_sofa_without_h5py_says_what_to_install(tmp_path, monkeypatch) -> None:
    sofa = tmp_path / "hrtf.sofa"
    sofa.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ModuleNotFoundError, match="pip install h5py"):
        read_sofa(sofa)


def test_sofa_file_round_trip(tmp_path, noise) -> None:
    h5py = pytest.importorskip("h5py")
    hrirs, az, el = _analytic_hrir_set(10.0)
    path = tmp_path / "analytic.sofa"
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = "SOFA"
        f.attrs["SOFAConventions"] = "SimpleFreeFieldHRIR"
        f["Data.IR"] = hrirs
        f["Data.SamplingRate"] = np.array([RATE], dtype=np.float64)
        positions = np.stack([np.rad2deg(az), np.rad2deg(el), np.full(az.shape, 1.2)], axis=1)
        f["SourcePosition"] = positions
        f["SourcePosition"].attrs["Type"] = "spherical"
        f["SourcePosition"].attrs["Units"] = "degree, degree, metre"
    loaded = read_sofa(path)
    assert loaded.sample_rate == RATE and loaded.hrirs.shape == hrirs.shape
    np.testing.assert_allclose(loaded.azimuths, az, atol=1e-9)
    stereo = render_binaural(
        _source(noise, -90), binaural_decoder(hrtfs_from_hrirs(*loaded[:3], loaded.sample_rate))
    )
    assert _ild_db(stereo) < -8.0
