"""Training batches: rotation augmentation keeps codes and direction together; dropout per batch or clip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from visage.model.audio.ambisonics import encode_mono, rotate
from visage.model.dataset.direction_table import ClipDirection
from visage.model.dataset.shard_format import ClipRecord, ClipTensors, write_shard
from visage.model.features.direction import CameraDirection, model_direction_vector
from visage.model.network.code_pattern import IGNORE_INDEX, get_pattern
from visage.model.network.sequence import SequenceConfig
from visage.model.training.data import (
    Augmentation,
    ClipDataset,
    ClipExample,
    draw,
    epoch_batches,
    make_batch,
    shared_generator,
)

PATTERN = get_pattern("visage", 2, 4)  # K = 8 rows


def example(i: int, frames: int = 3, code_frames: int = 5) -> ClipExample:
    codes = torch.full((code_frames, 8), i, dtype=torch.long)
    return ClipExample(
        f"c{i}",
        torch.full((frames, 512), float(i)),
        torch.full((frames, 49), 1 / 49),
        codes,
        codes + 100,
        torch.tensor([1.0, 0.0, 0.0]) * i,
        torch.tensor([0.0, 0.0, 1.0]) * i,
    )


def test_rotation_swaps_codes_and_direction_together() -> None:
    off = torch.zeros(2, dtype=torch.bool)
    batch = make_batch(
        [example(1), example(2)],
        PATTERN,
        1024,
        rotate=torch.tensor([True, False]),
        null_video=off,
        null_direction=off,
    )
    labels = batch.labels[batch.labels != IGNORE_INDEX].view(-1)
    assert set(batch.labels[0][batch.labels[0] != IGNORE_INDEX].tolist()) == {101}
    assert set(batch.labels[1][batch.labels[1] != IGNORE_INDEX].tolist()) == {2}
    assert torch.equal(batch.direction, torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.0, 0.0]]))
    assert labels.numel() and batch.decoder_input_ids.shape == (2, PATTERN.num_steps(5) - 1, 8)


def test_the_rotation_pairs_the_official_audio_turn_with_a_camera_turn_of_minus_90() -> None:
    # Spec 6.2: Y' = -X, X' = Y is rotate(yaw=-90°); a source the camera looks at stays in view.
    source = CameraDirection(35.0, 10.0)
    foa = encode_mono(np.ones(4), math.radians(source.yaw_deg), math.radians(source.pitch_deg))
    turned = rotate(foa, yaw=-math.pi / 2)
    np.testing.assert_allclose(turned[1], -foa[3]) and np.testing.assert_allclose(turned[3], foa[1])
    moved = encode_mono(np.ones(4), math.radians(source.yaw_deg - 90), math.radians(source.pitch_deg))
    np.testing.assert_allclose(turned, moved, atol=1e-12)
    rotated_camera = ClipDirection.from_camera(source).vector_rotated
    np.testing.assert_allclose(
        rotated_camera, model_direction_vector(CameraDirection(source.yaw_deg - 90, 10.0))
    )


def test_padded_clips_give_frame_counts_and_ignored_labels() -> None:
    off = torch.zeros(2, dtype=torch.bool)
    batch = make_batch(
        [example(1, 3, 5), example(2, 2, 3)], PATTERN, 1024, rotate=off, null_video=off, null_direction=off
    )
    assert batch.frame_counts is not None and batch.frame_counts.tolist() == [3, 2]
    assert (batch.labels[1, PATTERN.num_steps(3) :] == IGNORE_INDEX).all()
    assert torch.equal(batch.clip[1, 2], torch.zeros(512))


def test_dropout_is_one_draw_per_batch_or_one_per_clip() -> None:
    g = torch.Generator().manual_seed(0)
    batch_mode = Augmentation(0.5, 0.5, 0.5, per_sample_dropout=False)
    for _ in range(20):
        _, video, direction = draw(16, batch_mode, g)
        assert video.all() or not video.any()
        assert direction.all() or not direction.any()
    _, video, _ = draw(64, Augmentation(0.5, 0.5, 0.5, per_sample_dropout=True), g)
    assert 0 < int(video.sum()) < 64
    rotate, video, direction = draw(8, Augmentation(1.0, 0.0, 1.0), g)
    assert rotate.all() and not video.any() and direction.all()


def test_per_batch_dropout_is_the_same_on_every_process() -> None:
    # The processes split one global batch and own differently seeded generators; the official
    # per-batch decision must still be one for the whole batch, while rotations stay per clip.
    aug = Augmentation(0.5, 0.5, 0.5)
    ranks = [torch.Generator().manual_seed(1115 * 1000 + r) for r in range(2)]
    seen, rotations_differ = set(), False
    for step in range(40):
        (rot0, video0, dir0), (rot1, video1, dir1) = [
            draw(4, aug, g, shared_generator(1115, step)) for g in ranks
        ]
        assert torch.equal(video0, video1) and torch.equal(dir0, dir1)
        seen.add((bool(video0[0]), bool(dir0[0])))
        rotations_differ |= not torch.equal(rot0, rot1)
    assert len(seen) == 4 and rotations_differ  # video and direction drawn independently


def test_epoch_batches_are_shuffled_by_epoch_and_split_across_processes() -> None:
    one = epoch_batches(10, 4, seed=1, epoch=0)
    assert sorted(i for b in one for i in b) == list(range(10)) and [len(b) for b in one] == [4, 4, 2]
    assert epoch_batches(10, 4, seed=1, epoch=0) == one and epoch_batches(10, 4, seed=1, epoch=1) != one
    parts = [epoch_batches(10, 4, seed=1, epoch=0, rank=r, world_size=3) for r in range(3)]
    assert [len(p) for p in parts] == [2, 2, 2]  # the last batch of 2 < 3 processes is dropped
    assert sorted(parts[0][0] + parts[1][0] + parts[2][0]) == sorted(one[0])


def test_long_clips_give_a_random_whole_second_window(tmp_path: Path) -> None:
    seq = SequenceConfig(4, 44100, 8)  # 2-s window
    codes = (
        torch.arange(6 * 86).repeat_interleave(2).view(-1, 2)[:, :1].repeat(1, 8)
    )  # frame index in every row
    clip = torch.arange(24).float()[:, None].repeat(1, 512)
    write_shard(tmp_path / "s.safetensors", {"long": ClipTensors(clip, torch.zeros(24, 49), codes, codes)})
    record = ClipRecord(
        "long", "s.safetensors", "x", 0.0, 6.0, 0.0, 0.0, (0, 0, 1), (1, 0, 0), 24, 6 * 86, "train"
    )
    data = ClipDataset(tmp_path, [record], seq)
    first = data.example(0)
    assert first.clip.shape[0] == 8 and first.codes.shape[0] == 172 and int(first.codes[0, 0]) == 0
    starts = {int(data.example(0, torch.Generator().manual_seed(s)).clip[0, 0]) for s in range(30)}
    assert starts <= {0, 4, 8, 12, 16} and len(starts) > 2
    e = data.example(0, torch.Generator().manual_seed(3))
    assert int(e.codes[0, 0]) == int(e.clip[0, 0]) // 4 * 86  # codes and frames from the same second


@pytest.mark.parametrize("count", [0])
def test_an_empty_batch_is_refused(count: int) -> None:
    off = torch.zeros(count, dtype=torch.bool)
    with pytest.raises(ValueError, match="at least one clip"):
        make_batch([], PATTERN, 1024, rotate=off, null_video=off, null_direction=off)
