"""The CPU few-row linear path equals F.linear, is taken only where it pays, and can be turned off."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visage.model.network import few_rows_linear as frl
from visage.model.network.few_rows_linear import FewRowsLinear, few_rows_linear, plain_linear


@pytest.fixture
def addmm_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Shapes of the row operand of every torch.addmm call (the few-row path's kernel)."""
    calls: list[tuple[int, ...]] = []
    real = torch.addmm

    def spy(bias: torch.Tensor, weight: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(columns.shape))
        return real(bias, weight, columns)

    monkeypatch.setattr(frl.torch, "addmm", spy)
    return calls


@pytest.mark.parametrize("shape", [(1, 48), (2, 48), (3, 1, 48), (4, 5, 48), (64, 48)])
def test_equals_f_linear_and_takes_the_few_row_path(shape, addmm_calls) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    weight, bias = torch.randn(40, 48, generator=g), torch.randn(40, generator=g)
    out = few_rows_linear(x, weight, bias)
    assert out.shape == (*shape[:-1], 40) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)
    rows = x.numel() // 48
    assert addmm_calls == [(48, max(rows, 2))]  # one row is doubled: MKL serves two faster than one


def test_layouts_and_no_bias() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 6, generator=g).T  # a transposed (column-major) input
    weight = torch.randn(40, 48, generator=g)
    torch.testing.assert_close(few_rows_linear(x, weight), F.linear(x, weight), rtol=1e-5, atol=1e-5)


def test_many_rows_other_dtypes_and_plain_linear_use_f_linear(addmm_calls) -> None:
    weight, bias = torch.randn(8, 16), torch.randn(8)
    few_rows_linear(torch.randn(65, 16), weight, bias)
    few_rows_linear(torch.randn(2, 16, dtype=torch.bfloat16), weight.bfloat16(), bias.bfloat16())
    with plain_linear():
        x = torch.randn(2, 16)
        assert torch.equal(few_rows_linear(x, weight, bias), F.linear(x, weight, bias))
    assert addmm_calls == []
    few_rows_linear(torch.randn(2, 16), weight, bias)  # back on after the block
    assert addmm_calls == [(16, 2)]


def test_module_keeps_nn_linear_parameters_and_keys() -> None:
    plain = nn.Linear(16, 8)
    fast = FewRowsLinear(16, 8)
    fast.load_state_dict(plain.state_dict())
    assert list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(3, 16)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    fast(x).sum().backward()  # gradients flow through the few-row path too
    assert fast.weight.grad is not None and fast.weight.grad.shape == (8, 16)
