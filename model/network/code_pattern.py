"""Code patterns: how a matrix of codec codes is laid out as a sequence of decoder steps.

A codec turns T frames of audio into K code rows (K = channels x codebooks, 36 for FOA with DAC's nine
codebooks; row r = 9 * channel + codebook, channels W, Y, Z, X). The decoder emits one *step* at a time
and predicts, at each step, the codes of the rows that are *live* there. Every pattern here is affine:
code (t, r) sits at step ``stride * t + offset[r]``; that covers the ViSAGe pattern, the mono (VGGSound)
pattern and the three alternatives of the paper's ablation.

The ViSAGe pattern (paper Eq. 4) for T = 2 frames, showing which frame's code each cell holds (``.`` =
pad; rows grouped as W_p = {0}, W_r + S_p = {1..8, 9, 18, 27}, S_r = the other 24 rows)::

    step:        0   1   2   3   4
    W_p          0   .   1   .   .
    W_r + S_p    .   0   .   1   .
    S_r          .   .   0   .   1

So 2T + 1 steps: W's coarse code first, then W's fine codes with the coarse codes of Y, Z, X, then the
fine codes of Y, Z, X together with the next frame's W coarse code.

Dimension letters: B batch, T code frames, K code rows, S pattern steps, C classes per head.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

IGNORE_INDEX = -100  # label value skipped by the loss (torch's cross-entropy default)


@dataclass(frozen=True)
class CodePattern:
    """An affine layout: code (t, r) goes to step ``stride * t + offsets[r]``.

    Attributes:
        name: registry name.
        stride: steps between consecutive frames of the same row.
        offsets: step of frame 0 for each of the K rows.
    """

    name: str
    stride: int
    offsets: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"pattern {self.name}: stride must be >= 1, got {self.stride}")
        if not self.offsets or min(self.offsets) != 0:
            raise ValueError(f"pattern {self.name}: offsets must be non-negative with some row at step 0")

    @property
    def num_rows(self) -> int:
        return len(self.offsets)

    @cached_property
    def _offsets(self) -> torch.Tensor:
        return torch.tensor(self.offsets, dtype=torch.long)

    def num_steps(self, num_frames: int) -> int:
        """Steps S needed for ``num_frames`` code frames (2T + 1 for ViSAGe)."""
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        return self.stride * (num_frames - 1) + max(self.offsets) + 1

    def max_frames(self, num_steps: int) -> int:
        """Largest T whose pattern fits in ``num_steps`` steps (430 for 861 with ViSAGe)."""
        return (num_steps - 1 - max(self.offsets)) // self.stride + 1

    def step_index(self, num_frames: int) -> torch.Tensor:
        """Step of every code: [T, K] long."""
        t = torch.arange(num_frames, dtype=torch.long)[:, None]
        return self.stride * t + self._offsets[None, :]

    def frame_index(self, num_frames: int) -> torch.Tensor:
        """Inverse map: frame held by each (step, row), -1 where the cell is pad. [S, K] long."""
        steps = self.step_index(num_frames)  # [T, K]
        out = torch.full((self.num_steps(num_frames), self.num_rows), -1, dtype=torch.long)
        frames = torch.arange(num_frames, dtype=torch.long)[:, None].expand_as(steps)
        out.scatter_(0, steps, frames)
        return out

    def live_mask(self, num_frames: int) -> torch.Tensor:
        """Which rows are predicted at each step: [S, K] bool."""
        return self.frame_index(num_frames) >= 0

    # -- codes ---------------------------------------------------------------------------------------

    def build(self, codes: torch.Tensor, pad_id: int) -> torch.Tensor:
        """Lay codes out as steps.

        Args:
            codes: [B, T, K] integer codes (pad ids inside are carried over).
            pad_id: value for cells no code occupies.
        Returns:
            [B, S, K] with S = ``num_steps(T)``.
        """
        self._check_rows(codes, "codes")
        b, t, k = codes.shape
        steps = self.step_index(t).to(codes.device)  # [T, K]
        out = codes.new_full((b, self.num_steps(t), k), pad_id)
        out.scatter_(1, steps[None].expand(b, t, k), codes)
        return out

    def revert(self, sequence: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Inverse of :meth:`build`: [B, S, K] -> [B, T, K].

        ``num_frames`` defaults to the largest T that fits in S steps.
        """
        self._check_rows(sequence, "sequence")
        b, s, k = sequence.shape
        t = self.max_frames(s) if num_frames is None else num_frames
        if self.num_steps(t) > s:
            raise ValueError(f"pattern {self.name}: {s} steps hold fewer than {t} frames")
        steps = self.step_index(t).to(sequence.device)
        return sequence.gather(1, steps[None].expand(b, t, k))

    def revert_logits(self, logits: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Per-step logits [B, S, K, C] (step s predicts row s of the pattern) -> per-frame [B, T, K, C]."""
        b, s, k, c = logits.shape
        if k != self.num_rows:
            raise ValueError(f"pattern {self.name}: logits have {k} rows, expected {self.num_rows}")
        t = self.max_frames(s) if num_frames is None else num_frames
        steps = self.step_index(t).to(logits.device)
        return logits.gather(1, steps[None, :, :, None].expand(b, t, k, c))

    # -- teacher forcing -----------------------------------------------------------------------------

    def decoder_inputs(self, codes: torch.Tensor, pad_id: int) -> torch.Tensor:
        """Teacher-forcing inputs: the pattern without its last step, [B, S - 1, K].

        The decoder prepends its BOS, so output position j predicts step j.
        """
        return self.build(codes, pad_id)[:, :-1]

    def labels(self, codes: torch.Tensor, pad_id: int) -> torch.Tensor:
        """Training targets [B, S, K]: the pattern with every pad replaced by -100 (ignored)."""
        seq = self.build(codes, pad_id)
        return seq.masked_fill(seq == pad_id, IGNORE_INDEX)

    def _check_rows(self, x: torch.Tensor, what: str) -> None:
        if x.dim() != 3 or x.shape[-1] != self.num_rows:
            raise ValueError(
                f"pattern {self.name}: {what} must be [B, *, {self.num_rows}], got {tuple(x.shape)}"
            )


def _grouped_offsets(num_rows: int, group_of_row) -> tuple[int, ...]:
    return tuple(group_of_row(r) for r in range(num_rows))


def visage_pattern(num_codebooks: int = 9, num_channels: int = 4) -> CodePattern:
    """The ViSAGe FOA pattern (paper Eq. 4): W_p, then W_r + S_p, then S_r + next W_p; 2T + 1 steps."""

    def group(r: int) -> int:
        channel, codebook = divmod(r, num_codebooks)
        if channel == 0:
            return 0 if codebook == 0 else 1
        return 1 if codebook == 0 else 2

    return CodePattern("visage", 2, _grouped_offsets(num_codebooks * num_channels, group))


def mono_pattern(num_codebooks: int = 9) -> CodePattern:
    """The mono (VGGSound) pattern: codebook 0, then codebooks 1..8; 2T steps."""
    return CodePattern("mono", 2, _grouped_offsets(num_codebooks, lambda r: 0 if r == 0 else 1))


def sequential_delay_pattern(num_codebooks: int = 9, num_channels: int = 4) -> CodePattern:
    """Ablation: every row delayed by its index (stereo MusicGen style); T + K - 1 steps."""
    rows = num_codebooks * num_channels
    return CodePattern("delay", 1, tuple(range(rows)))


def residual_only_pattern(num_codebooks: int = 9, num_channels: int = 4) -> CodePattern:
    """Ablation: (W_p, S_p) then (W_r, S_r), residual dependency only; 2T steps."""
    return CodePattern(
        "residual",
        2,
        _grouped_offsets(num_codebooks * num_channels, lambda r: 0 if r % num_codebooks == 0 else 1),
    )


def spatial_only_pattern(num_codebooks: int = 9, num_channels: int = 4) -> CodePattern:
    """Ablation: (W_p, W_r) then (S_p, S_r), spatial dependency only; 2T steps."""
    return CodePattern(
        "spatial",
        2,
        _grouped_offsets(num_codebooks * num_channels, lambda r: 0 if r < num_codebooks else 1),
    )


_PATTERN_BUILDERS = {
    "visage": visage_pattern,
    "delay": sequential_delay_pattern,
    "residual": residual_only_pattern,
    "spatial": spatial_only_pattern,
}

PATTERN_NAMES = (*_PATTERN_BUILDERS, "mono")


def get_pattern(name: str, num_codebooks: int = 9, num_channels: int = 4) -> CodePattern:
    """A pattern by name: ``visage`` (default for FOA), ``mono``, ``delay``, ``residual``, ``spatial``."""
    if name == "mono" or num_channels == 1:
        if name not in ("mono", "visage"):
            raise ValueError(f"pattern {name!r} needs 4 channels; the mono model uses 'mono'")
        return mono_pattern(num_codebooks)
    try:
        return _PATTERN_BUILDERS[name](num_codebooks, num_channels)
    except KeyError:
        raise ValueError(f"unknown code pattern {name!r}; known: {', '.join(PATTERN_NAMES)}") from None
