"""The chunked training loss equals the official loss of the full logits, in value and gradient."""

from __future__ import annotations

import pytest
import torch

from visage.model.network.code_pattern import IGNORE_INDEX
from visage.model.network.loss import codebook_cross_entropy
from visage.model.network.tiny_random import tiny_random_visage
from visage.model.training.objective import TrainingObjective, chunked_code_loss


@pytest.mark.parametrize("chunk_rows", [0, 5, 12, 36])
def test_chunked_loss_equals_the_official_loss(chunk_rows: int) -> None:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 7, 16, generator=g, requires_grad=True)
    weight = torch.randn(36, 1024, 16, generator=g, requires_grad=True)
    bias = torch.randn(36, 1024, generator=g, requires_grad=True)
    labels = torch.randint(0, 1024, (2, 7, 36), generator=g)
    labels[:, :3, 10:] = IGNORE_INDEX
    labels[..., 4] = IGNORE_INDEX  # a row without labels is skipped
    full = torch.nn.functional.linear(hidden, weight.view(-1, 16), bias.view(-1)).unflatten(-1, (36, 1024))
    expected, expected_rows = codebook_cross_entropy(full, labels)
    grads_expected = torch.autograd.grad(expected, (hidden, weight, bias))
    loss, rows = chunked_code_loss(hidden, weight, bias, labels, chunk_rows=chunk_rows)
    grads = torch.autograd.grad(loss, (hidden, weight, bias))
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(rows, expected_rows, equal_nan=True, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads, grads_expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert torch.isfinite(a).all()


def test_objective_equals_the_model_forward() -> None:
    model = tiny_random_visage()
    g = torch.Generator().manual_seed(1)
    clip, energy = torch.randn(2, 20, 512, generator=g), torch.rand(2, 20, 49, generator=g)
    direction = torch.randn(2, 3, generator=g)
    codes = torch.randint(0, 1024, (2, 6, 36), generator=g)
    ids, labels = model.pattern.decoder_inputs(codes, 1024), model.pattern.labels(codes, 1024)
    nulls = torch.tensor([True, False])
    out = model(clip, energy, direction, ids, labels, null_video=nulls, null_direction=~nulls)
    loss, rows = TrainingObjective(model, chunk_rows=7)(clip, energy, direction, ids, labels, nulls, ~nulls)
    torch.testing.assert_close(loss, out.loss, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(rows, out.row_losses, rtol=1e-6, atol=1e-6)
