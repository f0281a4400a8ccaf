"""Linear layers for the few-row products of generation, fast on CPUs too.

Why: one decoder step multiplies only 2 to 64 rows (conditional + unconditional, times the batch) by
every weight matrix, so a step is a pass over ~750 MB of fp32 weights. With PyTorch's MKL build on
x86 CPUs, ``F.linear`` (``x @ W^T``) on so few rows reaches about a quarter of memory speed, while the
same product written with the weight as the left operand (``W @ x^T``, one ``addmm``) runs 3.9x faster
for 2-4 rows and 1.2-1.5x for 8-64 rows (measured on a 2-core AVX-512 machine, fp32; bf16 and GPUs
gain nothing, so they keep ``F.linear``). One row is doubled to two, which MKL serves 2x faster than
one. What matters is that the rows reach MKL as the transposed operand: ``W @ x.T`` on a row-major
``x`` is fast, the same product on a contiguous copy of ``x.T`` is not. The results equal
``F.linear``'s up to float summation order (tests compare both paths); :func:`plain_linear` turns the
path off, for the benchmark's reference loop, which measures the official kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

MAX_ROWS = 64  # above this, F.linear is as fast (and training batches always are)
_ENABLED: ContextVar[bool] = ContextVar("few_rows_linear", default=True)


@contextmanager
def plain_linear() -> Iterator[None]:
    """Inside the block (or a function decorated with ``@plain_linear()``), always use ``F.linear``."""
    token = _ENABLED.set(False)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def few_rows_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` ([..., I] x [O, I] -> [..., O]) with the CPU fp32 few-row path."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    if x.device.type != "cpu" or x.dtype != torch.float32 or not 0 < rows <= MAX_ROWS or not _ENABLED.get():
        return F.linear(x, weight, bias)
    flat = x.reshape(rows, x.shape[-1]).contiguous()  # row-major rows, whatever the caller's layout
    columns = (flat if rows > 1 else torch.cat([flat, flat])).T  # [I, M]: a transposed view, see above
    if bias is None:
        out = torch.mm(weight, columns)  # [O, M]
    else:
        out = torch.addmm(bias.unsqueeze(1), weight, columns)
    return out[:, :rows].T.contiguous().view(*x.shape[:-1], weight.shape[0])  # row-major, like F.linear


class FewRowsLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose forward uses :func:`few_rows_linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return few_rows_linear(x, self.weight, self.bias)
