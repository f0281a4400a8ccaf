"""Audio codec interface, the Descript Audio Codec adapter, and the per-channel FOA adapter.

The transformer only ever sees codes; this module is the one place that turns audio into codes and
back. As in audiocraft's ``CompressionModel`` / ``InterleaveStereoCompressionModel``, the codec itself
is mono (:class:`AudioCodec`, implemented by :class:`DacCodec`) and multichannel audio is adapted
outside it (:class:`FoaCodec` runs the four AmbiX channels through one mono codec as a batch).

Dimension letters: B batch, C ambisonic channels (4: W, Y, Z, X in ACN order), K codebooks per channel,
N audio samples, T codec frames (``ceil(N / hop_length)``).

Long signals are processed in chunks of code frames. DAC's convolutions are non-causal with "same"
padding, so a frame's output depends only on a few neighbouring frames. Its receptive field is 10
latent frames on each side for the decoder and 8 frames for the encoder; ``tests/model/audio/test_codec.py``
measures it on the tiny model, and the release architecture (``dac.DAC()``: same kernels, dilations
and strides 2·4·8·8 / 8·8·4·2, only wider) gives the same numbers. Each chunk is therefore run with
:data:`CONTEXT_FRAMES` extra frames on both sides and only its centre is kept, which makes the stitched
result equal to a one-pass run up to float rounding: no seam, no cross-fade, and memory bounded by the
chunk size instead of the clip length.

Decoding speed: :func:`prepare_for_inference` folds DAC's weight norm into plain weights once instead
of recomputing them at every call, and swaps DAC's Snake activations and residual sums for versions
that work in one buffer in place (the same float operations in the same order, so the same bits, which
``test_codec.py`` checks against DAC's own ``decode``/``encode``; what they save is four full-size
temporary tensors per activation, whose page faults cost more than the arithmetic). On a 2-core AMD
EPYC VM that took the four channels of a 5-s clip from 35 s to 16 s (``visage bench pipeline``; ``visage
bench codec`` compares the variants on any machine). Measured and left out because they change the
bits: chunks shorter than the clip (more work for the context, and not faster), convolutions in
channels-last layout (1.1-1.8x faster per convolution), ``torch.compile`` (activations ~5x faster after
~40 s of compiling, 1-ulp differences in 8 % of the samples) and another thread count (DAC's output bits
depend on it, so it is left to torch).
"""

from __future__ import annotations

import abc
import contextlib
import os
import pickle
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

if TYPE_CHECKING:  # dac is imported lazily: slow, and it fails where a CUDA torchaudio sits next to CPU torch
    import dac

CONTEXT_FRAMES = 16
"""Frames of context on each side of a chunk; the measured receptive field is 10, so 16 leaves margin."""

CHUNK_FRAMES = 512
"""Frames kept per chunk (5.9 s at 44.1 kHz). A 5-s ViSAGe clip (431 frames) fits in one chunk, so it
is processed in one pass exactly as the official scripts do."""

FOA_CHANNELS = 4
"""First-order ambisonics: W, Y, Z, X (ACN order)."""

DecodeProgress = Callable[[float], None]
"""Called while a decode runs with the fraction of its work done (increasing, the last call 1.0)."""

_MODEL_BITRATE = "8kbps"  # the 9-codebook release ViSAGe was trained on (official_model.md §5.1)

_TINY_DAC_KWARGS = {
    # Same strides, hop, codebooks and sample rate as the released 44.1 kHz model (so the same frame
    # rate and receptive field), with channel widths small enough for a 4 x 5 s decode in well under 1 s.
    "encoder_dim": 8,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 32,
    "decoder_rates": [8, 8, 4, 2],
    "n_codebooks": 9,
    "codebook_size": 1024,
    "codebook_dim": 8,
    "sample_rate": 44100,
}


class CodecUnavailableError(ImportError):
    """The `dac` package cannot be imported (usually the CUDA-only torchaudio libraries next to CPU torch)."""


class CodecWeightsError(FileNotFoundError):
    """The codec weights are neither on disk nor downloadable, or the file cannot be read."""


