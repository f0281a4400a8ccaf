"""Spatial metrics: every value of the official parity run, and what the corrected mode fixes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visage.model.evaluation import spatial_metrics as sm

PARITY = Path(__file__).resolve().parents[4] / "shared" / "parity" / "spatial"
MAP_RTOL = 1e-6
SCORE_ATOL = 1e-6
WINDOWS = ["1fps", "5fps"]


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    path = PARITY / "spatial_vectors.npz"
    if not path.exists():
        pytest.skip(f"parity vectors not found at {path}")
    with np.load(path) as data:
        return dict(data)


@pytest.fixture(scope="module")
def metrics() -> dict[str, Any]:
    path = PARITY / "spatial_metrics.json"
    if not path.exists():
        pytest.skip(f"parity metrics not found at {path}")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def audio(vectors: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The four test signals as the official evaluation reads them: float32 [T, C]."""
    return [(signal.T / 32768.0).astype(np.float32) for signal in vectors["audio_int16"]]


@pytest.fixture(scope="module")
def maps(audio: list[np.ndarray]) -> list[sm.SphereMaps]:
    return [sm.sphere_maps(signal) for signal in audio]


def windows_of(clip: sm.SphereMaps, window: str) -> np.ndarray:
    return clip.map_1fps if window == "1fps" else clip.map_5fps


def assert_maps_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=MAP_RTOL, atol=0)


def assert_scores_close(actual: float | list[float], expected: float | list[float]) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=SCORE_ATOL)


# Grid, matrix, maps -------------------------------------------------------------------------------


def test_grid_matches_the_official_order() -> None:
    phi, nu = sm.spherical_grid()
    assert phi.shape == (180,) and nu.shape == (90,)
    assert (phi[0], phi[89], phi[-1]) == (178.0, 0.0, -180.0)
    assert (nu[0], nu[-1]) == (-90.0, 88.0)


def test_paper_matrix_reproduces_the_official_one(vectors: dict[str, np.ndarray]) -> None:
    matrix = sm.decoding_matrix("paper")
    assert matrix.shape == (4, 16200)
    np.testing.assert_allclose(matrix, vectors["sh_matrix"], rtol=0, atol=1e-7)


def test_corrected_matrix_is_sn3d() -> None:
    paper, corrected = sm.decoding_matrix("paper"), sm.decoding_matrix("corrected")
    np.testing.assert_array_equal(corrected[[0, 2]], paper[[0, 2]])  # W and Z agree
    np.testing.assert_allclose(corrected[[1, 3]] * math.sqrt(2), paper[[1, 3]], rtol=1e-15, atol=1e-15)
    # SN3D first order: the three dipoles have unit norm in every direction.
    np.testing.assert_allclose(np.linalg.norm(corrected[1:], axis=0), 1.0, atol=1e-12)


def test_2d_maps_match(vectors: dict[str, np.ndarray], audio: list[np.ndarray]) -> None:
    assert_maps_close(sm.energy_maps(audio[0], "all")[0], vectors["sig0.map_all_2d"])
    assert_maps_close(sm.energy_maps(audio[0], "1fps"), vectors["sig0.map_1fps_2d"])


@pytest.mark.parametrize("signal", range(4))
def test_sampled_maps_match(vectors: dict[str, np.ndarray], maps: list[sm.SphereMaps], signal: int) -> None:
    clip = maps[signal]
    assert clip.map_all.shape == (sm.N_SPHERE_SAMPLES,)
    assert clip.map_1fps.shape == (5, sm.N_SPHERE_SAMPLES)
    assert clip.map_5fps.shape == (25, sm.N_SPHERE_SAMPLES)
    assert_maps_close(clip.map_all, vectors[f"sig{signal}.map"])
    assert_maps_close(clip.map_1fps, vectors[f"sig{signal}.map_1fps"])


def test_5fps_maps_match(vectors: dict[str, np.ndarray], maps: list[sm.SphereMaps]) -> None:
    assert_maps_close(maps[0].map_5fps[:5], vectors["sig0.map_5fps_first5"])


def test_sphere_sample_alone_matches(vectors: dict[str, np.ndarray]) -> None:
    """Resampling the official 2-D maps gives the official 1-D maps (float32-stored) to rounding."""
    sampled = sm.sphere_sample(vectors["sig0.map_1fps_2d"])  # [5, N]
    assert sampled.dtype == np.float64
    np.testing.assert_array_equal(sampled.astype(np.float32), vectors["sig0.map_1fps"])


def test_sphere_sample_points_per_row() -> None:
    rows = np.repeat(np.arange(90.0)[:, None], 180, axis=1)  # every value names its row
    counts = np.bincount(sm.sphere_sample(rows).astype(np.int64))
    assert counts.sum() == sm.N_SPHERE_SAMPLES
    assert list(counts[:2]) == [3, 9] and counts[44] == counts[45] == 180
    np.testing.assert_array_equal(counts, counts[::-1])  # symmetric about the equator


def test_sphere_sample_interpolates_linearly_along_rows() -> None:
    ramp = np.tile(np.arange(180.0), (90, 1))  # value = column
    sampled = sm.sphere_sample(ramp)
    n_first = 3
    np.testing.assert_allclose(sampled[:n_first], np.arange(n_first) * (180 - 0.5 * 180 / n_first) / n_first)


