"""Semantic metrics of the paper: FAD (Fréchet audio distance) and KLD (class-distribution divergence).

As computed by ``audioldm_eval``, which the official evaluation runs (spec §8.2, paper App. C):

* **FAD**: every clip of a set is cut into embedding frames (VGGish: 0.96 s each, 128-d, without its
  PCA and final ReLU); the frames of *all* clips of the set are pooled, a Gaussian (mean, covariance
  with N - 1) is fitted to each set, and FAD is their Fréchet distance
  ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))``.
* **KLD**: one class-logit vector per clip (PaSST over AudioSet's 527 classes); generated and reference
  clips are paired by id and KLD = ``sum_i KL(softmax(ref_i) || softmax(gen_i) + 1e-6) / N`` (their
  ``kullback_leibler_divergence_softmax``).

Both are computed on mono signals: the FOA decoded toward the camera (FAD_dec, KLD_dec) and each channel
W, Y, Z, X on its own (averaged: FAD_avg, KLD_avg). The feature extractors are passed in (callables), so
tests use tiny random ones and ``audio_feature_models`` loads the real ones.

Shapes: N samples, M embedding frames, D embedding width, C classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg

Embedder = Callable[[np.ndarray], np.ndarray]  # 16-kHz mono [N] -> embeddings [M, D]
Classifier = Callable[[np.ndarray], np.ndarray]  # 16-kHz mono [N] -> class logits [C]

KL_EPS = 1e-6  # audioldm_eval adds this to the generated probabilities before the log


def gaussian_statistics(embeddings: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (N - 1 normalisation) of the frames of all clips, pooled.

    Raises:
        ValueError: fewer than two frames, or clips whose embedding widths differ.
    """
    if not embeddings:
        raise ValueError("no embeddings")
    widths = {e.shape[-1] for e in embeddings}
    if len(widths) != 1 or any(e.ndim != 2 for e in embeddings):
        raise ValueError(
            f"embeddings must all be [M, D] with one D, got shapes {[e.shape for e in embeddings]}"
        )
    frames = np.concatenate(embeddings).astype(np.float64)  # [sum M, D]
    if len(frames) < 2:
        raise ValueError("a covariance needs at least two embedding frames")
    return frames.mean(axis=0), np.cov(frames, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between two Gaussians, as pytorch-fid / audioldm_eval compute it.

    A singular product gets ``eps`` added to both diagonals; a tiny imaginary part from ``sqrtm`` is
    dropped (a large one raises).
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fad(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray], embedder: Embedder) -> float:
    """FAD between two sets of 16-kHz mono clips."""
    mu1, s1 = gaussian_statistics([embedder(x) for x in generated])
    mu2, s2 = gaussian_statistics([embedder(x) for x in reference])
    return frechet_distance(mu1, s1, mu2, s2)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def kld(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """``sum_i KL(softmax(ref_i) || softmax(gen_i) + eps) / N`` over paired clips ([N, C] each)."""
    if generated_logits.shape != reference_logits.shape or generated_logits.ndim != 2:
        raise ValueError(
            f"expected two [N, C] logit arrays, got {generated_logits.shape} and {reference_logits.shape}"
        )
    p_ref = _softmax(reference_logits.astype(np.float64))
    log_gen = np.log(_softmax(generated_logits.astype(np.float64)) + KL_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p_ref > 0, p_ref * (np.log(p_ref) - log_gen), 0.0)
    return float(terms.sum() / len(p_ref))


def paired_kld(
    generated: Sequence[np.ndarray], reference: Sequence[np.ndarray], classifier: Classifier
) -> float:
    """KLD between paired clips (``generated[i]`` goes with ``reference[i]``)."""
    if len(generated) != len(reference) or not generated:
        raise ValueError(
            f"KLD needs the same non-zero number of clips, got {len(generated)} and {len(reference)}"
        )
    return kld(np.stack([classifier(x) for x in generated]), np.stack([classifier(x) for x in reference]))
