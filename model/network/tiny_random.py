"""Tiny models with seeded random weights, for tests, CI and checking an installation offline.

Their output is noise. The weights follow the rule used for the official parity vectors (unit-scale
embeddings, fan-in-scaled linears, heads scaled x2), so that logits are far from uniform and greedy
decoding is not decided by float noise.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .config import VisageConfig
from .visage import Visage


def randomize_weights(model: Visage, seed: int = 0) -> Visage:
    """Overwrite every tensor with seeded random values (the parity vectors' rule); returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            n = torch.randn(t.shape, generator=g, dtype=torch.float32)
            if "norm" in name and name.endswith("weight"):
                value = 1 + 0.1 * n
            elif name.endswith("bias"):
                value = 0.1 * n
            elif name == "heads.weight":
                value = 2 * n / math.sqrt(t.shape[-1])
            elif name.endswith("proj.weight") or ".fc" in name:
                value = n / math.sqrt(t.shape[-1])
            elif name == "null_energy":
                value = 0.05 * n
            else:  # embeddings, positions, BOS/EOS, null vectors
                value = 0.5 * n
            t.copy_(value.to(t.dtype))
    return model


def random_conditions(
    batch: int, frames: int, *, seed: int = 0, d_clip: int = 512
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded stand-in encoder inputs with the real statistics' shapes, for tests and benchmarks.

    Returns:
        CLIP frames [B, F, d_clip] (scale 0.5), energy maps [B, F, 49] (rows sum to 1) and unit
        direction vectors [B, 3].
    """
    g = torch.Generator().manual_seed(seed)
    clip = 0.5 * torch.randn(batch, frames, d_clip, generator=g)
    energy = torch.softmax(2 * torch.randn(batch, frames, 49, generator=g), -1)
    direction = torch.nn.functional.normalize(torch.randn(batch, 3, generator=g), dim=-1)
    return clip, energy, direction


def tiny_random_visage(seed: int = 0, config: VisageConfig | None = None) -> Visage:
    """The ``tiny`` architecture with seeded random weights, in eval mode."""
    return randomize_weights(Visage(config or VisageConfig.preset("tiny")), seed).eval()


def write_tiny_random_visage(directory: str | Path, seed: int = 0) -> Path:
    """Save :func:`tiny_random_visage` in the official checkpoint layout (loads like the real one)."""
    return tiny_random_visage(seed).save_pretrained(directory, overwrite=True)
