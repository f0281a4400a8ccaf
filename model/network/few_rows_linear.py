"""Linear layers for the few-row products of generation, with the kernel this machine runs fastest.

Why: one decoder step multiplies only 2 to 64 rows (conditional + unconditional, times the batch) by
every weight matrix, so a step is a pass over ~750 MB of fp32 weights, and how fast the BLAS serves so
few rows varies a lot between machines. Two kernels compute the product:

* ``linear``: ``F.linear`` (``x @ W^T``), what the official code runs;
* ``weight_left``: the same product with the weight as the left operand (``W @ x^T``, one ``addmm``,
  the rows reaching the BLAS as the transposed operand; one row is doubled to two). With MKL on some
  x86 CPUs it runs near memory speed where ``F.linear`` does not; on others it is slower.

Which one runs is measured per (device, dtype, weight shape, row count) at first use
(:mod:`kernel_choice`). Both give ``F.linear``'s result up to float summation order; greedy parity with
the official model holds with either (tests force each). :func:`plain_linear` forces ``F.linear``, for the
benchmark's reference loop, which measures the official kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from .kernel_choice import Kernel, KernelChoices

MAX_ROWS = 64  # above this F.linear is as fast everywhere measured (and training batches always are)


def _linear(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.linear(rows, weight, bias)


def _weight_left(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    columns = (rows if rows.shape[0] > 1 else torch.cat([rows, rows])).T  # [I, M]: a transposed view
    out = torch.mm(weight, columns) if bias is None else torch.addmm(bias.unsqueeze(1), weight, columns)
    return out[:, : rows.shape[0]].T.contiguous()  # [M, O], row-major like F.linear


KERNELS: dict[str, Kernel] = {"linear": _linear, "weight_left": _weight_left}
CHOICES = KernelChoices()  # this process's choices; the inference layer gives it a per-machine store
_FORCED: ContextVar[str | None] = ContextVar("few_rows_kernel", default=None)


@contextmanager
def forced_kernel(name: str) -> Iterator[None]:
    """Inside the block, every few-row product uses kernel ``name`` (tests, benchmarks)."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; known: {', '.join(KERNELS)}")
    token = _FORCED.set(name)
    try:
        yield
    finally:
        _FORCED.reset(token)


@contextmanager
def plain_linear() -> Iterator[None]:
    """Inside the block (or a function decorated with ``@plain_linear()``), always use ``F.linear``."""
    with forced_kernel("linear"):
        yield


def few_rows_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` ([..., I] x [O, I] -> [..., O]) with this machine's fastest kernel."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    forced = _FORCED.get()
    if forced == "linear" or not 0 < rows <= MAX_ROWS:
        return F.linear(x, weight, bias)
    flat = x.reshape(rows, x.shape[-1]).contiguous()  # row-major rows, whatever the caller's layout
    name = forced or CHOICES.choose(KERNELS, flat, weight, bias)
    return KERNELS[name](flat, weight, bias).view(*x.shape[:-1], weight.shape[0])


class FewRowsLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose forward uses :func:`few_rows_linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return few_rows_linear(x, self.weight, self.bias)
