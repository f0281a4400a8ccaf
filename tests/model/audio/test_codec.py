"""Codec adapters on a tiny random DAC loaded through the production path (no download)."""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from visage.model.audio.codec import (
    CONTEXT_FRAMES,
    CodecUnavailableError,
    CodecWeightsError,
    DacCodec,
    FoaCodec,
    _chunk_spans,
    build_tiny_random_dac,
    fold_weight_norm,
)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_random_dac(tmp_path_factory.mktemp("dac") / "tiny_dac.pth", seed=0)


@pytest.fixture(scope="module")
def codec(tiny_weights: Path) -> DacCodec:
    return DacCodec.load(tiny_weights)


def _raw_dac(path: Path) -> torch.nn.Module:
    """The DAC model exactly as DAC's own loader builds it (weight norm, its own activations)."""
    import dac

    return dac.utils.load_model(load_path=str(path)).eval()


def _noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _random_codes(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 1024, shape, generator=torch.Generator().manual_seed(seed))


def test_properties_describe_dac_44khz(codec: DacCodec) -> None:
    assert (codec.sample_rate, codec.hop_length, codec.num_codebooks, codec.cardinality) == (
        44100,
        512,
        9,
        1024,
    )
    assert codec.frame_rate == pytest.approx(44100 / 512)
    foa = FoaCodec(codec)
    assert (foa.num_rows, foa.sample_rate, foa.hop_length, foa.cardinality) == (36, 44100, 512, 1024)


@pytest.mark.parametrize(("num_samples", "num_frames"), [(1, 1), (512, 1), (513, 2), (5000, 10)])
def test_encode_gives_ceil_frames(codec: DacCodec, num_samples: int, num_frames: int) -> None:
    codes = codec.encode(_noise(2, 1, num_samples))
    assert codes.shape == (2, 9, num_frames)
    assert codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 1024


def test_foa_encode_five_seconds_gives_431_frames(codec: DacCodec) -> None:
    # official_model.md §7.4: 220500 samples → preprocess pads to 220672 → 431 frames.
    codes = FoaCodec(codec).encode(_noise(1, 4, 220500))
    assert codes.shape == (1, 431, 36)


def test_foa_rows_are_channel_major(codec: DacCodec) -> None:
    audio = _noise(2, 4, 3000, seed=3)  # four different signals per item
    codes = FoaCodec(codec).encode(audio)  # [B, T, 36]
    for c in range(4):
        alone = codec.encode(audio[:, c : c + 1])  # [B, 9, T]
        torch.testing.assert_close(codes[:, :, 9 * c : 9 * c + 9], alone.transpose(1, 2), rtol=0, atol=0)


def test_foa_decode_length_and_channel_order(codec: DacCodec) -> None:
    codes = _random_codes(2, 20, 36, seed=4)
    audio = FoaCodec(codec).decode(codes)
    assert audio.shape == (2, 4, 20 * 512)
    assert audio.dtype == torch.float32
    for c in range(4):
        alone = codec.decode(codes[:, :, 9 * c : 9 * c + 9].transpose(1, 2))  # [B, 1, T·hop]
        torch.testing.assert_close(audio[:, c : c + 1], alone, rtol=0, atol=1e-6)


def test_chunked_decode_equals_one_pass(codec: DacCodec) -> None:
    codes = _random_codes(2, 9, 100, seed=5)
    one_pass = DacCodec(codec.model, chunk_frames=10**6).decode(codes)
    chunked = DacCodec(codec.model, chunk_frames=8, context_frames=CONTEXT_FRAMES).decode(codes)
    assert (chunked - one_pass).abs().max() < 1e-6
    # Without context the seams show: the check above is not vacuous.
    seamed = DacCodec(codec.model, chunk_frames=8, context_frames=0).decode(codes)
    assert (seamed - one_pass).abs().max() > 1e-3


def test_chunked_encode_equals_one_pass(codec: DacCodec) -> None:
    audio = _noise(2, 1, 100 * 512 - 77, seed=6)
    one_pass = DacCodec(codec.model, chunk_frames=10**6).encode(audio)
    chunked = DacCodec(codec.model, chunk_frames=8, context_frames=CONTEXT_FRAMES).encode(audio)
    torch.testing.assert_close(chunked, one_pass, rtol=0, atol=0)
    seamed = DacCodec(codec.model, chunk_frames=8, context_frames=0).encode(audio)
    assert (seamed != one_pass).any()


