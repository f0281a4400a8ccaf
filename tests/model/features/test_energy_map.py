"""Patchwise energy map: the official golden vectors, and the invariants of each step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from visage.model.features import energy_map as em

GOLDEN = Path(__file__).resolve().parents[4] / "shared" / "parity" / "energy_map" / "energy_map_vectors.npz"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    if not GOLDEN.exists():
        pytest.skip(f"parity vectors not found at {GOLDEN}")
    with np.load(GOLDEN) as data:
        return dict(data)


def random_tokens(n_frames: int, *, seed: int = 0, dim: int = 32, cls: bool = True) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_frames, 49 + int(cls), dim, generator=generator)  # [F, N, D]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reproduces_official_vectors(golden: dict[str, np.ndarray], dtype: str) -> None:
    tokens = torch.from_numpy(golden["clip_patch_tokens_fp16"]).to(getattr(torch, dtype))  # [6, 50, 768]

    scores = em.patch_scores(tokens)
    unfiltered = em.score_energy(scores)
    removed = em.top_p_removed(unfiltered)
    final = em.energy_map(tokens)

    assert scores.spatial.dtype == scores.temporal.dtype == tokens.dtype
    assert unfiltered.dtype == final.dtype == torch.float32
    np.testing.assert_allclose(scores.spatial.numpy(), golden[f"{dtype}.spatial_score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores.temporal.numpy(), golden[f"{dtype}.temporal_score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        unfiltered.numpy(), golden[f"{dtype}.energy_map_unfiltered"], rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(removed.numpy(), golden[f"{dtype}.removed_mask"])
    np.testing.assert_allclose(final.numpy(), golden[f"{dtype}.energy_map"], rtol=0, atol=1e-6)


def test_float16_tokens_give_a_float32_map(golden: dict[str, np.ndarray]) -> None:
    tokens = torch.from_numpy(golden["clip_patch_tokens_fp16"])  # the stored dtype of the official features
    final = em.energy_map(tokens)
    assert final.dtype == torch.float32
    np.testing.assert_allclose(final.sum(-1).numpy(), 1.0, atol=1e-3)  # the softmaxes are float16


def test_cls_flag_only_drops_token_zero() -> None:
    tokens = random_tokens(4)
    expected = em.energy_map(tokens)
    torch.testing.assert_close(em.energy_map(tokens[:, 1:], has_cls=False), expected, rtol=0, atol=0)


def test_leading_batch_dims_match_per_clip_calls() -> None:
    clips = torch.stack([random_tokens(5, seed=1), random_tokens(5, seed=2)])  # [B, F, N, D]
    batched = em.energy_map(clips)
    assert batched.shape == (2, 5, 49)
    for clip, row in zip(clips, batched, strict=True):
        torch.testing.assert_close(row, em.energy_map(clip), rtol=0, atol=1e-7)


def test_patch_grid_is_row_major() -> None:
    tokens = torch.arange(50, dtype=torch.float64)[None, :, None].expand(1, 50, 3)  # token p has value p
    grid = em.patch_grid(tokens)  # [1, 7, 7, 3]
    assert grid[0, 0, 0, 0] == 1  # first patch after CLS: top-left
    assert grid[0, 0, 6, 0] == 7  # end of the top row
    assert grid[0, 1, 0, 0] == 8  # next row starts at the left
    assert grid[0, 6, 6, 0] == 49  # bottom-right


@pytest.mark.parametrize("n_frames", [1, 2, 3, 8])
def test_rows_sum_to_one_and_removed_patches_get_nothing(n_frames: int) -> None:
    tokens = random_tokens(n_frames, seed=n_frames)
    scores = em.patch_scores(tokens)
    removed = em.top_p_removed(em.score_energy(scores))
    final = em.energy_map(tokens)
    assert final.shape == (n_frames, 49)
    torch.testing.assert_close(final.sum(-1), torch.ones(n_frames), rtol=0, atol=1e-6)
    assert torch.all(final[removed] == 0)
    assert torch.all(final[~removed] > 0)


def test_single_frame_has_temporal_score_one() -> None:
    """F = 1: no temporal neighbour, so the context is zero and the score is 1 (official behaviour)."""
    scores = em.patch_scores(random_tokens(1))
    torch.testing.assert_close(scores.temporal, torch.ones(1, 7, 7), rtol=0, atol=1e-6)


def test_two_frames_compare_with_each_other() -> None:
    """F = 2: each frame's only neighbour is the other, so both frames get the same distance."""
    tokens = random_tokens(2, seed=3)
    patches = em.patch_grid(tokens)
    unit = torch.nn.functional.normalize(patches, dim=-1)
    expected = torch.linalg.vector_norm(unit[0] - unit[1], dim=-1)  # [7, 7]
    temporal = em.temporal_score(patches)
    torch.testing.assert_close(temporal[0], expected)
    torch.testing.assert_close(temporal[1], expected)