def test_fit_length_truncates_and_pads() -> None:
    long = np.ones((90_000, 4))
    short = np.ones((70_000, 4))
    assert sm.fit_length(long).shape == (80_000, 4)
    padded = sm.fit_length(short)
    assert padded.dtype == np.float32 and padded.shape == (80_000, 4)
    assert np.all(padded[70_000:] == 0) and np.all(padded[:70_000] == 1)


def test_energy_maps_reject_unfitted_audio() -> None:
    with pytest.raises(ValueError, match="fit_length"):
        sm.energy_maps(np.zeros((79_999, 4)))
    with pytest.raises(ValueError, match="window"):
        sm.energy_maps(np.zeros((80_000, 4)), "2fps")  # type: ignore[arg-type]


# CC and AUC-Judd against the official values ------------------------------------------------------


@pytest.mark.parametrize("pair", range(3))
def test_whole_clip_scores(metrics: dict[str, Any], maps: list[sm.SphereMaps], pair: int) -> None:
    pred_index, gt_index = metrics["pairs_pred_gt"][pair]
    expected = metrics[f"pair{pair}"]
    pred, gt = maps[pred_index].map_all, maps[gt_index].map_all

    assert_scores_close(sm.correlation(pred, gt), expected["cc_all"])
    assert_scores_close(sm.auc_judd(pred, gt), expected["aucj_all_nojitter"])
    # The goldens ran np.random.seed(0) right before AUC_Judd; RandomState(0) is that same stream.
    assert_scores_close(sm.auc_judd(pred, gt, jitter=np.random.RandomState(0)), expected["aucj_all_seed0"])
    jitter = np.random.RandomState(0)
    overall = [sm.correlation(pred, gt), sm.auc_judd(pred, gt, jitter=jitter)]
    assert_scores_close(overall, expected["process_overall_seed0"])


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("pair", range(3))
def test_per_window_scores(
    metrics: dict[str, Any], maps: list[sm.SphereMaps], pair: int, window: str
) -> None:
    pred_index, gt_index = metrics["pairs_pred_gt"][pair]
    expected = metrics[f"pair{pair}"]
    preds, gts = windows_of(maps[pred_index], window), windows_of(maps[gt_index], window)

    ccs = [sm.correlation(p, g) for p, g in zip(preds, gts, strict=True)]
    aucs = [sm.auc_judd(p, g) for p, g in zip(preds, gts, strict=True)]
    aucs_seed0 = [sm.auc_judd(p, g, jitter=np.random.RandomState(0)) for p, g in zip(preds, gts, strict=True)]
    assert_scores_close(ccs, expected[f"cc_{window}_per_window"])
    assert_scores_close(aucs, expected[f"aucj_{window}_per_window_nojitter"])
    assert_scores_close(aucs_seed0, expected[f"aucj_{window}_per_window_seed0"])

    means = sm.score_windows(preds, gts)
    assert_scores_close(
        [means.cc, means.auc], [expected[f"cc_{window}_mean"], expected[f"aucj_{window}_mean_nojitter"]]
    )
    # One seed for the whole loop: the jitter stream runs on from window to window.
    once = sm.score_windows(preds, gts, jitter=np.random.RandomState(0))
    assert_scores_close([once.cc, once.auc], expected[f"process_fps_{window}_seed0_once"])


def test_clip_scores_and_their_mean(metrics: dict[str, Any], maps: list[sm.SphereMaps]) -> None:
    per_clip = []
    for pair, (pred_index, gt_index) in enumerate(metrics["pairs_pred_gt"]):
        expected = metrics[f"pair{pair}"]
        scores = sm.score_clip(maps[pred_index], maps[gt_index])
        assert_scores_close(
            [scores.cc_all, scores.auc_all, scores.cc_1fps, scores.auc_1fps, scores.cc_5fps, scores.auc_5fps],
            [
                expected["cc_all"],
                expected["aucj_all_nojitter"],
                expected["cc_1fps_mean"],
                expected["aucj_1fps_mean_nojitter"],
                expected["cc_5fps_mean"],
                expected["aucj_5fps_mean_nojitter"],
            ],
        )
        per_clip.append(scores)

    mean = sm.mean_scores(per_clip)
    pairs = [metrics[f"pair{pair}"] for pair in range(3)]
    assert_scores_close(mean.cc_all, np.mean([p["cc_all"] for p in pairs]))
    assert_scores_close(mean.auc_5fps, np.mean([p["aucj_5fps_mean_nojitter"] for p in pairs]))


def test_a_generator_also_drives_the_jitter(maps: list[sm.SphereMaps]) -> None:
    pred, gt = maps[1].map_all, maps[0].map_all
    jittered = sm.auc_judd(pred, gt, jitter=np.random.default_rng(0))
    assert abs(jittered - sm.auc_judd(pred, gt)) < 1e-5


# Metric definitions -------------------------------------------------------------------------------


