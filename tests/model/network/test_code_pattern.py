"""Code patterns: the official interleaving exactly, and build/revert round trips for every pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from visage.model.network.code_pattern import (
    IGNORE_INDEX,
    PATTERN_NAMES,
    CodePattern,
    get_pattern,
    mono_pattern,
    visage_pattern,
)

PAD = 1024


@pytest.fixture(scope="module")
def vectors(parity_dir: Path):
    return np.load(parity_dir / "code_pattern" / "code_pattern_vectors.npz")


@pytest.mark.parametrize("case", ["L6", "L430", "padded"])
def test_visage_pattern_matches_official_preprocessing(vectors, case: str) -> None:
    codes = torch.from_numpy(vectors[f"{case}.dac_npy_36xT"]).T[None]  # [1, T, 36]
    pattern = visage_pattern()
    assert np.array_equal(pattern.build(codes, PAD)[0].numpy(), vectors[f"{case}.interleaved"])
    assert np.array_equal(pattern.labels(codes, PAD)[0].numpy(), vectors[f"{case}.labels"])
    if case != "padded":
        assert np.array_equal(
            pattern.decoder_inputs(codes, PAD)[0].numpy(), vectors[f"{case}.decoder_input_ids"]
        )
        assert torch.equal(pattern.revert(pattern.build(codes, PAD)), codes)


@pytest.mark.parametrize("case", ["L6", "L430"])
def test_mono_pattern_matches_official_preprocessing(vectors, case: str) -> None:
    codes = torch.from_numpy(vectors[f"{case}.dac_npy_36xT"]).T[None, :, :9]
    pattern = mono_pattern()
    assert np.array_equal(pattern.build(codes, PAD)[0].numpy(), vectors[f"{case}.mono_interleaved"])
    assert np.array_equal(
        pattern.decoder_inputs(codes, PAD)[0].numpy(), vectors[f"{case}.mono_decoder_input_ids"]
    )
    assert np.array_equal(pattern.labels(codes, PAD)[0].numpy(), vectors[f"{case}.mono_labels"])


def test_visage_step_groups() -> None:
    p = visage_pattern()
    live = p.live_mask(430)
    assert live.shape == (861, 36)
    w_r_s_p = [1, 2, 3, 4, 5, 6, 7, 8, 9, 18, 27]
    s_r = [r for r in range(36) if r not in (0, *w_r_s_p)]
    assert torch.nonzero(live[0]).flatten().tolist() == [0]
    assert torch.nonzero(live[1]).flatten().tolist() == w_r_s_p
    assert torch.nonzero(live[2]).flatten().tolist() == [0, *s_r]
    assert torch.nonzero(live[860]).flatten().tolist() == s_r
    counts = live.sum(1)
    assert (
        counts[0] == 1 and (counts[1::2] == 11).all() and (counts[2:860:2] == 25).all() and counts[860] == 24
    )


@pytest.mark.parametrize(
    "name,steps",
    [
        ("visage", lambda t: 2 * t + 1),
        ("mono", lambda t: 2 * t),
        ("delay", lambda t: t + 35),
        ("residual", lambda t: 2 * t),
        ("spatial", lambda t: 2 * t),
    ],
)
@pytest.mark.parametrize("frames", [1, 2, 3, 7, 64, 431])
def test_round_trip_for_every_pattern_and_length(name: str, steps, frames: int) -> None:
    pattern = get_pattern(name)
    k = pattern.num_rows
    codes = torch.randint(0, 1024, (2, frames, k), generator=torch.Generator().manual_seed(frames))
    seq = pattern.build(codes, PAD)
    assert seq.shape == (2, steps(frames), k)
    assert pattern.num_steps(frames) == steps(frames)
    assert pattern.max_frames(steps(frames)) == frames
    assert torch.equal(pattern.revert(seq), codes)
    # every code appears exactly once, every other cell is pad
    assert int((seq != PAD).sum()) == codes.numel()
    assert torch.equal(pattern.live_mask(frames), (pattern.frame_index(frames) >= 0))
    assert torch.equal(pattern.live_mask(frames)[None].expand_as(seq), seq != PAD)
    labels = pattern.labels(codes, PAD)
    assert torch.equal(labels == IGNORE_INDEX, seq == PAD)
    assert torch.equal(pattern.decoder_inputs(codes, PAD), seq[:, :-1])


@pytest.mark.parametrize("name", ["visage", "delay", "residual", "spatial"])
def test_revert_logits_picks_each_codes_step(name: str) -> None:
    pattern = get_pattern(name)
    frames, k, c = 5, pattern.num_rows, 3
    s = pattern.num_steps(frames)
    # logits whose value says (step, row): reverting must bring step_index(t, r) to (t, r)
    logits = torch.arange(s, dtype=torch.float)[None, :, None, None].expand(1, s, k, c)
    reverted = pattern.revert_logits(logits)
    assert reverted.shape == (1, frames, k, c)
    assert torch.equal(reverted[0, :, :, 0].long(), pattern.step_index(frames))


def test_ablation_patterns_order_the_groups_as_the_paper() -> None:
    assert get_pattern("residual").offsets[0] == get_pattern("residual").offsets[9] == 0  # W_p with S_p
    assert get_pattern("residual").offsets[1] == get_pattern("residual").offsets[10] == 1  # W_r with S_r
    assert get_pattern("spatial").offsets[:9] == (0,) * 9 and get_pattern("spatial").offsets[9:] == (1,) * 27
    assert get_pattern("delay").offsets == tuple(range(36))
    assert set(PATTERN_NAMES) == {"visage", "mono", "delay", "residual", "spatial"}


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\[B, \*, 36\]"):
        visage_pattern().build(torch.zeros(1, 4, 9, dtype=torch.long), PAD)
    with pytest.raises(ValueError, match="unknown code pattern"):
        get_pattern("zigzag")
    with pytest.raises(ValueError, match="stride"):
        CodePattern("bad", 0, (0, 1))
    with pytest.raises(ValueError, match="num_frames"):
        visage_pattern().num_steps(0)
    with pytest.raises(ValueError, match="fewer than"):
        visage_pattern().revert(torch.zeros(1, 5, 36, dtype=torch.long), 3)