def test_temporal_context_is_the_mean_of_both_neighbours() -> None:
    tokens = random_tokens(3, seed=4, cls=False).double()
    patches = em.patch_grid(tokens, has_cls=False)
    unit = torch.nn.functional.normalize(patches[1], dim=-1)
    context = torch.nn.functional.normalize(patches[0] + patches[2], dim=-1)
    torch.testing.assert_close(
        em.temporal_score(patches)[1], torch.linalg.vector_norm(unit - context, dim=-1)
    )


def test_spatial_score_singles_out_the_odd_patch() -> None:
    patches = torch.ones(1, 7, 7, 4, dtype=torch.float64)
    patches[0, 3, 5] = torch.tensor([1.0, -1.0, 1.0, -1.0])
    score = em.spatial_score(patches)[0]  # [7, 7]
    assert score.flatten().argmax() == 3 * 7 + 5
    assert score[0, 0] == 0  # a corner far from the odd patch sees only identical neighbours


def test_spatial_score_averages_the_existing_neighbours_at_a_corner() -> None:
    patches = torch.randn(1, 7, 7, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    unit = torch.nn.functional.normalize(patches[0, 0, 0], dim=-1)
    context = torch.nn.functional.normalize((patches[0, 1, 0] + patches[0, 0, 1]) / 2, dim=-1)
    torch.testing.assert_close(em.spatial_score(patches)[0, 0, 0], torch.linalg.vector_norm(unit - context))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sharpness=st.floats(0.1, 8.0), top_p=st.floats(0.05, 1.0))
def test_top_p_keeps_the_fewest_highest_patches_holding_top_p(
    seed: int, sharpness: float, top_p: float
) -> None:
    logits = torch.randn(4, 49, generator=torch.Generator().manual_seed(seed)) * sharpness
    energy = logits.softmax(-1)  # [F, P]
    removed = em.top_p_removed(energy, top_p)
    slack = 1e-6  # the cumulative sum is float32
    for row, row_removed in zip(energy, removed, strict=True):
        kept = row[~row_removed]
        assert kept.numel() >= 1
        if row_removed.any():
            assert row[row_removed].max() <= kept.min()  # only the lowest patches go
        removed_mass = row[row_removed].sum()
        assert removed_mass <= 1 - top_p + slack  # what is kept holds at least top_p
        assert removed_mass + kept.min() > 1 - top_p - slack  # dropping one more would not


def test_filtered_scores_are_minus_infinity_where_removed() -> None:
    scores = em.patch_scores(random_tokens(3, seed=6))
    removed = em.top_p_removed(em.score_energy(scores))
    filtered = em.filter_scores(scores, removed)
    mask = removed.view(3, 7, 7)
    assert torch.all(filtered.spatial[mask] == float("-inf"))
    assert torch.all(filtered.temporal[mask] == float("-inf"))
    torch.testing.assert_close(filtered.spatial[~mask], scores.spatial[~mask], rtol=0, atol=0)


def test_temperature_sharpens_the_map() -> None:
    scores = em.patch_scores(random_tokens(2, seed=7))
    sharp = em.score_energy(scores, temperature=0.05)
    soft = em.score_energy(scores, temperature=1.0)
    assert torch.all(sharp.max(-1).values > soft.max(-1).values)


@pytest.mark.parametrize(
    ("shape", "has_cls"),
    [((4, 49, 8), True), ((4, 50, 8), False), ((50, 8), True), ((0, 50, 8), True)],
)
def test_bad_token_shapes_raise(shape: tuple[int, ...], has_cls: bool) -> None:
    with pytest.raises(ValueError):
        em.energy_map(torch.zeros(shape), has_cls=has_cls)


@pytest.mark.parametrize("top_p", [0.0, -0.1, 1.5])
def test_top_p_out_of_range_raises(top_p: float) -> None:
    with pytest.raises(ValueError, match="top_p"):
        em.top_p_removed(torch.full((1, 49), 1 / 49), top_p)