def _dependency_radius(output: torch.Tensor, inputs: torch.Tensor, frame: int, per_frame: int) -> int:
    """Largest distance, in frames, from ``frame`` to an input frame that the output depends on."""
    (grad,) = torch.autograd.grad(output, inputs)
    used = grad.abs().sum(dim=(0, 1)).nonzero().flatten() // per_frame
    return int((used - frame).abs().max())


def test_receptive_field_fits_in_context(codec: DacCodec) -> None:
    model, hop, frames, centre = codec.model, codec.hop_length, 64, 32
    latent = torch.randn(1, model.latent_dim, frames, requires_grad=True)
    audio = model.decode(latent)  # [1, 1, frames·hop]
    centre_samples = audio[0, 0, centre * hop : (centre + 1) * hop].sum()
    decoder_radius = _dependency_radius(centre_samples, latent, centre, per_frame=1)
    signal = torch.randn(1, 1, frames * hop, requires_grad=True)
    encoder_radius = _dependency_radius(
        model.encoder(signal)[0, :, centre].sum(), signal, centre, per_frame=hop
    )
    # The values quoted in codec.py's docstring; the 44.1 kHz release shares these strides and kernels.
    assert (decoder_radius, encoder_radius) == (10, 8)
    assert max(decoder_radius, encoder_radius) <= CONTEXT_FRAMES


@given(num_frames=st.integers(1, 300), chunk_frames=st.integers(1, 64), context_frames=st.integers(0, 20))
def test_chunk_spans_tile_the_frames(num_frames: int, chunk_frames: int, context_frames: int) -> None:
    spans = list(_chunk_spans(num_frames, chunk_frames, context_frames))
    assert spans[0].start == 0 and spans[-1].stop == num_frames
    for prev, nxt in zip(spans, spans[1:], strict=False):
        assert prev.stop == nxt.start
    for span in spans:
        assert 0 <= span.lo <= span.start < span.stop <= span.hi <= num_frames
        assert span.stop - span.start <= chunk_frames
        assert span.start - span.lo == min(context_frames, span.start)
        assert span.hi - span.stop == min(context_frames, num_frames - span.stop)


def test_decode_rejects_pad_ids_and_bad_shapes(codec: DacCodec) -> None:
    codes = _random_codes(1, 9, 5)
    codes[0, 3, 2] = 1024  # the code pattern's pad id: codes were not de-interleaved
    with pytest.raises(ValueError, match=r"\[0, 1024\)"):
        codec.decode(codes)
    with pytest.raises(ValueError, match=r"\[B, 9, T\]"):
        codec.decode(_random_codes(1, 8, 5))
    with pytest.raises(ValueError, match=r"\[B, T, 36\]"):
        FoaCodec(codec).decode(_random_codes(1, 5, 9))
    with pytest.raises(ValueError, match=r"\[B, 4, N\]"):
        FoaCodec(codec).encode(_noise(1, 2, 100))


def test_missing_weights_offline_names_url_and_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import requests

    def offline(*args: object, **kwargs: object) -> None:
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setenv("HOME", str(tmp_path))  # DAC caches under Path.home()/.cache/descript/dac
    monkeypatch.setattr(requests, "get", offline)
    with pytest.raises(CodecWeightsError) as info:
        DacCodec.load()
    message = str(info.value)
    cache = tmp_path / ".cache" / "descript" / "dac" / "weights_44khz_8kbps_0.0.1.pth"
    assert str(cache) in message
    assert (
        "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.1/weights.pth" in message
    )
    assert "visage download" in message


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CodecWeightsError, match="not found"):
        DacCodec.load(tmp_path / "absent.pth")


def test_unreadable_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CodecWeightsError, match="Cannot read DAC weights"):
        DacCodec.load(broken)