class AudioCodec(abc.ABC):
    """A mono neural audio codec: audio ``[B, 1, N]`` ↔ codes ``[B, K, T]``.

    Same contract as audiocraft's ``CompressionModel``: the properties describe the code stream, so the
    rest of the code never hard-codes 44.1 kHz, 512 samples per frame or 9 × 1024 codebooks.
    """

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Audio sample rate in Hz."""

    @property
    @abc.abstractmethod
    def hop_length(self) -> int:
        """Audio samples per code frame."""

    @property
    @abc.abstractmethod
    def num_codebooks(self) -> int:
        """Codebooks per frame (K)."""

    @property
    @abc.abstractmethod
    def cardinality(self) -> int:
        """Entries per codebook; valid codes are ``0 .. cardinality - 1``."""

    @property
    def frame_rate(self) -> float:
        """Code frames per second (44100 / 512 ≈ 86.13 for DAC 44.1 kHz)."""
        return self.sample_rate / self.hop_length

    @abc.abstractmethod
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, N]`` at :attr:`sample_rate` → codes ``[B, K, ceil(N / hop_length)]`` (int64)."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor, *, progress: DecodeProgress | None = None) -> torch.Tensor:
        """Codes ``[B, K, T]`` → audio ``[B, 1, T · hop_length]`` (float32); ``progress`` as it goes."""


class _Span(NamedTuple):
    """One chunk of a chunked pass, in code frames: ``lo <= start < stop <= hi``."""

    lo: int  # first frame fed to the network (left context included)
    start: int  # first frame kept
    stop: int  # one past the last frame kept
    hi: int  # one past the last frame fed (right context included)


def _chunk_spans(num_frames: int, chunk_frames: int, context_frames: int) -> Iterator[_Span]:
    """Cover ``[0, num_frames)`` with kept ranges of ``chunk_frames``, each fed with its context."""
    for start in range(0, num_frames, chunk_frames):
        stop = min(start + chunk_frames, num_frames)
        yield _Span(max(0, start - context_frames), start, stop, min(num_frames, stop + context_frames))


class _InPlaceSnake(nn.Module):
    """DAC's Snake activation ``x + sin²(αx) / (α + 1e-9)``, in one buffer when no gradient is needed.

    The operations are those of ``dac.nn.layers.snake`` in the same order (multiply, sine, square, scale,
    add; addition and multiplication commute exactly), so the result has the same bits; only the four
    intermediate tensors are gone. With autograd on it computes out of place, as DAC does.
    """

    inverse: torch.Tensor  # [1, C, 1] 1 / (α + 1e-9), computed once

    def __init__(self, alpha: nn.Parameter) -> None:
        super().__init__()
        self.alpha = alpha  # [1, C, 1], the same parameter (and state-dict name) as dac's Snake1d
        self.register_buffer("inverse", (alpha.detach() + 1e-9).reciprocal(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad):
            return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)
        y = x * self.alpha  # [B, C, N]
        return y.sin_().pow_(2).mul_(self.inverse).add_(x)


class _InPlaceResidualUnit(nn.Module):
    """DAC's ``ResidualUnit`` (``x + block(x)``) adding into the block's output instead of a new tensor."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block  # same submodule and state-dict names as dac's ResidualUnit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        pad = (x.shape[-1] - y.shape[-1]) // 2
        if pad > 0:
            x = x[..., pad:-pad]
        if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
            return x + y
        return y.add_(x)


def fold_weight_norm(model: nn.Module) -> int:
    """Replace each weight-normalised layer's ``(g, v)`` by the weight ``g · v / ‖v‖``; returns how many.

    DAC recomputes that weight for all of its convolutions at every call. Computed once here, by the same
    function torch's hook calls, the weights have the same bits, and so has the audio.
    """
    folded = 0
    for module in model.modules():
        if hasattr(module, "weight_g") and hasattr(module, "weight_v"):
            torch.nn.utils.remove_weight_norm(module)
            folded += 1
    return folded


def prepare_for_inference(model: dac.DAC) -> dac.DAC:
    """Make a DAC model decode and encode faster with the same bits: weight norm folded, activations in place.

    Changes ``model`` in place (idempotent) and returns it. Parameter names are kept (except the weight
    norm's ``weight_g``/``weight_v``, now one ``weight``); training it afterwards is not supported.
    """
    dac_module = _import_dac()
    fold_weight_norm(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, dac_module.nn.layers.Snake1d):
                setattr(parent, name, _InPlaceSnake(child.alpha))
            elif isinstance(child, dac_module.model.dac.ResidualUnit):
                setattr(parent, name, _InPlaceResidualUnit(child.block))
    return model


