"""The carrier codec keeps the signed levels of every channel, so spatial maps survive its round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from visage.model.audio.ambisonics import encode_mono
from visage.model.audio.carrier_codec import CarrierCodec
from visage.model.audio.codec import FoaCodec
from visage.model.evaluation import spatial_metrics as sm
from visage.model.files.audio_io import resample


@pytest.fixture(scope="module")
def codec() -> CarrierCodec:
    return CarrierCodec()


def test_interface_matches_dac_rates(codec: CarrierCodec) -> None:
    assert (codec.sample_rate, codec.hop_length, codec.num_codebooks, codec.cardinality) == (
        44100,
        512,
        4,
        63,
    )
    codes = codec.encode(torch.zeros(2, 1, 1000))
    assert codes.shape == (2, 4, 2) and codes.dtype == torch.long
    assert (codes == 31).all()  # silence is the middle level
    assert codec.decode(codes).shape == (2, 1, 1024)


def test_quantisation_is_symmetric_and_monotonic(codec: CarrierCodec) -> None:
    gains = torch.linspace(-1, 1, 101, dtype=torch.float64)
    codes = codec.quantize(gains)
    assert torch.equal(codes, 62 - codec.quantize(-gains))
    assert (codes.diff() >= 0).all()
    back = codec.dequantize(codes)
    assert torch.allclose(codec.quantize(back), codes)


def test_a_carrier_mixture_round_trips(codec: CarrierCodec) -> None:
    n = 44100
    t = np.arange(n) / n
    signal = 0.3 * np.sin(2 * math.pi * 2 * t) * codec.carrier_signal(1, n) + 0.1 * codec.carrier_signal(3, n)
    decoded = codec.decode(codec.encode(torch.from_numpy(signal.astype(np.float32))[None, None]))[
        0, 0, :n
    ].numpy()
    assert np.linalg.norm(decoded - signal) < 0.1 * np.linalg.norm(signal)


def test_spatial_maps_survive_the_foa_round_trip(codec: CarrierCodec) -> None:
    n = 2 * 44100
    foa = encode_mono(0.3 * codec.carrier_signal(2, n), 1.0, 0.3) + encode_mono(
        0.1 * codec.carrier_signal(0, n), 2.6, 0.7
    )
    foa_codec = FoaCodec(codec)
    decoded = foa_codec.decode(foa_codec.encode(torch.from_numpy(foa.astype(np.float32))[None]))[
        0, :, :n
    ].numpy()
    truth, back = (resample(x, 44100, 16000).T for x in (foa, decoded))
    scores = sm.score_clip(sm.sphere_maps(back), sm.sphere_maps(truth))
    assert scores.cc_all > 0.99 and scores.auc_all > 0.99


def test_bad_inputs(codec: CarrierCodec) -> None:
    with pytest.raises(ValueError, match=r"\[B, 1, N\]"):
        codec.encode(torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match=r"\[0, 63\)"):
        codec.decode(torch.full((1, 4, 2), 63))
    with pytest.raises(ValueError, match="odd cardinality"):
        CarrierCodec(cardinality=64)
