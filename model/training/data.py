"""Training examples and batches: dataset clips -> model inputs, with augmentation and condition dropout.

Per clip (official ``PreprocessorAmbi``, spec §4.4): a clip longer than the model's window gives a
random whole-second window (codes at the integer 86 frames/s, CLIP frames at 4/s); otherwise its first
``max_clip_frames`` CLIP frames and the ``int(F / 4 * 86)`` code frames the model generates for them.
Rotation augmentation (§6.2) swaps in the codes of the rotated sound field together with the rotated
camera vector. Condition dropout (§6.1) nulls the video (CLIP frames *and* energy map) and, independently,
the direction: once per batch as the official code does, or per clip.

Every random choice comes from one ``torch.Generator`` owned by the training loop, except per-batch
dropout, which comes from a generator seeded by the step alike on every process (so the processes that
split a batch agree); a resumed run draws exactly what an uninterrupted one would.

Dimension letters: B clips, F CLIP frames, P = 49 patches, T code frames, S pattern steps, K code rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from visage.model.dataset.shard_format import ClipRecord, ShardReader
from visage.model.network.code_pattern import CodePattern
from visage.model.network.sequence import SequenceConfig


@dataclass(frozen=True)
class ClipExample:
    """One clip's inputs after windowing, both orientations kept.

    Attributes:
        id: clip id.
        clip: [F, 512] float32; energy: [F, 49] float32.
        codes, codes_rotated: [T, K] long.
        direction, direction_rotated: [3] float32.
    """

    id: str
    clip: torch.Tensor
    energy: torch.Tensor
    codes: torch.Tensor
    codes_rotated: torch.Tensor
    direction: torch.Tensor
    direction_rotated: torch.Tensor


@dataclass(frozen=True)
class Batch:
    """Model inputs of one batch (see ``Visage.forward``).

    Attributes:
        clip: [B, F, 512]; energy: [B, F, 49]; direction: [B, 3].
        decoder_input_ids: [B, S - 1, K]; labels: [B, S, K] with -100 at pads.
        frame_counts: [B] real CLIP frames when clips differ in length, else None.
        null_video, null_direction: [B] bool condition-dropout masks.
        rotated: [B] bool, which clips were replaced by their rotated version.
    """

    clip: torch.Tensor
    energy: torch.Tensor
    direction: torch.Tensor
    decoder_input_ids: torch.Tensor
    labels: torch.Tensor
    frame_counts: torch.Tensor | None
    null_video: torch.Tensor
    null_direction: torch.Tensor
    rotated: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            name: (value.to(device) if isinstance(value, torch.Tensor) else value)
            for name, value in self.__dict__.items()
        }
        return Batch(**moved)

    def objective_inputs(self) -> tuple[torch.Tensor | None, ...]:
        """The positional arguments of ``TrainingObjective.forward``, in its order."""
        return (
            self.clip,
            self.energy,
            self.direction,
            self.decoder_input_ids,
            self.labels,
            self.null_video,
            self.null_direction,
            self.frame_counts,
        )


class ClipDataset:
    """The clips of a dataset split, read lazily from the shards and windowed for the model."""

    def __init__(self, folder: str | Path, records: Sequence[ClipRecord], sequence: SequenceConfig) -> None:
        self.records = list(records)
        self.sequence = sequence
        self.reader = ShardReader(folder)

    def __len__(self) -> int:
        return len(self.records)

    def example(self, index: int, generator: torch.Generator | None = None) -> ClipExample:
        """Clip ``index``, windowed (a random whole-second window needs ``generator``)."""
        record = self.records[index]
        t = self.reader.read(record)
        seq = self.sequence
        window_s = seq.max_clip_frames // seq.clip_frame_rate
        code_seconds = t.codes.shape[0] // seq.codec_frame_rate
        start = 0
        if code_seconds > window_s and generator is not None:
            last = min(code_seconds, t.clip.shape[0] // seq.clip_frame_rate) - window_s
            start = int(torch.randint(0, max(last, 0) + 1, (1,), generator=generator))
        f0 = start * seq.clip_frame_rate
        frames = min(t.clip.shape[0] - f0, seq.max_clip_frames)
        c0 = start * seq.codec_frame_rate
        code_frames = min(t.codes.shape[0] - c0, seq.generated_codec_frames(frames))
        return ClipExample(
            id=record.id,
            clip=t.clip[f0 : f0 + frames].float(),
            energy=t.energy[f0 : f0 + frames].float(),
            codes=t.codes[c0 : c0 + code_frames].long(),
            codes_rotated=t.codes_rotated[c0 : c0 + code_frames].long(),
            direction=torch.tensor(record.direction, dtype=torch.float32),
            direction_rotated=torch.tensor(record.direction_rotated, dtype=torch.float32),
        )


@dataclass(frozen=True)
class Augmentation:
    """Probabilities of the training-time randomness (see ``train_config.TrainConfig``)."""

    rotation_prob: float = 0.5
    video_dropout: float = 0.1
    direction_dropout: float = 0.1
    per_sample_dropout: bool = False


NO_AUGMENTATION = Augmentation(0.0, 0.0, 0.0)


def shared_generator(seed: int, step: int, micro: int = 0) -> torch.Generator:
    """A generator seeded alike on every process for one micro-batch of one optimiser step.

    Per-batch dropout must be one decision for the whole (global) batch, which the processes split
    among themselves: drawn from this, every process nulls the same conditions. It depends only on
    (seed, step, micro), so a resumed run draws the same decisions without saving any state.
    """
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 4_099 + micro)


def draw(
    count: int,
    augmentation: Augmentation,
    generator: torch.Generator,
    shared: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotation and dropout decisions for ``count`` clips: (rotate, null_video, null_direction), [B] bool.

    Per-batch dropout (official) draws one number for the video and one for the direction and applies it
    to every clip, from ``shared`` when given (see :func:`shared_generator`) so that all processes agree;
    per-sample dropout draws one per clip from ``generator``, as the rotations are. The draw order is
    fixed, for reproducibility.
    """
    rotate = torch.rand(count, generator=generator) < augmentation.rotation_prob
    if augmentation.per_sample_dropout:
        n, source = count, generator
    else:
        n, source = 1, (shared if shared is not None else generator)
    null_video = (torch.rand(n, generator=source) < augmentation.video_dropout).expand(count)
    null_direction = (torch.rand(n, generator=source) < augmentation.direction_dropout).expand(count)
    return rotate, null_video.clone(), null_direction.clone()


