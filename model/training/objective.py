"""The training objective: the official loss, computed a few heads at a time to bound memory.

The full logits of a released-size batch are [B, S, 36, 1024] (8 GB in fp32 for B = 64, S = 861). The
loss only needs, per head, the sum of the entries' cross-entropies, so the heads are evaluated in
chunks of ``chunk_rows`` whose logits are recomputed in the backward pass (activation checkpointing)
instead of kept: peak memory is one chunk's logits. The value is the official loss (spec §3.3: sum over
rows of each row's mean cross-entropy over its non-ignored labels, rows without labels skipped), equal to
``loss.codebook_cross_entropy`` of the full logits up to float rounding.

Wrapping the model in a module whose ``forward`` is the whole computation also lets distributed
wrappers (DDP, through accelerate) see every parameter use in one call.

Dimension letters: B batch, S pattern steps, K code rows, C classes, D width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from visage.model.network.code_pattern import IGNORE_INDEX
from visage.model.network.visage import Visage


def _row_sums(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """Summed cross-entropy per row of one chunk of heads: [n]."""
    n, c, d = weight.shape
    logits = F.linear(hidden, weight.reshape(n * c, d), bias.reshape(n * c)).unflatten(
        -1, (n, c)
    )  # [B, S, n, C]
    per_entry = F.cross_entropy(
        logits.float().movedim(-1, 1),  # [B, C, S, n]
        labels,
        ignore_index=IGNORE_INDEX,
        label_smoothing=smoothing,
        reduction="none",
    )  # [B, S, n]
    return per_entry.sum(dim=(0, 1))


def chunked_code_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    *,
    chunk_rows: int = 0,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official loss from decoder states without materialising all logits.

    Args:
        hidden: [B, S, D] decoder states.
        weight, bias: [K, C, D] and [K, C] stacked heads.
        labels: [B, S, K] with -100 where nothing is predicted.
        chunk_rows: heads per chunk (recomputed in backward); 0 = all at once, nothing recomputed.
        label_smoothing: cross-entropy label smoothing.

    Returns:
        (loss, per-row losses [K] with NaN for rows without labels).
    """
    k = weight.shape[0]
    labels = labels.long()
    step = chunk_rows if 0 < chunk_rows < k else k
    sums = []
    for r0 in range(0, k, step):
        part = (
            hidden,
            weight[r0 : r0 + step],
            bias[r0 : r0 + step],
            labels[..., r0 : r0 + step],
            label_smoothing,
        )
        if step < k and torch.is_grad_enabled():
            sums.append(checkpoint(_row_sums, *part, use_reentrant=False))
        else:
            sums.append(_row_sums(*part))
    total = torch.cat(sums)  # [K]
    counts = (labels != IGNORE_INDEX).sum(dim=(0, 1))  # [K]
    per_row = total / counts.clamp_min(1)
    loss = torch.where(counts > 0, per_row, torch.zeros_like(per_row)).sum()
    return loss, torch.where(counts > 0, per_row, torch.full_like(per_row, float("nan"))).detach()


class TrainingObjective(nn.Module):
    """``Visage`` plus the chunked loss: forward(batch tensors) -> (loss, per-row losses [K])."""

    def __init__(self, model: Visage, chunk_rows: int = 0) -> None:
        super().__init__()
        self.model = model
        self.chunk_rows = chunk_rows

    def forward(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor,
        direction: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        labels: torch.Tensor,
        null_video: torch.Tensor,
        null_direction: torch.Tensor,
        frame_counts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss of a teacher-forced batch; arguments as in ``Visage.forward`` (labels required)."""
        m = self.model
        hidden = m.decoder_states(
            clip,
            energy_map,
            direction,
            decoder_input_ids,
            null_video=null_video,
            null_direction=null_direction,
            frame_counts=frame_counts,
        )  # [B, S, D]
        return chunked_code_loss(
            hidden,
            m.heads.weight,
            m.heads.bias,
            labels,
            chunk_rows=self.chunk_rows,
            label_smoothing=m.config.label_smoothing,
        )
