"""An optional decoder that is faster and not exact: its per-step weights in bf16 or int8. Off by default.

Why: at batch 1 a decoder step multiplies two rows (conditional, unconditional) by every weight it uses
per step, ~780 MB in fp32 for the released model (of the heads, the live ones only), so on a CPU a step
runs at memory speed. Stored in bf16 those weights are half the bytes; in int8 (weight-only, symmetric,
one scale per output channel) a quarter. Only those weights change: the rows entering a product are
rounded to bf16 (what both kernels take), and everything else stays as loaded (fp32): the residual
stream, LayerNorms, attention and its cache, biases, the encoder, the code embeddings, and the
cross-attention keys/values (computed once per clip, so cheaper weights would buy nothing there).

Kernels, picked by measurement on a 2-core AMD EPYC (Zen 5) with torch 2.13: int8 runs torch's own
``_weight_int8pack_mm`` on bf16 rows (~3x fp32 per product at 2 rows; torchao 0.18's
``Int8WeightOnlyConfig`` ran 4-7x slower than that, and ``quantize_dynamic`` is deprecated and quantises
the activations too). bf16 chooses per machine, as :mod:`few_rows_linear` does, between ``F.linear``, the
weight-left ``addmm`` and oneDNN with a prepacked weight (~2x fp32 per product there). int4
(``_weight_int4pack_mm_for_cpu``, groups of 128) was left out: faster still, but it changed over a quarter
of the greedy codes of the released architecture where int8 changed ~3%.

The result is not the official model's: ``visage bench fast-path`` prints how far it is (logit error,
greedy code agreement) beside its speed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .few_rows_linear import KERNELS, MAX_ROWS, few_rows_linear
from .kernel_choice import Kernel, KernelChoices
from .transformer import CodeHeads
from .visage import Visage

FAST_KINDS = ("bf16", "int8")
# The decoder projections that run at every step (the cross-attention keys/values run once per clip).
_PER_STEP = (
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "out_proj"),
    ("cross_attn", "q_proj"),
    ("cross_attn", "out_proj"),
    ("ffn", "fc1"),
    ("ffn", "fc2"),
)
# bf16 kernel choices of this process (their candidates differ from few_rows_linear's, so not its store).
CHOICES = KernelChoices()


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel: ``weight`` [..., I] ~ q [..., I] * scale [..., 1].

    Returns q (int8) and the scales [...] in bf16, the dtype ``_weight_int8pack_mm`` takes; q is
    rounded against the bf16 scale so that the pair is what the kernel multiplies.
    """
    w = weight.detach().float()
    scale = (w.abs().amax(dim=-1) / 127).clamp(min=torch.finfo(torch.bfloat16).tiny).to(torch.bfloat16)
    q = torch.round(w / scale.float().unsqueeze(-1)).clamp(-127, 127).to(torch.int8)
    return q, scale


def _int8_product(rows: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """[M, I] bf16 rows x int8 [O, I] with scales [O] -> [M, O] bf16."""
    return torch.ops.aten._weight_int8pack_mm(rows, q, scale)


def _packable(rows: torch.Tensor) -> bool:
    return (
        rows.device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    )


class CheapLinear(nn.Module):
    """A per-step projection from bf16 or int8 weights: [..., I] -> [..., O] in the input's dtype.

    Args:
        linear: the exact projection; its bias is shared, its weight converted.
        kind: ``bf16`` or ``int8``.
    """

    weight: torch.Tensor
    scale: torch.Tensor | None
    bias: torch.Tensor | None

    def __init__(self, linear: nn.Linear, kind: str) -> None:
        super().__init__()
        if kind == "int8":
            q, scale = quantize_int8(linear.weight)
            self.register_buffer("weight", q)
            self.register_buffer("scale", scale)
        else:
            self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16))
            self.scale = None
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach())
        self._kernels: dict[str, Kernel] | None = None  # bf16 candidates, made at first use

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16).contiguous()  # [M, I]
        if self.scale is not None:
            y = _int8_product(rows, self.weight, self.scale)
        elif not 0 < rows.shape[0] <= MAX_ROWS:
            y = F.linear(rows, self.weight)
        else:
            kernels = self._bf16_kernels(rows)
            y = kernels[CHOICES.choose(kernels, rows, self.weight, None)](rows, self.weight, None)
        y = y.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.weight.shape[0])

    def _bf16_kernels(self, rows: torch.Tensor) -> dict[str, Kernel]:
        if self._kernels is None:
            kernels = dict(KERNELS)
            if _packable(rows):  # oneDNN's bf16 product on a weight packed once for it
                packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, rows.shape[0])
                kernels["packed"] = _packed_kernel(packed)
            self._kernels = kernels
        return self._kernels


