"""The official optimiser recipe: AdamW with the transformers-style weight-decay split, and its schedule.

The official ``train_ambi.py`` decays every parameter whose (official, BART) name contains none of
"bias", "LayerNorm.weight" and "layer_norm.weight" (spec §6.3). So the attention, cross-attention and
feed-forward LayerNorm weights (``*_layer_norm.weight``) are exempt, but the embedding LayerNorms
(``layernorm_embedding.weight``), every embedding, the learned BOS/EOS and the null vectors are
decayed. Our parameter names differ (``self_attn_norm``, ``embed_norm``, stacked code embeddings and
heads), so the rule is applied to the official names our parameters map to
(``checkpoint.local_to_official``): the same split, whatever our names are.
"""

from __future__ import annotations

import torch
from torch import nn

from visage.model.network.checkpoint import local_to_official

_NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight")


def official_decays(official_name: str) -> bool:
    """Whether the official recipe applies weight decay to a parameter of this official name."""
    return not any(marker in official_name for marker in _NO_DECAY_MARKERS)


def decay_split(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of our parameters (decayed, not decayed) under the official rule.

    Raises:
        ValueError: a stacked parameter whose official rows would disagree (never the case for ViSAGe).
    """
    decayed: list[str] = []
    exempt: list[str] = []
    for name, p in model.named_parameters():
        flags = {official_decays(k) for k in local_to_official(name, p.detach())}
        if len(flags) != 1:
            raise ValueError(f"{name}: its official rows disagree on weight decay")
        (decayed if flags.pop() else exempt).append(name)
    return decayed, exempt


def build_optimizer(
    model: nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float], eps: float
) -> torch.optim.AdamW:
    """AdamW with two groups: official-decayed parameters at ``weight_decay``, the rest at 0."""
    decayed, _ = decay_split(model)
    chosen = set(decayed)
    params = dict(model.named_parameters())
    groups = [
        {"params": [params[n] for n in params if n in chosen], "weight_decay": weight_decay},
        {"params": [params[n] for n in params if n not in chosen], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def constant_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant learning rate after an optional linear warm-up (transformers' ``constant_with_warmup``)."""

    def factor(step: int) -> float:
        return min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