class _BrokenTorchaudioFinder(importlib.abc.MetaPathFinder):
    """Fails `import dac` the way a CUDA-only torchaudio next to CPU torch does."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "dac":
            raise OSError("Could not load this library: .../torchaudio/lib/_torchaudio.abi3.so")


def test_dac_import_oserror_points_to_doctor(monkeypatch: pytest.MonkeyPatch, tiny_weights: Path) -> None:
    monkeypatch.delitem(sys.modules, "dac")
    monkeypatch.setattr(sys, "meta_path", [_BrokenTorchaudioFinder(), *sys.meta_path])
    with pytest.raises(CodecUnavailableError, match="visage doctor --fix"):
        DacCodec.load(tiny_weights)


@pytest.mark.weights
@pytest.mark.skipif(os.environ.get("VISAGE_TEST_WEIGHTS") != "1", reason="set VISAGE_TEST_WEIGHTS=1")
def test_release_weights_load_from_cache() -> None:
    codec = DacCodec.load()  # DAC's cache, downloading once if needed
    assert (codec.sample_rate, codec.hop_length, codec.num_codebooks, codec.cardinality) == (
        44100,
        512,
        9,
        1024,
    )
    assert FoaCodec(codec).decode(_random_codes(1, 3, 36)).shape == (1, 4, 3 * 512)


def test_decode_and_encode_give_the_same_bits_as_dac_itself(codec: DacCodec, tiny_weights: Path) -> None:
    # The codec folds weight norm and runs the activations in place; the official path (generate_ambi.py:
    # quantizer.from_codes, then model.decode; preprocess, then encode) must give the very same bits.
    raw = _raw_dac(tiny_weights)
    codes = _random_codes(4, 9, 120, seed=7)  # one chunk, as a 5-s clip is
    audio = _noise(4, 1, 120 * 512 - 100, seed=8)
    with torch.no_grad():
        official_audio = raw.decode(raw.quantizer.from_codes(codes)[0])
        _, official_codes, *_ = raw.encode(raw.preprocess(audio, 44100), n_quantizers=9)
        official_latent = raw.encoder(raw.preprocess(audio, 44100))
        latent = codec.model.encoder(codec.model.preprocess(audio, 44100))
    assert torch.equal(codec.decode(codes), official_audio)
    assert torch.equal(codec.encode(audio), official_codes)
    assert torch.equal(latent, official_latent)


def test_fold_weight_norm_keeps_every_bit(tiny_weights: Path) -> None:
    hooked, folded = _raw_dac(tiny_weights), _raw_dac(tiny_weights)
    convolutions = sum(isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d) for m in folded.modules())
    assert fold_weight_norm(folded) == convolutions > 0
    assert not any(name.endswith(("weight_g", "weight_v")) for name, _ in folded.named_parameters())
    assert fold_weight_norm(folded) == 0  # nothing left to fold
    latent = torch.randn(2, hooked.latent_dim, 30, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.equal(folded.decode(latent), hooked.decode(latent))


def test_progress_arrives_while_decoding(codec: DacCodec) -> None:
    codes = _random_codes(2, 9, 40, seed=10)
    seen: list[tuple[float, bool]] = []
    last_layer = codec.model.decoder.model[-1]  # tanh: once it has run, the decoder is done
    finished = False

    def mark(*_args: object) -> None:
        nonlocal finished
        finished = True

    handle = last_layer.register_forward_hook(mark)
    try:
        audio = codec.decode(codes, progress=lambda f: seen.append((f, finished)))
    finally:
        handle.remove()
    fractions = [f for f, _ in seen]
    assert sum(not done for _, done in seen) >= 10  # reported from inside the network, not after it
    assert fractions == sorted(fractions) and 0 < fractions[0] < 0.5 and fractions[-1] == 1.0
    assert torch.equal(audio, codec.decode(codes))  # reporting changes nothing


def test_progress_covers_every_chunk_once(codec: DacCodec) -> None:
    chunked = DacCodec(codec.model, chunk_frames=8)
    seen: list[float] = []
    FoaCodec(chunked).decode(_random_codes(1, 30, 36, seed=11), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert max(b - a for a, b in zip([0.0, *seen], seen, strict=False)) < 0.25  # four chunks, many steps
