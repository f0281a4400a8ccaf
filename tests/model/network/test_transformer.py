"""Transformer invariants: causality, cached decoding equals teacher forcing, padding is transparent."""

from __future__ import annotations

import pytest
import torch

from visage.model.network.tiny_random import random_conditions, tiny_random_visage

PAD = 1024


@pytest.fixture(scope="module")
def model():
    return tiny_random_visage(seed=3)


def _inputs(b: int = 2, f: int = 20, seed: int = 0):
    return random_conditions(b, f, seed=seed)


def _codes(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 1024, (b, t, 36), generator=torch.Generator().manual_seed(seed))


def test_decoder_is_causal_by_gradients(model) -> None:
    clip, energy, direction = _inputs()
    states = model.encode(clip, energy, direction).detach()
    emb = model.decoder.embed(model.pattern.decoder_inputs(_codes(2, 6), PAD), prepend_bos=True).detach()
    emb.requires_grad_(True)
    h = model.decoder(emb, states)
    j = 5
    h[:, j].sum().backward()
    grad = emb.grad.abs().sum(dim=(0, 2))
    assert (grad[j + 1 :] == 0).all()
    assert (grad[: j + 1] > 0).all()


def test_cached_step_by_step_decoding_equals_teacher_forcing(model) -> None:
    clip, energy, direction = _inputs()
    codes = _codes(2, 8)
    inputs = model.pattern.decoder_inputs(codes, PAD)  # [B, 16, 36]
    with torch.no_grad():
        full = model(clip, energy, direction, inputs).logits  # [B, 17, 36, C]
        states, mask = model.encode_conditions(model.conditions(clip, energy, direction))
        cache = model.decoder.new_cache(states, mask, inputs.shape[1] + 1)
        h = [model.decoder(model.decoder.embed(None, True, batch_size=2), cache=cache)]
        for s in range(inputs.shape[1]):
            h.append(model.decoder(model.decoder.embed(inputs[:, s : s + 1], False), cache=cache))
        stepwise = model.heads(torch.cat(h, dim=1))
    assert cache.length == inputs.shape[1] + 1
    assert (stepwise - full).abs().max() < 1e-4


def test_prefill_chunk_then_steps_equals_teacher_forcing(model) -> None:
    clip, energy, direction = _inputs()
    inputs = model.pattern.decoder_inputs(_codes(2, 8, seed=1), PAD)
    with torch.no_grad():
        full = model(clip, energy, direction, inputs).logits
        states, mask = model.encode_conditions(model.conditions(clip, energy, direction))
        cache = model.decoder.new_cache(states, mask, inputs.shape[1] + 1)
        first = model.decoder(model.decoder.embed(inputs[:, :9], True), cache=cache)  # positions 0..9
        second = model.decoder(model.decoder.embed(inputs[:, 9:], False), cache=cache)  # a chunk mid-way
        chunked = model.heads(torch.cat([first, second], dim=1))
    assert (chunked - full).abs().max() < 1e-4


def test_padded_clips_in_a_batch_match_each_clip_alone(model) -> None:
    clip, energy, direction = _inputs(b=2, f=20, seed=5)
    counts = torch.tensor([20, 9])
    inputs = model.pattern.decoder_inputs(_codes(2, 4), PAD)
    with torch.no_grad():
        batch = model(clip, energy, direction, inputs, frame_counts=counts).logits
        alone = model(clip[1:, :9], energy[1:, :9], direction[1:], inputs[1:]).logits
        first = model(clip[:1], energy[:1], direction[:1], inputs[:1]).logits
    assert (batch[1:] - alone).abs().max() < 1e-4
    assert (batch[:1] - first).abs().max() < 1e-4


def test_null_substitution_per_sample(model) -> None:
    clip, energy, direction = _inputs(b=2)
    nulled = torch.tensor([True, False])
    with torch.no_grad():
        mixed = model.encode_conditions(
            model.conditions(clip, energy, direction, null_video=nulled, null_direction=nulled)
        )[0]
        all_null = model.encode_conditions(
            model.conditions(
                clip,
                energy,
                direction,
                null_video=torch.ones(2, dtype=torch.bool),
                null_direction=torch.ones(2, dtype=torch.bool),
            )
        )[0]
        plain = model.encode(clip, energy, direction)
    assert torch.allclose(mixed[0], all_null[0]) and torch.allclose(mixed[1], plain[1])


def test_null_video_without_energy_map_uses_the_null_map_only_where_nulled(model) -> None:
    clip, _, direction = _inputs(b=2)
    nulled = torch.tensor([True, False])
    with torch.no_grad():
        mixed = model.encode_conditions(model.conditions(clip, None, direction, null_video=nulled))[0]
        full_null = model.encode_conditions(
            model.conditions(clip, None, direction, null_video=torch.ones(2, dtype=torch.bool))
        )[0]
        no_energy = model.encode(clip, None, direction)
    assert torch.allclose(mixed[0], full_null[0], atol=1e-6)
    assert torch.equal(mixed[1], no_energy[1])


def test_dropout_only_in_training(model) -> None:
    clip, energy, direction = _inputs(b=1)
    inputs = model.pattern.decoder_inputs(_codes(1, 3), PAD)
    with torch.no_grad():
        a = model(clip, energy, direction, inputs).logits
        b = model(clip, energy, direction, inputs).logits
        model.train()
        try:
            c = model(clip, energy, direction, inputs).logits
        finally:
            model.eval()
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_pad_rows_of_code_embeddings_get_no_gradient(model) -> None:
    clip, energy, direction = _inputs(b=1)
    codes = _codes(1, 3)
    inputs, labels = model.pattern.decoder_inputs(codes, PAD), model.pattern.labels(codes, PAD)
    model.zero_grad()
    model(clip, energy, direction, inputs, labels).loss.backward()
    grad = model.decoder.code_embeddings.grad
    assert grad[:, PAD].abs().sum() == 0
    assert grad[0, codes[0, 0, 0]].abs().sum() > 0
    model.zero_grad()


def test_too_many_frames_or_steps_are_refused(model) -> None:
    clip, energy, direction = _inputs(b=1, f=21)
    with pytest.raises(ValueError, match="21 CLIP frames exceed"):
        model.encode(clip, energy, direction)
    states = model.encode(*_inputs(b=1))
    with pytest.raises(ValueError, match="exceed the model's 861"):
        model.decoder.new_cache(states, None, 862)