def _conv_work(network: nn.Module, length: int) -> dict[nn.Module, float]:
    """Multiply-adds of each convolution of a sequential network fed ``length`` steps, in running order.

    DAC's decoder runs its modules in the order they are registered, so walking them while tracking the
    length (the transposed convolutions upsample) gives each convolution's output length.
    """
    work: dict[nn.Module, float] = {}
    for module in network.modules():
        if not isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
            continue
        k, s, d = module.kernel_size[0], module.stride[0], module.dilation[0]
        p = module.padding[0] if isinstance(module.padding, tuple) else 0  # DAC pads with numbers
        if isinstance(module, nn.ConvTranspose1d):
            work[module] = float(module.weight.numel() * length)  # every input step meets the whole kernel
            length = (length - 1) * s - 2 * p + d * (k - 1) + module.output_padding[0] + 1
        else:
            length = (length + 2 * p - d * (k - 1) - 1) // s + 1
            work[module] = float(module.weight.numel() * length)
    return work


@contextlib.contextmanager
def _reporting(work: dict[nn.Module, float], advance: Callable[[float], None]) -> Iterator[None]:
    """While inside, each module of ``work`` calls ``advance(its work)`` when it has run."""

    def hook(module: nn.Module, _inputs: object, _output: object) -> None:
        advance(work[module])

    handles = [module.register_forward_hook(hook) for module in work]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _import_dac() -> ModuleType:
    """Import `dac` on first use, turning the known torchaudio breakage into an actionable error."""
    try:
        import dac
    except OSError as exc:  # torchaudio's CUDA-only .so next to CPU torch (packaging.md, Blocker 1)
        raise CodecUnavailableError(
            f"Cannot import the Descript Audio Codec (dac): {exc}. This is torchaudio's CUDA build "
            "failing to load next to a CPU build of torch; run `visage doctor --fix` to repair the "
            "environment."
        ) from exc
    return dac


def _release_location(dac_module: ModuleType, model_type: str) -> tuple[str, Path]:
    """URL and cache path that ``dac.utils.download`` uses for the latest 8 kbps weights."""
    utils = dac_module.utils
    tag = utils.__MODEL_LATEST_TAGS__[(model_type, _MODEL_BITRATE)]
    url = utils.__MODEL_URLS__[(model_type, tag, _MODEL_BITRATE)]
    cache = Path.home() / ".cache" / "descript" / "dac" / f"weights_{model_type}_{_MODEL_BITRATE}_{tag}.pth"
    return url, cache


def _download_weights(dac_module: ModuleType, model_type: str) -> Path:
    """Path of the cached release weights, fetched by DAC's own downloader if missing."""
    try:
        return Path(dac_module.utils.download(model_type=model_type, model_bitrate=_MODEL_BITRATE))
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors; a non-200 reply is ValueError
        url, cache = _release_location(dac_module, model_type)
        raise CodecWeightsError(
            f"DAC {model_type} weights are not cached at {cache} and could not be downloaded ({exc}). "
            f"Fetch them ahead of time on a machine with network access with `visage download`, or "
            f"download {url} to {cache}, or pass the path of a local weights file."
        ) from exc


