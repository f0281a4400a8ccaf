"""FAD and KLD: the formulas on hand cases, and the plumbing with tiny random feature extractors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from visage.model.evaluation.audio_feature_models import (
    FeatureModelUnavailable,
    load_passt,
    load_vggish,
    tiny_random_classifier,
    tiny_random_embedder,
)
from visage.model.evaluation.semantic_metrics import (
    fad,
    frechet_distance,
    gaussian_statistics,
    kld,
    paired_kld,
)


def test_frechet_distance_of_gaussians() -> None:
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(0.0, abs=1e-9)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s.
    assert frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]])
    ) == pytest.approx(5.0)
    mu, sigma = gaussian_statistics([np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[4.0, 4.0]])])
    np.testing.assert_allclose(mu, [2.0, 2.0])
    np.testing.assert_allclose(sigma, np.cov(np.array([[0, 1], [2, 1], [4, 4.0]]), rowvar=False))


def test_kld_is_audioldm_evals_softmax_formula() -> None:
    ref = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    gen = np.log(np.array([[0.5, 0.5], [0.5, 0.5]]))
    row1 = np.log(0.5) - np.log(0.5 + 1e-6)  # p = (0.5, 0.5) against (0.5, 0.5) + eps
    p = np.array([0.9, 0.1])
    row2 = np.sum(p * (np.log(p) - np.log(0.5 + 1e-6)))
    expected = (row1 + row2) / 2  # summed over clips, divided by their number
    assert kld(gen, ref) == pytest.approx(expected, rel=1e-9)
    assert kld(ref, ref) == pytest.approx(0.0, abs=1e-5)


def test_fad_and_kld_plumbing_with_tiny_extractors() -> None:
    rng = np.random.default_rng(0)
    noise = [rng.standard_normal(16000) * 0.1 for _ in range(4)]
    tones = [np.sin(2 * np.pi * (300 + 50 * i) * np.arange(16000) / 16000) * 0.1 for i in range(4)]
    embed, classify = tiny_random_embedder(), tiny_random_classifier()
    assert embed(noise[0]).shape == (4, 8) and classify(noise[0]).shape == (10,)
    assert fad(noise, noise, embed) == pytest.approx(0.0, abs=1e-6)
    assert fad(tones, noise, embed) > fad(noise[:2], noise[2:], embed)
    assert paired_kld(noise, noise, classify) == pytest.approx(0.0, abs=1e-5)
    assert paired_kld(tones, noise, classify) > 0.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same non-zero number"):
        paired_kld([np.zeros(10)], [], tiny_random_classifier())
    with pytest.raises(ValueError, match="one D"):
        gaussian_statistics([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="at least two"):
        gaussian_statistics([np.zeros((1, 3))])


@pytest.mark.weights
def test_the_real_extractors_load_and_run() -> None:
    if os.environ.get("VISAGE_TEST_WEIGHTS") != "1":  # pragma: no cover - the marker already skips
        pytest.skip("needs VISAGE_TEST_WEIGHTS=1")
    try:
        embed, classify = load_vggish(), load_passt()
    except FeatureModelUnavailable as exc:
        pytest.skip(str(exc))
    audio = 0.1 * np.random.default_rng(0).standard_normal(5 * 16000)
    assert embed(audio).shape == (5, 128)
    assert classify(audio).shape == (527,)
