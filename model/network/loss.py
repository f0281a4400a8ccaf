"""The official training loss over code rows."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .code_pattern import IGNORE_INDEX


def codebook_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over rows of each row's mean cross-entropy, as the official model computes it.

    Heads are summed, not averaged, so the loss scale grows with the number of rows (36). A row with no
    valid label in the batch (every entry -100) would give NaN and is skipped, as the official code does.

    Args:
        logits: [B, L, K, C] per position, row and class.
        labels: [B, L, K] class ids, -100 where there is nothing to predict.
        label_smoothing: cross-entropy label smoothing.
    Returns:
        (loss scalar, per-row losses [K] with NaN for skipped rows).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    per_entry = F.cross_entropy(
        logits.float().movedim(-1, 1),  # [B, C, L, K]
        labels.long(),
        ignore_index=IGNORE_INDEX,
        label_smoothing=label_smoothing,
        reduction="none",
    )  # [B, L, K], 0 where ignored
    counts = (labels != IGNORE_INDEX).sum(dim=(0, 1))  # [K]
    per_row = per_entry.sum(dim=(0, 1)) / counts  # NaN where a row has no label
    loss = torch.where(counts > 0, per_row, torch.zeros_like(per_row)).sum()
    return loss, per_row
