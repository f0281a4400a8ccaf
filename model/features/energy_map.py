"""Patchwise visual energy map (paper Eq. 3): where in each frame something stands out or moves.

CLIP ViT-B/32 patch tokens (after the last transformer block, before ``ln_post``) are scored by how
far each patch is from its spatial neighbours and from the same patch in the adjacent frames; the
two scores become per-frame distributions over the patches, and a top-p filter keeps only the
patches that carry most of the mass. This follows the official ``data/infer_clip_energy.py``
operation by operation, so that float32 and float64 inputs give its outputs to rounding and the
same top-p masks. Where the paper's Eq. 3 writes a (2N+1)^2 box mean that includes the patch itself
and a distance 2 - 2cos, the official code (followed here) averages the 4-neighbours only and uses
``‖u - c/‖c‖‖ = sqrt(2 - 2cos)``; both rank patches alike, but only the latter matches the model's
training inputs.

Patch order: ViT-B/32 on a 224x224 frame has a 7x7 grid of 32-pixel patches. Token 0 is CLS and
tokens 1..49 are the patches in row-major order: 7 rows top to bottom, each 7 columns left to
right, so patch ``p`` sits at row ``p // 7``, column ``p % 7``. Maps ``[..., F, P]`` use the same
order (P = 49).

Shapes: ``...`` any leading batch dims, F video frames, N tokens (50 with CLS, 49 without),
H = W = 7 patch rows/columns, P = H*W patches, D token features (768 for ViT-B/32).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

GRID_SIZE = 7  # ViT-B/32 at 224x224: 7x7 patches
TEMPERATURE = 0.1  # softmax temperature of the paper and the official preprocessing
TOP_P = 0.7  # mass kept by the top-p filter

# The official code passes eps through F.normalize's default; spelled out so a change shows.
_NORMALIZE_EPS = 1e-12


class PatchScores(NamedTuple):
    """Spatial and temporal novelty of each patch, both ``[..., F, H, W]`` in the token dtype."""

    spatial: torch.Tensor
    temporal: torch.Tensor


def patch_grid(tokens: torch.Tensor, *, has_cls: bool = True, grid_size: int = GRID_SIZE) -> torch.Tensor:
    """Drop CLS and lay the patch tokens out on their image grid.

    Args:
        tokens: ``[..., F, N, D]`` patch tokens; N = 1 + grid_size**2 when ``has_cls``.
        has_cls: whether token 0 is CLS (the official features keep it).
        grid_size: patches per side.

    Returns:
        ``[..., F, H, W, D]`` with H = W = grid_size, row-major as in the module docstring.
    """
    n_patches = grid_size * grid_size
    expected = n_patches + int(has_cls)
    if tokens.dim() < 3 or tokens.shape[-2] != expected:
        raise ValueError(
            f"expected tokens [..., F, {expected}, D] ({'with' if has_cls else 'without'} CLS), "
            f"got {tuple(tokens.shape)}"
        )
    if tokens.shape[-3] == 0:
        raise ValueError("tokens have no frames (F = 0)")
    patches = tokens[..., 1:, :] if has_cls else tokens
    return patches.unflatten(-2, (grid_size, grid_size))  # [..., F, H, W, D]


def _distance_to_context(patches: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``‖u − c/‖c‖‖`` with u the unit patch vector: a cosine distance, ``sqrt(2 − 2 cos)``."""
    unit = F.normalize(patches, p=2.0, dim=-1, eps=_NORMALIZE_EPS)
    unit_context = F.normalize(context, p=2.0, dim=-1, eps=_NORMALIZE_EPS)
    return torch.linalg.vector_norm(unit - unit_context, ord=2, dim=-1)


def spatial_score(patches: torch.Tensor) -> torch.Tensor:
    """Distance of each patch from the mean of its existing 4-neighbours (up, down, left, right).

    Edge and corner patches average over the 3 or 2 neighbours they have. The neighbours are
    summed in the official order (up, down, left, right) so that float32 results match bit for bit.

    Args:
        patches: ``[..., F, H, W, D]``.

    Returns:
        ``[..., F, H, W]`` in [0, 2].
    """
    zero_row = torch.zeros_like(patches[..., :1, :, :])
    zero_col = torch.zeros_like(patches[..., :, :1, :])
    up = torch.cat([zero_row, patches[..., :-1, :, :]], dim=-3)
    down = torch.cat([patches[..., 1:, :, :], zero_row], dim=-3)
    left = torch.cat([zero_col, patches[..., :, :-1, :]], dim=-2)
    right = torch.cat([patches[..., :, 1:, :], zero_col], dim=-2)
    neighbour_sum = up + down + left + right  # [..., F, H, W, D]

    height, width = patches.shape[-3], patches.shape[-2]
    rows = torch.arange(height, device=patches.device)
    cols = torch.arange(width, device=patches.device)
    row_count = (rows > 0).to(patches.dtype) + (rows < height - 1).to(patches.dtype)  # [H]
    col_count = (cols > 0).to(patches.dtype) + (cols < width - 1).to(patches.dtype)  # [W]
    count = (row_count[:, None] + col_count[None, :])[..., None]  # [H, W, 1]
    return _distance_to_context(patches, neighbour_sum / count)


