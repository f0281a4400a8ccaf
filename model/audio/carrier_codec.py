"""A deterministic stand-in codec for CPU experiments: each codebook is the signed gain of one fixed carrier.

Why it exists: the spatial metrics depend on the relative signed amplitudes of W, Y, Z and X, and a
randomly initialised DAC does not keep them (measured: every channel decodes at the same level whatever
its input level, and the sign relation between W and the dipoles is lost), while the released DAC
cannot be downloaded in tests. This codec keeps them exactly for the sounds the synthetic benchmark
makes, at a fraction of DAC's cost, behind the same :class:`~visage.model.audio.codec.AudioCodec` interface
(so ``FoaCodec``, the dataset builder, training and generation run unchanged).

How it works: codebook q owns a carrier, deterministic band-limited noise in its own frequency band
(so every codebook has its own timbre). A frame of ``hop`` samples is coded as the least-squares gains
of the K carriers over that frame, each companded (mu-law) and quantised to ``cardinality`` levels;
decoding sums the carriers scaled by the decoded gains. Any sum of carriers with slowly varying gains,
which is what ``synthetic_scenes`` renders, survives the round trip up to quantisation; other audio is
reduced to its projection on the carriers.

Dimension letters: B batch, K codebooks (= carriers), T frames, N samples, L hop.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .codec import AudioCodec, DecodeProgress

CARRIER_SECONDS = 8.0  # carriers repeat with this period (longer signals reuse them)
LOW_HZ, HIGH_HZ = 150.0, 7000.0  # carrier bands split this range on a log scale (inside 16-kHz eval)
MU = 255.0  # mu-law companding of the gains


class CarrierCodec(AudioCodec):
    """The carrier-gain codec (see the module docstring).

    Args:
        num_codebooks: carriers K.
        cardinality: quantisation levels per gain (odd, so that silence has a level of its own).
        sample_rate: audio rate; 44100 with ``hop_length`` 512 gives DAC's frame rate.
        hop_length: samples per frame.
        max_gain: gains are clipped to [-max_gain, max_gain] before companding.
        seed: seed of the carriers' noise.
    """

    def __init__(
        self,
        *,
        num_codebooks: int = 4,
        cardinality: int = 63,
        sample_rate: int = 44100,
        hop_length: int = 512,
        max_gain: float = 1.0,
        seed: int = 0,
    ) -> None:
        if num_codebooks < 1 or cardinality < 3 or not cardinality % 2:
            raise ValueError(
                f"need num_codebooks >= 1 and an odd cardinality >= 3, got {num_codebooks}, {cardinality}"
            )
        self._k, self._card, self._sr, self._hop = num_codebooks, cardinality, sample_rate, hop_length
        self.max_gain = max_gain
        period = int(round(CARRIER_SECONDS * sample_rate / hop_length)) * hop_length
        self.carriers = torch.from_numpy(_band_noise(num_codebooks, period, sample_rate, seed))  # [K, P]

    @property
    def sample_rate(self) -> int:
        return self._sr

    @property
    def hop_length(self) -> int:
        return self._hop

    @property
    def num_codebooks(self) -> int:
        return self._k

    @property
    def cardinality(self) -> int:
        return self._card

    def carrier_signal(self, codebook: int, num_samples: int) -> np.ndarray:
        """Carrier ``codebook`` over ``num_samples`` samples from time 0 (float32 ``[N]``)."""
        period = self.carriers.shape[1]
        index = np.arange(num_samples) % period
        return self.carriers[codebook].numpy()[index]

    def _frames(self, num_frames: int) -> torch.Tensor:
        period = self.carriers.shape[1]
        index = torch.arange(num_frames * self._hop) % period
        return self.carriers[:, index].view(self._k, num_frames, self._hop).permute(1, 2, 0)  # [T, L, K]

    def quantize(self, gains: torch.Tensor) -> torch.Tensor:
        """Gains -> codes in [0, cardinality) (mu-law, symmetric, code (cardinality-1)/2 is silence)."""
        x = gains.clamp(-self.max_gain, self.max_gain) / self.max_gain
        y = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)  # [-1, 1]
        half = (self._card - 1) / 2
        return torch.round(y * half + half).long()

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> gains (inverse of :meth:`quantize` up to the level spacing)."""
        half = (self._card - 1) / 2
        y = (codes.double() - half) / half
        return torch.sign(y) * torch.expm1(y.abs() * math.log1p(MU)) / MU * self.max_gain

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, N]`` -> codes ``[B, K, ceil(N / hop)]``: quantised least-squares carrier gains."""
        if audio.dim() != 3 or audio.shape[1] != 1 or audio.shape[-1] == 0:
            raise ValueError(f"expected mono audio [B, 1, N] with N > 0, got {tuple(audio.shape)}")
        b, _, n = audio.shape
        t = -(-n // self._hop)
        x = torch.nn.functional.pad(audio[:, 0].double(), (0, t * self._hop - n)).view(b, t, self._hop, 1)
        basis = self._frames(t).double()  # [T, L, K]
        gram = basis.transpose(1, 2) @ basis  # [T, K, K]
        rhs = torch.einsum("tlk,btl->btk", basis, x[..., 0])  # [B, T, K]
        gains = torch.linalg.solve(gram, rhs[..., None])[..., 0]  # [B, T, K]
        return self.quantize(gains).transpose(1, 2).contiguous()  # [B, K, T]

    def decode(self, codes: torch.Tensor, *, progress: DecodeProgress | None = None) -> torch.Tensor:
        """Codes ``[B, K, T]`` -> audio ``[B, 1, T * hop]`` (float32); one product, so one progress call."""
        if codes.dim() != 3 or codes.shape[1] != self._k:
            raise ValueError(f"expected codes [B, {self._k}, T], got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self._card):
            raise ValueError(
                f"codes must lie in [0, {self._card}); got [{int(codes.min())}, {int(codes.max())}]"
            )
        b, _, t = codes.shape
        gains = self.dequantize(codes.cpu()).transpose(1, 2)  # [B, T, K]
        audio = torch.einsum("tlk,btk->btl", self._frames(t).double(), gains)  # [B, T, L]
        if progress is not None:
            progress(1.0)
        return audio.reshape(b, 1, t * self._hop).float()


def _band_noise(count: int, length: int, sample_rate: int, seed: int) -> np.ndarray:
    """``count`` unit-RMS noises, each confined to its own band of a log split of [LOW_HZ, HIGH_HZ]."""
    rng = np.random.default_rng(seed)
    edges = np.geomspace(LOW_HZ, HIGH_HZ, count + 1)
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    out = np.empty((count, length), dtype=np.float32)
    for q in range(count):
        spectrum = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
        spectrum[(freqs < edges[q]) | (freqs >= edges[q + 1])] = 0.0
        signal = np.fft.irfft(spectrum, n=length)
        out[q] = signal / np.sqrt(np.mean(signal**2))
    return out