def make_batch(
    examples: Sequence[ClipExample],
    pattern: CodePattern,
    pad_id: int,
    *,
    rotate: torch.Tensor,
    null_video: torch.Tensor,
    null_direction: torch.Tensor,
) -> Batch:
    """Stack clips into a batch: clips and codes padded at the end, codes laid out by ``pattern``."""
    b = len(examples)
    if not b:
        raise ValueError("a batch needs at least one clip")
    frames = [e.clip.shape[0] for e in examples]
    code_frames = [e.codes.shape[0] for e in examples]
    f_max, t_max = max(frames), max(code_frames)
    clip = torch.zeros(b, f_max, examples[0].clip.shape[1])
    energy = torch.zeros(b, f_max, examples[0].energy.shape[1])
    codes = torch.full((b, t_max, examples[0].codes.shape[1]), pad_id, dtype=torch.long)
    direction = torch.empty(b, 3)
    for i, e in enumerate(examples):
        r = bool(rotate[i])
        clip[i, : frames[i]] = e.clip
        energy[i, : frames[i]] = e.energy
        codes[i, : code_frames[i]] = e.codes_rotated if r else e.codes
        direction[i] = e.direction_rotated if r else e.direction
    counts = torch.tensor(frames) if len(set(frames)) > 1 else None
    return Batch(
        clip=clip,
        energy=energy,
        direction=direction,
        decoder_input_ids=pattern.decoder_inputs(codes, pad_id),
        labels=pattern.labels(codes, pad_id),
        frame_counts=counts,
        null_video=null_video.bool(),
        null_direction=null_direction.bool(),
        rotated=rotate.bool(),
    )


def epoch_batches(
    num_clips: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This process's share of every batch of an epoch, in a shuffled order fixed by (seed, epoch).

    The global batch is split into contiguous parts, one per process (the official ``split_batches``).
    A last batch smaller than the number of processes is dropped so that every process has work.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(num_clips, generator=generator).tolist()
    out = []
    for start in range(0, num_clips, batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < world_size:
            break
        parts = torch.tensor_split(torch.tensor(batch), world_size)
        out.append(parts[rank].tolist())
    return out