def _packed_kernel(packed: torch.Tensor) -> Kernel:
    def run(rows: torch.Tensor, _weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(rows, packed, bias, "none", [], "")

    return run


class CheapHeads(CodeHeads):
    """The code heads from bf16 or int8 weights (logits in the decoder states' dtype).

    Args:
        heads: the exact heads; their biases are shared, their weights converted.
        kind: ``bf16`` or ``int8``.
    """

    scale: torch.Tensor | None

    def __init__(self, heads: CodeHeads, kind: str) -> None:
        k, c, d = heads.weight.shape
        with torch.device("meta"):  # the exact parameters are replaced below
            super().__init__(k, c, d)
        del self.weight, self.bias
        self.kind = kind
        if kind == "int8":
            q, scale = quantize_int8(heads.weight)  # [K, C, D], [K, C]
            self.register_buffer("weight", q)
            self.register_buffer("scale", scale)
        else:
            self.register_buffer("weight", heads.weight.detach().to(torch.bfloat16))
            self.scale = None
        self.register_buffer("bias", heads.bias.detach())

    def row_tensors(self) -> tuple[torch.Tensor, ...]:
        """Weight [K, C, D], bias [K, C] and, for int8, scales [K, C]."""
        return (self.weight, self.bias) if self.scale is None else (self.weight, self.bias, self.scale)

    def rows_logits(self, h: torch.Tensor, tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits [..., n, C] of the n heads whose :meth:`row_tensors` rows are ``tensors``."""
        weight, bias, *scale = tensors
        n, c, d = weight.shape
        rows = h.reshape(-1, d).to(torch.bfloat16).contiguous()  # [M, D]
        if scale:
            y = _int8_product(rows, weight.reshape(n * c, d), scale[0].reshape(n * c))
        else:
            y = few_rows_linear(rows, weight.reshape(n * c, d))
        return y.to(h.dtype).view(*h.shape[:-1], n, c) + bias


def make_fast(model: Visage, kind: str) -> Visage:
    """A model whose per-step decoder projections and heads use ``kind`` weights (bf16 or int8).

    Every other tensor is shared with ``model``, which is left as it was; drop it to free its exact
    per-step weights. Build it on the device it will run on.
    """
    if kind not in FAST_KINDS:
        raise ValueError(f"unknown fast path {kind!r}; known: {', '.join(FAST_KINDS)}")
    with torch.device("meta"):
        fast = Visage(model.config, model.pattern)
    fast.load_state_dict(model.state_dict(), assign=True)
    with torch.no_grad():
        for layer in fast.decoder.decoder_layers():
            for block, name in _PER_STEP:
                owner = getattr(layer, block)
                setattr(owner, name, CheapLinear(getattr(owner, name), kind))
        fast.heads = CheapHeads(model.heads, kind)
    return fast.train(model.training)


def fast_kind(model: Visage) -> str | None:
    """``bf16`` or ``int8`` for a model from :func:`make_fast`, None for an exact one."""
    return model.heads.kind if isinstance(model.heads, CheapHeads) else None