class DacCodec(AudioCodec):
    """:class:`AudioCodec` over a ``dac.DAC`` model, in fp32, processed in overlapping chunks.

    The model is prepared for inference in place (:func:`prepare_for_inference`: same outputs, faster).

    Encoding follows the official preprocessing (``official_model.md`` §7.4): right-pad to a multiple
    of the hop with ``model.preprocess``, then ``model.encode(x, n_quantizers=K)``. Decoding follows
    ``generate_ambi.py`` (§5.1): ``quantizer.from_codes`` then ``model.decode``.

    Args:
        model (dac.DAC): the codec network; it is put in eval mode and fp32.
        chunk_frames (int): frames kept per chunk; bounds peak memory for long signals.
        context_frames (int): extra frames fed on each side of a chunk; must cover the receptive field
            for chunked results to equal one-pass results.
    """

    def __init__(
        self, model: dac.DAC, *, chunk_frames: int = CHUNK_FRAMES, context_frames: int = CONTEXT_FRAMES
    ) -> None:
        if chunk_frames < 1 or context_frames < 0:
            raise ValueError(
                f"need chunk_frames >= 1 and context_frames >= 0, got {chunk_frames}, {context_frames}"
            )
        self.model = prepare_for_inference(model.float().eval())
        self.chunk_frames = chunk_frames
        self.context_frames = context_frames

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device = "cpu",
        model_type: str = "44khz",
        chunk_frames: int = CHUNK_FRAMES,
        context_frames: int = CONTEXT_FRAMES,
    ) -> DacCodec:
        """Load weights saved by ``DAC.save(..., package=False)``: a release file or a tiny random one.

        Args:
            path: weights file (e.g. ``~/.cache/descript/dac/weights_44khz_8kbps_0.0.1.pth`` or one from
                :func:`build_tiny_random_dac`). ``None`` uses DAC's own cache and downloader.
            device: where the model runs.
            model_type: release to fetch when ``path`` is None ("44khz" is what ViSAGe uses).
            chunk_frames: see :class:`DacCodec`.
            context_frames: see :class:`DacCodec`.

        Raises:
            CodecUnavailableError: `dac` cannot be imported.
            CodecWeightsError: the weights are missing and cannot be downloaded, or cannot be read.
        """
        dac_module = _import_dac()
        weights = _download_weights(dac_module, model_type) if path is None else Path(path)
        if not weights.is_file():
            raise CodecWeightsError(f"DAC weights file not found: {weights}")
        try:
            model = dac_module.utils.load_model(load_path=str(weights))
        except (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as exc:
            raise CodecWeightsError(
                f"Cannot read DAC weights from {weights} ({exc}); delete the file and fetch it again."
            ) from exc
        return cls(model.to(device), chunk_frames=chunk_frames, context_frames=context_frames)

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.model.hop_length)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.n_codebooks)

    @property
    def cardinality(self) -> int:
        return int(self.model.codebook_size)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters; inputs are moved there and outputs stay there."""
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, N]`` at 44.1 kHz → codes ``[B, K, ceil(N / hop)]`` (int64), chunk by chunk.

        The whole signal is zero-padded once, as ``model.preprocess`` does for a one-pass encode, and
        every chunk starts on a frame boundary, so the strided convolutions see the same sample grid.
        """
        if audio.dim() != 3 or audio.shape[1] != 1 or audio.shape[-1] == 0:
            raise ValueError(f"expected mono audio [B, 1, N] with N > 0, got {tuple(audio.shape)}")
        hop = self.hop_length
        audio = self.model.preprocess(audio.to(self.device, torch.float32), self.sample_rate)  # [B, 1, T·hop]
        num_frames = audio.shape[-1] // hop
        codes = torch.empty(
            (audio.shape[0], self.num_codebooks, num_frames), dtype=torch.long, device=self.device
        )  # [B, K, T]
        for span in _chunk_spans(num_frames, self.chunk_frames, self.context_frames):
            _, chunk_codes, *_ = self.model.encode(
                audio[..., span.lo * hop : span.hi * hop], n_quantizers=self.num_codebooks
            )  # [B, K, hi - lo]
            codes[..., span.start : span.stop] = chunk_codes[..., span.start - span.lo : span.stop - span.lo]
        return codes

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, *, progress: DecodeProgress | None = None) -> torch.Tensor:
        """Codes ``[B, K, T]`` → audio ``[B, 1, T · hop]`` (float32), chunk by chunk.

        ``progress`` is called after each convolution with the share of the decode's multiply-adds done,
        so a long decode reports while it runs (a 5-s clip is one chunk, 31 convolutions).

        Raises:
            ValueError: wrong shape, or a code outside ``[0, cardinality)`` (such as the pattern's pad
                id 1024, which means the codes were not de-interleaved).
        """
        if codes.dim() != 3 or codes.shape[1] != self.num_codebooks:
            raise ValueError(f"expected codes [B, {self.num_codebooks}, T], got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cardinality):
            raise ValueError(
                f"codes must lie in [0, {self.cardinality}); got [{int(codes.min())}, {int(codes.max())}]"
            )
        hop = self.hop_length
        codes = codes.to(self.device, torch.long)
        num_frames = codes.shape[-1]
        audio = torch.empty((codes.shape[0], 1, num_frames * hop), device=self.device)  # [B, 1, T·hop]
        spans = list(_chunk_spans(num_frames, self.chunk_frames, self.context_frames))
        works = [_conv_work(self.model.decoder, span.hi - span.lo) for span in spans]
        total, done = sum(sum(w.values()) for w in works), 0.0

        def advance(amount: float) -> None:
            nonlocal done
            done += amount
            if progress is not None:
                progress(min(done / total, 1.0))

        for span, work in zip(spans, works, strict=True):
            with _reporting(work, advance) if progress is not None else contextlib.nullcontext():
                latent = self.model.quantizer.from_codes(codes[..., span.lo : span.hi])[0]  # [B, D, hi - lo]
                chunk = self.model.decode(latent)  # [B, 1, (hi - lo)·hop]
            audio[..., span.start * hop : span.stop * hop] = chunk[
                ..., (span.start - span.lo) * hop : (span.stop - span.lo) * hop
            ]
        if progress is not None:
            progress(1.0)
        return audio


class FoaCodec:
    """Four-channel AmbiX codec: each channel through one mono :class:`AudioCodec`, as one batch.

    Code rows are channel-major, as in the official preprocessing (``official_model.md`` §4.1, §7.4):
    row ``r = K·c + q`` holds codebook ``q`` of channel ``c``, so with K = 9 rows 0–8 are W, 9–17 Y,
    18–26 Z and 27–35 X.

    Args:
        codec (AudioCodec): the mono codec used for every channel.
    """

    def __init__(self, codec: AudioCodec) -> None:
        self.codec = codec

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def hop_length(self) -> int:
        return self.codec.hop_length

    @property
    def frame_rate(self) -> float:
        return self.codec.frame_rate

    @property
    def cardinality(self) -> int:
        return self.codec.cardinality

    @property
    def num_rows(self) -> int:
        """Code rows per frame: C · K (36 for FOA over a 9-codebook DAC)."""
        return FOA_CHANNELS * self.codec.num_codebooks

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """AmbiX audio ``[B, 4, N]`` → codes ``[B, T, C·K]`` with ``T = ceil(N / hop)``."""
        if audio.dim() != 3 or audio.shape[1] != FOA_CHANNELS:
            raise ValueError(f"expected AmbiX audio [B, {FOA_CHANNELS}, N], got {tuple(audio.shape)}")
        batch, channels, num_samples = audio.shape
        codes = self.codec.encode(audio.reshape(batch * channels, 1, num_samples))  # [B·C, K, T]
        codes = codes.reshape(batch, self.num_rows, codes.shape[-1])  # [B, C·K, T], r = K·c + q
        return codes.transpose(1, 2).contiguous()  # [B, T, C·K]

    def decode(self, codes: torch.Tensor, *, progress: DecodeProgress | None = None) -> torch.Tensor:
        """Codes ``[B, T, C·K]`` → AmbiX audio ``[B, 4, T · hop]`` in W, Y, Z, X order."""
        if codes.dim() != 3 or codes.shape[-1] != self.num_rows:
            raise ValueError(f"expected codes [B, T, {self.num_rows}], got {tuple(codes.shape)}")
        batch, num_frames, _ = codes.shape
        mono = codes.transpose(1, 2).reshape(
            batch * FOA_CHANNELS, self.codec.num_codebooks, num_frames
        )  # [B·C, K, T]
        audio = self.codec.decode(mono, progress=progress)  # [B·C, 1, T·hop]
        return audio.reshape(batch, FOA_CHANNELS, audio.shape[-1])  # [B, C, T·hop]


def build_tiny_random_dac(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a small randomly initialised DAC that :meth:`DacCodec.load` reads like the release weights.

    Tests and the offline ``tiny-random`` mode use it so that they exercise the production loading
    path without a download. The file is written atomically (temporary name, then rename), so a
    concurrent reader never sees half a file.

    Args:
        path: destination ``.pth`` file; its folder must exist.
        seed: seed for the random weights (the global RNG state is left untouched).

    Returns:
        The path written.
    """
    dac_module = _import_dac()
    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = dac_module.DAC(**_TINY_DAC_KWARGS)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        model.save(str(tmp), package=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