def test_auc_judd_paper_and_corrected_on_a_hand_example() -> None:
    """Fixations at points 0 and 1 (gt > max - std); thresholds 1.0 then 0.5.

    Counts above threshold: 1, then 3 of 5 points. MIT (k+1): ROC points (0, 1/2), (1/3, 1),
    area 11/12. Official (k): points (1/3, 0), (2/3, 1/2), area 1/3.
    """
    pred = np.array([1.0, 0.5, 0.75, 0.25, 0.0])
    gt = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    assert sm.auc_judd(pred, gt, mode="corrected") == pytest.approx(11 / 12)
    assert sm.auc_judd(pred, gt, mode="paper") == pytest.approx(1 / 3)


def loop_auc_judd(pred: np.ndarray, gt: np.ndarray, offset: int) -> float:
    """AUC-Judd written as the spec's loop: tp[k+1] = (k + offset) / N_f."""
    s = (pred - pred.min()) / (pred.max() - pred.min())
    at_fixations = s[gt > gt.max() - gt.std()]
    n_fix, n_points = at_fixations.size, s.size
    tp, fp = [0.0], [0.0]
    for k, threshold in enumerate(np.sort(at_fixations)[::-1]):
        tp.append((k + offset) / n_fix)
        fp.append((np.sum(s >= threshold) - k - offset) / (n_points - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return float(sum((fp[i + 1] - fp[i]) * (tp[i + 1] + tp[i]) / 2 for i in range(len(tp) - 1)))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), levels=st.integers(2, 12))
def test_auc_judd_matches_the_loop_definition_with_ties(seed: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, levels, 200).astype(np.float64)  # few levels: many tied thresholds
    gt = rng.random(200) ** 4
    assert sm.auc_judd(pred, gt, mode="paper") == pytest.approx(loop_auc_judd(pred, gt, 0), abs=1e-12)
    assert sm.auc_judd(pred, gt, mode="corrected") == pytest.approx(loop_auc_judd(pred, gt, 1), abs=1e-12)


def test_auc_judd_of_a_flat_prediction_is_nan() -> None:
    assert math.isnan(sm.auc_judd(np.ones(10), np.arange(10.0)))


def test_correlation_basics() -> None:
    a = np.random.default_rng(1).random(100)
    assert sm.correlation(a, 2 * a + 3) == pytest.approx(1.0)
    assert sm.correlation(a, -a) == pytest.approx(-1.0)
    assert math.isnan(sm.correlation(a, np.ones(100)))


def test_score_windows_skips_undefined_windows() -> None:
    rng = np.random.default_rng(2)
    gt = rng.random((3, 50))
    pred = gt + 0.1 * rng.random((3, 50))
    pred[1] = 0.5  # flat: CC and AUC undefined
    scores = sm.score_windows(pred, gt)
    defined = sm.score_windows(pred[[0, 2]], gt[[0, 2]])
    assert scores == defined
    silent = sm.score_windows(np.zeros((2, 50)), gt[:2])
    assert math.isnan(silent.cc) and math.isnan(silent.auc)


def test_bad_mode_raises() -> None:
    with pytest.raises(ValueError, match="mode"):
        sm.decoding_matrix("sn3d")  # type: ignore[arg-type]


def test_mean_of_no_clips_raises() -> None:
    with pytest.raises(ValueError):
        sm.mean_scores([])


# What the corrected mode fixes --------------------------------------------------------------------


def encode_sn3d(azimuth_deg: float, elevation_deg: float, seconds: int = 5) -> np.ndarray:
    """A noise source encoded in AmbiX (W, Y, Z, X; SN3D), [T, C]."""
    source = np.random.default_rng(3).standard_normal(seconds * sm.SAMPLE_RATE)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    gains = np.array([1.0, np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    return (source[:, None] * gains).astype(np.float32)


def peak_direction(energy_map: np.ndarray) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of a flipped [90, 180] map's maximum."""
    row, col = np.unravel_index(np.argmax(energy_map), energy_map.shape)
    phi, nu = sm.spherical_grid()
    return float(phi[col]), float(nu[::-1][row])


@pytest.mark.parametrize(("azimuth", "elevation"), [(30, 10), (-120, -20), (150, 40), (0, 0), (90, 70)])
def test_corrected_map_peaks_at_the_source(azimuth: float, elevation: float) -> None:
    energy = sm.energy_maps(encode_sn3d(azimuth, elevation), mode="corrected")[0]
    assert peak_direction(energy) == (azimuth, elevation)


def test_paper_map_pulls_the_peak_toward_the_horizon() -> None:
    """With sqrt(2) on the horizontal dipoles the peak is at atan(tan(el) / sqrt(2)): 40 -> 30.7."""
    audio = encode_sn3d(150, 40)
    azimuth, elevation = peak_direction(sm.energy_maps(audio, mode="paper")[0])
    assert azimuth == 150
    assert math.degrees(math.atan(math.tan(math.radians(40)) / math.sqrt(2))) == pytest.approx(30.7, abs=0.05)
    assert abs(elevation - 30.7) <= 1.0  # the 2-degree grid point nearest 30.7
    assert peak_direction(sm.energy_maps(audio, mode="corrected")[0])[1] == 40
