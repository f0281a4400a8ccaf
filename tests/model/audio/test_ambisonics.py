"""First-order AmbiX math: conventions, invariants, and agreement with the official code."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visage.model.audio.ambisonics import (
    AMBIX_ORDER,
    FUMA_ORDER,
    Acn,
    AmbisonicsError,
    SphereGrid,
    active_intensity,
    ambix_to_fuma,
    cardioid_decode,
    encode_mono,
    fuma_to_ambix,
    official_mono_decode,
    peak_direction,
    rotate,
    rotation_matrix,
    sh_gains,
    sphere_energy_map,
    spherical_grid,
)

PARITY = Path(__file__).resolve().parents[4] / "shared" / "parity"

angles = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)
azimuths = st.floats(-math.pi, math.pi, allow_nan=False)
elevations = st.floats(-math.pi / 2, math.pi / 2, allow_nan=False)


def _noise(n: int = 512, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def _random_foa(n: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((4, n))


def _angle_between(first: tuple[float, float], second: tuple[float, float]) -> float:
    """Angle between two (azimuth, elevation) directions, accurate for tiny angles too."""
    u, v = sh_gains(*first)[1:], sh_gains(*second)[1:]
    return math.atan2(float(np.linalg.norm(np.cross(u, v))), float(u @ v))


# --- conventions ---------------------------------------------------------------------------------


def test_channel_orders() -> None:
    assert AMBIX_ORDER == ("W", "Y", "Z", "X")
    assert FUMA_ORDER == ("W", "X", "Y", "Z")
    assert [Acn.W, Acn.Y, Acn.Z, Acn.X] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("azimuth_deg", "elevation_deg", "expected"),
    [
        (0, 0, [1, 0, 0, 1]),  # front: X
        (90, 0, [1, 1, 0, 0]),  # left: +Y (AmbiX azimuth is positive to the left)
        (-90, 0, [1, -1, 0, 0]),  # right: −Y
        (180, 0, [1, 0, 0, -1]),  # back: −X
        (0, 90, [1, 0, 1, 0]),  # up: Z
    ],
)
def test_sh_gains_cardinal_directions(azimuth_deg: float, elevation_deg: float, expected: list[int]) -> None:
    np.testing.assert_allclose(
        sh_gains(math.radians(azimuth_deg), math.radians(elevation_deg)), expected, atol=1e-15
    )


def test_sh_gains_vectorises() -> None:
    az = np.linspace(-math.pi, math.pi, 7)
    el = np.linspace(-1.0, 1.0, 5)
    gains = sh_gains(az[None, :], el[:, None])
    assert gains.shape == (5, 7, 4)
    np.testing.assert_allclose(gains[3, 2], sh_gains(az[2], el[3]))


@given(azimuths, elevations)
def test_sh_dipoles_are_the_unit_vector(azimuth: float, elevation: float) -> None:
    gains = sh_gains(azimuth, elevation)
    assert gains[Acn.W] == 1.0
    assert np.linalg.norm(gains[1:]) == pytest.approx(1.0)


def test_encode_mono_scales_gains() -> None:
    signal = _noise(8)
    foa = encode_mono(signal, 0.3, -0.2)
    assert foa.shape == (4, 8)
    np.testing.assert_allclose(foa, sh_gains(0.3, -0.2)[:, None] * signal)
    assert encode_mono(signal.astype(np.float32), 0.3, -0.2).dtype == np.float32


# --- energy map ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("azimuth_deg", "elevation_deg"),
    [(0, 0), (30, 10), (-120, -20), (150, 40), (-90, 60), (90, -76), (178, 0), (-180, 0)],
)
def test_energy_map_peaks_at_the_source(azimuth_deg: float, elevation_deg: float) -> None:
    grid = spherical_grid(2.0)
    foa = encode_mono(_noise(), math.radians(azimuth_deg), math.radians(elevation_deg))
    energy = sphere_energy_map(foa, grid.azimuths, grid.elevations)
    assert energy.shape == (90, 180)
    peak = peak_direction(energy, grid)
    assert _angle_between(peak, (math.radians(azimuth_deg), math.radians(elevation_deg))) < 1e-9
    assert peak == peak_direction(energy.ravel(), grid)


@settings(max_examples=30, deadline=None)
@given(azimuths, st.floats(-1.4, 1.4))
def test_energy_map_peak_is_the_nearest_grid_direction(azimuth: float, elevation: float) -> None:
    grid = spherical_grid(5.0)
    energy = sphere_energy_map(encode_mono(_noise(64), azimuth, elevation), *grid)
    assert _angle_between(peak_direction(energy, grid), (azimuth, elevation)) <= math.radians(5.0)


def test_energy_map_is_rms_of_the_beam() -> None:
    foa = _random_foa()
    az, el = np.array([0.4, -2.0]), np.array([0.1, -0.7, 1.2])
    energy = sphere_energy_map(foa, az, el)
    for row, e in enumerate(el):
        for col, a in enumerate(az):
            beam = official_mono_decode(foa, a, e)
            assert energy[row, col] == pytest.approx(math.sqrt(np.mean(beam**2)), rel=1e-12)


def test_energy_map_of_opposite_direction_is_zero() -> None:
    """The Eq. 1 beam is a cardioid: no pickup from behind."""
    foa = encode_mono(_noise(), 0.5, 0.2)
    energy = sphere_energy_map(foa, [0.5 - math.pi], [-0.2])
    assert energy[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_spherical_grid_matches_the_official_evaluation_grid() -> None:
    """spherical_grid(2.0) laid out like the official (flipped) maps; they weight X and Y by √2."""
    parity = PARITY / "spatial" / "spatial_vectors.npz"
    if not parity.exists():
        pytest.skip(f"official parity vectors not found at {parity}")
    official = np.load(parity)["sh_matrix"]  # [4, 16200], rows ν ascending before their flip
    official = official.reshape(4, 90, 180)[:, ::-1, :].transpose(1, 2, 0)  # [E, A, 4]
    grid = spherical_grid(2.0)
    ours = sh_gains(grid.azimuths[None, :], grid.elevations[:, None]) * [1, math.sqrt(2), 1, math.sqrt(2)]
    np.testing.assert_allclose(ours, official, atol=1e-6)


def test_spherical_grid_layout() -> None:
    grid = spherical_grid(45.0)
    np.testing.assert_allclose(np.degrees(grid.azimuths), [135, 90, 45, 0, -45, -90, -135, -180])
    np.testing.assert_allclose(np.degrees(grid.elevations), [45, 0, -45, -90])


@pytest.mark.parametrize("step", [0.0, -2.0, 7.0, 200.0, math.nan])
def test_spherical_grid_rejects_steps_that_do_not_divide_180(step: float) -> None:
    with pytest.raises(AmbisonicsError, match="divide 180"):
        spherical_grid(step)


def test_peak_direction_rejects_a_map_of_another_grid() -> None:
    with pytest.raises(AmbisonicsError, match=r"\(3, 3\).*4 x 8"):
        peak_direction(np.zeros((3, 3)), spherical_grid(45.0))


def test_energy_map_needs_samples() -> None:
    grid = spherical_grid(45.0)
    with pytest.raises(AmbisonicsError, match="at least one sample"):
        sphere_energy_map(np.zeros((4, 0)), *grid)


# --- rotation ------------------------------------------------------------------------------------


@given(angles, angles, angles)
def test_rotation_matrix_is_proper(yaw: float, pitch: float, roll: float) -> None:
    matrix = rotation_matrix(yaw, pitch, roll)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(matrix) == pytest.approx(1.0)


@given(angles, angles, angles)
def test_rotation_preserves_energy(yaw: float, pitch: float, roll: float) -> None:
    foa = _random_foa(64)
    rotated = rotate(foa, yaw, pitch, roll)
    np.testing.assert_array_equal(rotated[Acn.W], foa[Acn.W])
    assert np.sum(rotated[1:] ** 2) == pytest.approx(np.sum(foa[1:] ** 2), rel=1e-12)


@given(azimuths, elevations, angles)
def test_yaw_moves_a_source_by_yaw(azimuth: float, elevation: float, yaw: float) -> None:
    signal = _noise(16)
    np.testing.assert_allclose(
        rotate(encode_mono(signal, azimuth, elevation), yaw),
        encode_mono(signal, azimuth + yaw, elevation),
        atol=1e-12,
    )


def test_yaw_moves_the_energy_map_peak() -> None:
    grid = spherical_grid(2.0)
    foa = encode_mono(_noise(), math.radians(30), math.radians(10))
    rotated = rotate(foa, math.radians(-50))
    peak = peak_direction(sphere_energy_map(rotated, *grid), grid)
    assert np.degrees(peak) == pytest.approx((-20.0, 10.0))


@given(st.floats(-math.pi, math.pi), st.floats(-1.5, 1.5))
def test_yaw_and_pitch_take_the_front_to_that_direction(yaw: float, pitch: float) -> None:
    signal = _noise(16)
    np.testing.assert_allclose(
        rotate(encode_mono(signal, 0.0, 0.0), yaw, pitch), encode_mono(signal, yaw, pitch), atol=1e-12
    )


def test_roll_lifts_the_left_side() -> None:
    signal = _noise(16)
    rolled = rotate(encode_mono(signal, math.pi / 2, 0.0), 0.0, 0.0, math.radians(30))
    np.testing.assert_allclose(rolled, encode_mono(signal, math.pi / 2, math.radians(30)), atol=1e-12)


@given(angles, angles, angles)
def test_rotation_order_is_roll_then_pitch_then_yaw(yaw: float, pitch: float, roll: float) -> None:
    foa = _random_foa(8)
    stepwise = rotate(rotate(rotate(foa, 0.0, 0.0, roll), 0.0, pitch, 0.0), yaw, 0.0, 0.0)
    np.testing.assert_allclose(rotate(foa, yaw, pitch, roll), stepwise, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_official_rotation_augmentation_is_a_minus_90_degree_yaw(dtype: type) -> None:
    """Spec §6.2: Y' = −X, X' = Y, W and Z unchanged — bit for bit."""
    foa: np.ndarray = _random_foa().astype(dtype)
    official = foa.copy()
    official[Acn.Y], official[Acn.X] = -foa[Acn.X], foa[Acn.Y]
    rotated = rotate(foa, -math.pi / 2)
    assert rotated.dtype == dtype
    np.testing.assert_array_equal(rotated, official)


# --- FuMa ----------------------------------------------------------------------------------------


def test_ambix_to_fuma_reorders_and_lowers_w() -> None:
    ambix = _random_foa(32)
    fuma = ambix_to_fuma(ambix)
    np.testing.assert_allclose(fuma[0], ambix[Acn.W] / math.sqrt(2), rtol=1e-15)
    np.testing.assert_array_equal(fuma[1:], ambix[[Acn.X, Acn.Y, Acn.Z]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fuma_round_trip(dtype: type) -> None:
    ambix: np.ndarray = _random_foa(1000).astype(dtype)
    back = fuma_to_ambix(ambix_to_fuma(ambix))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back[1:], ambix[1:])
    np.testing.assert_array_max_ulp(back[0], ambix[0], maxulp=1)
    fuma: np.ndarray = _random_foa(1000, seed=1).astype(dtype)
    np.testing.assert_array_max_ulp(ambix_to_fuma(fuma_to_ambix(fuma)), fuma, maxulp=1)


# --- virtual microphones -------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize(("azimuth", "elevation"), [(0.0, 0.0), (2.0, 0.5), (-1.0, -1.2)])
def test_virtual_microphone_polar_pattern(pattern: float, azimuth: float, elevation: float) -> None:
    grid = spherical_grid(10.0)
    pickups = np.array(
        [
            [cardioid_decode(encode_mono([1.0], a, e), azimuth, elevation, pattern)[0] for a in grid.azimuths]
            for e in grid.elevations
        ]
    )  # [E, A] gain of a unit plane wave from each grid direction
    cosines = (
        sh_gains(grid.azimuths[None, :], grid.elevations[:, None])[..., 1:] @ sh_gains(azimuth, elevation)[1:]
    )
    np.testing.assert_allclose(pickups, pattern + (1 - pattern) * cosines, atol=1e-12)
    assert pickups.max() <= 1.0 + 1e-12
    on_axis = cardioid_decode(encode_mono([1.0], azimuth, elevation), azimuth, elevation, pattern)[0]
    assert on_axis == pytest.approx(1.0)
    behind = cardioid_decode(encode_mono([1.0], azimuth + math.pi, -elevation), azimuth, elevation, pattern)
    assert behind[0] == pytest.approx(2 * pattern - 1, abs=1e-12)


def test_cardioid_is_deaf_behind() -> None:
    foa = encode_mono(_noise(), math.radians(120), math.radians(-30))
    behind = cardioid_decode(foa, math.radians(-60), math.radians(30))
    np.testing.assert_allclose(behind, 0.0, atol=1e-12)


@given(azimuths, elevations)
def test_official_mono_decode_is_paper_eq_2(azimuth: float, elevation: float) -> None:
    foa = _random_foa(32)
    w, y, z, x = foa
    eq2 = (
        w
        + math.cos(elevation) * math.cos(azimuth) * x
        + math.cos(elevation) * math.sin(azimuth) * y
        + math.sin(elevation) * z
    )
    np.testing.assert_allclose(official_mono_decode(foa, azimuth, elevation), eq2, atol=1e-12)
    np.testing.assert_allclose(
        official_mono_decode(foa, azimuth, elevation),
        2 * cardioid_decode(foa, azimuth, elevation),
        atol=1e-12,
    )


@pytest.mark.parametrize("pattern", [-0.1, 1.5])
def test_cardioid_rejects_patterns_outside_0_1(pattern: float) -> None:
    with pytest.raises(AmbisonicsError, match="pattern"):
        cardioid_decode(_random_foa(4), 0.0, 0.0, pattern)


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda x: rotate(x, 0.1),
        ambix_to_fuma,
        lambda x: cardioid_decode(x, 0.0, 0.0),
        lambda x: official_mono_decode(x, 0.0, 0.0),
        lambda x: sphere_energy_map(x, *spherical_grid(45.0)),
    ],
)
@pytest.mark.parametrize("shape", [(10, 4), (3, 10), (4,), (1, 4, 10)])
def test_bad_shapes_name_the_shape_and_the_layout(
    call: Callable[[np.ndarray], object], shape: tuple[int, ...]
) -> None:
    with pytest.raises(AmbisonicsError, match=r"AmbiX \[4, N\].*got shape " + re.escape(str(shape))):
        call(np.zeros(shape))


def test_channels_last_audio_gets_a_hint() -> None:
    with pytest.raises(AmbisonicsError, match="transpose"):
        rotate(np.zeros((80000, 4)), 0.1)


def test_fuma_shape_error_names_fuma() -> None:
    with pytest.raises(AmbisonicsError, match=r"FuMa \[4, N\]"):
        fuma_to_ambix(np.zeros((2, 5)))


def test_encode_mono_rejects_multichannel_input() -> None:
    with pytest.raises(AmbisonicsError, match=r"mono signal \[N\], got shape \(2, 5\)"):
        encode_mono(np.zeros((2, 5)), 0.0, 0.0)


def test_non_real_audio_and_angles_are_rejected() -> None:
    with pytest.raises(AmbisonicsError, match="real-valued"):
        rotate(np.zeros((4, 3), dtype=complex), 0.1)
    with pytest.raises(AmbisonicsError, match="finite"):
        sh_gains(math.nan, 0.0)
    with pytest.raises(AmbisonicsError, match="finite"):
        rotate(np.zeros((4, 3)), math.inf)


def test_sphere_grid_unpacks_as_azimuths_then_elevations() -> None:
    grid = spherical_grid(90.0)
    assert isinstance(grid, SphereGrid)
    azimuths, elevations = grid
    assert (len(azimuths), len(elevations)) == (4, 2)


def _ambix_plane_wave(signal: np.ndarray, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """[4, N] from the AmbiX formulas themselves (ACN W, Y, Z, X; SN3D), independent of the module."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.stack(
        [
            signal,
            signal * math.cos(el) * math.sin(az),
            signal * math.sin(el),
            signal * math.cos(el) * math.cos(az),
        ]
    )


