"""Sequence lengths derived from rates: the official numbers for 5-s clips and shorter ones."""

from __future__ import annotations

import pytest

from visage.model.network.sequence import RELEASED_SEQUENCE, SequenceConfig


def test_released_rates() -> None:
    s = RELEASED_SEQUENCE
    assert (s.clip_frame_rate, s.sample_rate, s.hop_length, s.codec_frame_rate) == (4, 44100, 512, 86)
    assert s.true_codec_frame_rate == pytest.approx(86.1328125)
    assert s.max_window_seconds == 5.0


def test_five_second_clip_lengths_are_the_official_ones() -> None:
    s = RELEASED_SEQUENCE
    frames = s.clip_frames(0.0, 5.0)
    assert frames == 20
    assert s.generated_codec_frames(frames) == 430
    assert s.output_codec_frames(frames) == 431
    assert s.samples(431) == 220672
    assert s.codec_frames_for_samples(220500) == 431


@pytest.mark.parametrize(
    "seconds,frames,generated",
    [(0.1, 1, 21), (0.25, 1, 21), (0.26, 2, 43), (1.0, 4, 86), (2.3, 10, 215), (4.999999999, 20, 430)],
)
def test_short_clips(seconds: float, frames: int, generated: int) -> None:
    assert RELEASED_SEQUENCE.clip_frames(0.0, seconds) == frames
    assert RELEASED_SEQUENCE.clip_frames(12.5, 12.5 + seconds) == frames
    assert RELEASED_SEQUENCE.generated_codec_frames(frames) == generated


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="no DAC model"):
        SequenceConfig(sample_rate=48000)
    with pytest.raises(ValueError, match="empty"):
        RELEASED_SEQUENCE.clip_frames(3.0, 3.0)