def temporal_score(patches: torch.Tensor) -> torch.Tensor:
    """Distance of each patch from the same patch averaged over the previous and next frames.

    The first and last frames use their single neighbour. With one frame there is no neighbour:
    the context is zero, normalises to zero, and the score is 1 everywhere (as in the official code).

    Args:
        patches: ``[..., F, H, W, D]``.

    Returns:
        ``[..., F, H, W]`` in [0, 2].
    """
    n_frames = patches.shape[-4]
    zero_frame = torch.zeros_like(patches[..., :1, :, :, :])
    previous = torch.cat([zero_frame, patches[..., :-1, :, :, :]], dim=-4)
    following = torch.cat([patches[..., 1:, :, :, :], zero_frame], dim=-4)
    frames = torch.arange(n_frames, device=patches.device)
    count = (frames > 0).to(patches.dtype) + (frames < n_frames - 1).to(patches.dtype)  # [F]
    count = count.clamp_min(1.0)[:, None, None, None]  # [F, 1, 1, 1]; F = 1: 0 / 1
    return _distance_to_context(patches, (previous + following) / count)


def patch_scores(tokens: torch.Tensor, *, has_cls: bool = True) -> PatchScores:
    """Both novelty scores of every patch of ``[..., F, N, D]`` tokens (see `patch_grid`)."""
    patches = patch_grid(tokens, has_cls=has_cls)
    return PatchScores(spatial_score(patches), temporal_score(patches))


def score_energy(scores: PatchScores, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Average of the two per-frame softmaxes over the patches: a distribution per frame.

    Scores of ``-inf`` (patches removed by `top_p_removed`) get zero probability. The sum is
    accumulated into a float32 buffer as the official code does, so the map is float32 whatever
    the score dtype.

    Args:
        scores: spatial and temporal scores ``[..., F, H, W]``.
        temperature: softmax temperature; lower sharpens the map.

    Returns:
        ``[..., F, P]`` float32, each row summing to 1.
    """
    spatial = (scores.spatial / temperature).flatten(-2).softmax(-1)  # [..., F, P]
    temporal = (scores.temporal / temperature).flatten(-2).softmax(-1)  # [..., F, P]
    # Official: zeros(float32) += spatial; += temporal; /= 2. Each in-place add rounds to float32.
    energy = spatial.to(torch.float32)
    energy = (energy + temporal).to(torch.float32)
    return energy / 2


def top_p_removed(energy: torch.Tensor, top_p: float = TOP_P) -> torch.Tensor:
    """Mask of the low-energy patches whose total mass is at most ``1 - top_p``.

    Patches are sorted by ascending energy and removed while the running sum stays ``<= 1 - top_p``
    (compared in the map's dtype), so the kept patches are the fewest highest-energy ones that
    hold at least ``top_p`` of the mass.

    Args:
        energy: ``[..., F, P]`` per-frame distributions.
        top_p: mass to keep, in (0, 1].

    Returns:
        ``[..., F, P]`` bool, True where a patch is removed.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    sorted_energy, order = torch.sort(energy, dim=-1, descending=False)
    sorted_removed = torch.cumsum(sorted_energy, dim=-1) <= (1 - top_p)
    return sorted_removed.scatter(-1, order, sorted_removed)


def filter_scores(scores: PatchScores, removed: torch.Tensor) -> PatchScores:
    """Set both scores of the removed patches to ``-inf`` so the softmax gives them nothing.

    Args:
        scores: ``[..., F, H, W]`` each.
        removed: ``[..., F, P]`` bool from `top_p_removed`.
    """
    mask = removed.unflatten(-1, scores.spatial.shape[-2:])  # [..., F, H, W]
    return PatchScores(
        scores.spatial.masked_fill(mask, float("-inf")),
        scores.temporal.masked_fill(mask, float("-inf")),
    )


def energy_map(
    tokens: torch.Tensor,
    *,
    has_cls: bool = True,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
) -> torch.Tensor:
    """The model's visual energy-map input: scores, softmax energy, top-p filter, softmax again.

    Args:
        tokens: ``[..., F, N, D]`` CLIP patch tokens after the last ViT block, before ``ln_post``
            (N = 50 with CLS at index 0, or 49 with ``has_cls=False``). Any float dtype; the
            official features were float16 on GPU.
        has_cls: whether token 0 is CLS.
        temperature: softmax temperature of both passes.
        top_p: mass kept by the filter.

    Returns:
        ``[..., F, P]`` float32 in the row-major patch order; each row sums to 1 and is zero on
        the removed patches.
    """
    scores = patch_scores(tokens, has_cls=has_cls)
    removed = top_p_removed(score_energy(scores, temperature), top_p)
    return score_energy(filter_scores(scores, removed), temperature)
