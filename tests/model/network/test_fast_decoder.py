"""The optional fast decoder: what it computes, what it shares, and that the exact model is untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from visage.model.network.fast_decoder import (
    FAST_KINDS,
    CheapHeads,
    CheapLinear,
    fast_kind,
    make_fast,
    quantize_int8,
)
from visage.model.network.few_rows_linear import FewRowsLinear
from visage.model.network.tiny_random import random_conditions, tiny_random_visage
from visage.model.network.transformer import CodeHeads

BF16_ROUNDING = 2.0**-8  # relative: one bf16 rounding of a product's output (8 significant bits)


def test_int8_weights_are_within_half_a_step_of_the_exact_ones() -> None:
    w = torch.randn(64, 48, generator=torch.Generator().manual_seed(0)) * torch.logspace(-3, 1, 64)[:, None]
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.bfloat16 and scale.shape == (64,)
    assert int(q.abs().max(dim=1).values.min()) >= 126  # each row's largest weight uses the range
    step = scale.float()[:, None]
    assert bool(((q.float() * step - w).abs() <= step / 2 * (1 + 1e-6)).all())


@pytest.mark.parametrize("kind", FAST_KINDS)
@pytest.mark.parametrize("rows", [1, 2, 7, 100])  # few-row kernels, and F.linear past MAX_ROWS
def test_cheap_linear_is_the_product_of_its_own_weights(kind: str, rows: int) -> None:
    g = torch.Generator().manual_seed(rows)
    exact = FewRowsLinear(96, 40)
    with torch.no_grad():
        exact.weight.copy_(torch.randn(40, 96, generator=g) / 10)
        exact.bias.copy_(torch.randn(40, generator=g))
    cheap = CheapLinear(exact, kind)
    x = torch.randn(rows, 3, 96, generator=g)
    if cheap.scale is not None:  # int8
        weight = cheap.weight.float() * cheap.scale.float()[:, None]
    else:
        weight = exact.weight.detach().bfloat16().float()
    product = F.linear(x.bfloat16().float(), weight)  # what the kernel multiplies, summed in fp32
    got = cheap(x) - exact.bias.detach()
    assert got.dtype == torch.float32 and got.shape == (rows, 3, 40)
    assert bool(((got - product).abs() <= BF16_ROUNDING * product.abs() + 1e-5).all())


@pytest.mark.parametrize("kind", FAST_KINDS)
def test_the_heads_live_runs_are_their_full_product(kind: str) -> None:
    """Generation runs heads a live subset at a time; it must be the same product as all heads at once."""
    model = tiny_random_visage(seed=3)
    heads = make_fast(model, kind).heads
    h = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    full = heads(h)  # [2, K, C]
    rows = torch.tensor([5, 6, 7, 20, 21])
    subset = heads.rows_logits(h, tuple(t.index_select(0, rows) for t in heads.row_tensors()))
    torch.testing.assert_close(subset, full[:, rows], rtol=BF16_ROUNDING, atol=1e-5)


@pytest.mark.parametrize("kind", FAST_KINDS)
def test_make_fast_shares_what_it_keeps_and_leaves_the_exact_model_as_it_was(kind: str) -> None:
    model = tiny_random_visage(seed=2)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    fast = make_fast(model, kind)
    assert fast_kind(fast) == kind and fast_kind(model) is None
    assert type(model.heads) is CodeHeads and isinstance(fast.heads, CheapHeads)
    layer, fast_layer = model.decoder.decoder_layers()[0], fast.decoder.decoder_layers()[0]
    assert isinstance(layer.ffn.fc1, FewRowsLinear) and isinstance(fast_layer.ffn.fc1, CheapLinear)
    # The cross-attention keys/values run once per clip: exact, and the very same tensors.
    assert fast_layer.cross_attn.k_proj.weight.data_ptr() == layer.cross_attn.k_proj.weight.data_ptr()
    assert fast.encoder.clip_proj.weight.data_ptr() == model.encoder.clip_proj.weight.data_ptr()
    assert fast.decoder.code_embeddings.data_ptr() == model.decoder.code_embeddings.data_ptr()
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())


@pytest.mark.parametrize("kind", FAST_KINDS)
def test_fast_generation_runs_with_sampling_and_a_batch(kind: str) -> None:
    model = tiny_random_visage(seed=4)
    fast = make_fast(model, kind)
    clip, energy, direction = random_conditions(3, 8, seed=5)
    result = fast.generate_full(
        clip, energy, direction, num_frames=6, generator=torch.Generator().manual_seed(0)
    )
    assert result.codes.shape == (3, 6, 36)
    assert bool(((result.codes >= 0) & (result.codes < 1024)).all())


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fast path 'int4'"):
        make_fast(tiny_random_visage(), "int4")
