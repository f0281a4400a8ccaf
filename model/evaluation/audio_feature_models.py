"""The feature extractors of the semantic metrics: VGGish (FAD) and PaSST (KLD), plus tiny random stand-ins.

Real models, weights fetched on first use into the torch hub cache:

* VGGish from the PyPI package ``torchvggish`` (Harri Taylor's port that ``audioldm_eval`` loads through
  ``torch.hub.load("harritaylor/torchvggish", "vggish")``; same code and release weights). As
  ``audioldm_eval`` does, the PCA post-processing is off and the last ReLU of the embedding head is
  removed, so the embeddings are the 128-d pre-activation outputs, one per 0.96 s of 16-kHz audio.
* PaSST from the PyPI package ``hear21passt`` (``get_basic_model(mode="logits")``, 527 AudioSet
  classes). PaSST runs at 32 kHz: the 16-kHz clip is resampled and padded or cut to 10 s (320000
  samples), as the PaSST branch of ``audioldm_eval`` pads its input.

Neither package is a dependency of the project (``hear21passt`` needs ``timm``, which pulls a different
torch); install them to evaluate: ``pip install torchvggish resampy hear21passt timm``. Tests use
:func:`tiny_random_embedder` / :func:`tiny_random_classifier`, which run the same plumbing offline.

Shapes: N samples (16 kHz), M frames, D embedding width, C classes.
"""

from __future__ import annotations

import numpy as np
import torch

from visage.model.files.audio_io import resample

from .semantic_metrics import Classifier, Embedder

SAMPLE_RATE = 16_000
PASST_RATE = 32_000
PASST_SAMPLES = 320_000  # 10 s at 32 kHz


class FeatureModelUnavailable(ImportError):
    """A real feature extractor's package is not installed; the message says what to install."""


def load_vggish(device: str = "cpu") -> Embedder:
    """VGGish embeddings as ``audioldm_eval``'s FAD uses them (no PCA, no final ReLU).

    Raises:
        FeatureModelUnavailable: ``torchvggish`` (or its ``resampy`` dependency) is not installed.
    """
    try:
        import torchvggish
    except ImportError as exc:
        raise FeatureModelUnavailable(f"FAD needs VGGish: pip install torchvggish resampy ({exc})") from exc
    model = torchvggish.vggish(postprocess=False)  # downloads the release weights on first use
    model.embeddings = torch.nn.Sequential(*list(model.embeddings.children())[:-1])
    model = model.eval().to(device)

    @torch.inference_mode()
    def embed(audio: np.ndarray) -> np.ndarray:
        examples = torchvggish.waveform_to_examples(np.asarray(audio, dtype=np.float64), SAMPLE_RATE)
        return model(examples.detach().to(device)).cpu().numpy()  # [M, 128]

    return embed


def load_passt(device: str = "cpu") -> Classifier:
    """PaSST AudioSet logits for a 16-kHz clip (resampled to 32 kHz, padded or cut to 10 s).

    Raises:
        FeatureModelUnavailable: ``hear21passt`` (or ``timm``) is not installed.
    """
    try:
        from hear21passt.base import get_basic_model
    except ImportError as exc:
        raise FeatureModelUnavailable(f"KLD needs PaSST: pip install hear21passt timm ({exc})") from exc
    model = get_basic_model(mode="logits").eval().to(device)  # downloads the weights on first use

    @torch.inference_mode()
    def classify(audio: np.ndarray) -> np.ndarray:
        x = resample(
            np.asarray(audio, dtype=np.float32)[None], SAMPLE_RATE, PASST_RATE, num_samples=PASST_SAMPLES
        )
        return model(torch.from_numpy(x).to(device))[0].float().cpu().numpy()  # [527]

    return classify


def _band_energies(audio: np.ndarray, frame: int) -> np.ndarray:
    """Log energies of 16 spectral bands per frame: [M, 16]."""
    x = np.asarray(audio, dtype=np.float64)
    count = max(1, len(x) // frame)
    x = np.pad(x, (0, max(0, count * frame - len(x))))[: count * frame].reshape(count, frame)
    power = np.abs(np.fft.rfft(x * np.hanning(frame), axis=-1)) ** 2
    bands = np.array_split(power, 16, axis=-1)
    return np.log(np.stack([b.mean(axis=-1) for b in bands], axis=-1) + 1e-10)


def tiny_random_embedder(seed: int = 0, dim: int = 8, frame: int = 4000) -> Embedder:
    """A fixed random embedding of band energies per 0.25 s: FAD plumbing without downloads."""
    weight = np.random.default_rng(seed).standard_normal((16, dim)) / 4

    def embed(audio: np.ndarray) -> np.ndarray:
        return np.tanh(_band_energies(audio, frame) / 10 @ weight)  # [M, dim]

    return embed


def tiny_random_classifier(seed: int = 0, classes: int = 10) -> Classifier:
    """Fixed random class logits from mean band energies: KLD plumbing without downloads."""
    weight = np.random.default_rng(seed + 1).standard_normal((16, classes)) / 4

    def classify(audio: np.ndarray) -> np.ndarray:
        return _band_energies(audio, 4000).mean(axis=0) / 5 @ weight  # [C]

    return classify