@pytest.mark.parametrize(
    ("azimuth", "elevation"), [(90, 0), (-90, 0), (0, 45), (0, -45), (135, 20), (-30, -60), (180, 0)]
)
def test_active_intensity_points_at_a_plane_wave(azimuth: float, elevation: float) -> None:
    signal = np.random.default_rng(0).standard_normal(4000)
    result = active_intensity(_ambix_plane_wave(signal, azimuth, elevation))
    wrapped = (math.degrees(result.azimuth) - azimuth + 180) % 360 - 180  # 180 and -180 are one direction
    assert wrapped == pytest.approx(0, abs=1e-9)
    assert math.degrees(result.elevation) == pytest.approx(elevation, abs=1e-9)
    assert result.directedness == pytest.approx(1.0)
    az, el = math.radians(azimuth), math.radians(elevation)
    toward = [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]  # x front, y left, z up
    np.testing.assert_allclose(result.vector, np.mean(signal**2) * np.array(toward), atol=1e-12)


def test_active_intensity_adds_uncorrelated_sources_by_power() -> None:
    rng = np.random.default_rng(1)
    n = 400_000
    left = _ambix_plane_wave(2.0 * rng.standard_normal(n), 90, 0)  # power 4
    right = _ambix_plane_wave(rng.standard_normal(n), -90, 0)  # power 1
    result = active_intensity(left + right)
    assert math.degrees(result.azimuth) == pytest.approx(90, abs=1)
    assert result.directedness == pytest.approx((4 - 1) / (4 + 1), abs=0.01)


def test_diffuse_sound_and_silence_have_no_direction() -> None:
    rng = np.random.default_rng(2)
    directions = rng.standard_normal((500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    azimuths = np.degrees(np.arctan2(directions[:, 1], directions[:, 0]))
    elevations = np.degrees(np.arcsin(directions[:, 2]))
    diffuse = sum(
        _ambix_plane_wave(rng.standard_normal(4000), a, e) for a, e in zip(azimuths, elevations, strict=True)
    )
    assert active_intensity(diffuse).directedness < 0.1
    silent = active_intensity(np.zeros((4, 10)))
    assert (silent.azimuth, silent.elevation, silent.directedness) == (0.0, 0.0, 0.0)
    with pytest.raises(AmbisonicsError, match="at least one sample"):
        active_intensity(np.zeros((4, 0)))
