"""Window planning for clips of any length: coverage, overlap, limits, alignment to the true codec clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visage.model.features.windows import plan_windows
from visage.model.network.sequence import RELEASED_SEQUENCE as SEQ


def _code_frames(seconds: float) -> int:
    return math.ceil(round(seconds * 44100) / 512)


@pytest.mark.parametrize("seconds", [0.1, 1.0, 2.3, 4.99])
def test_short_clips_are_one_window_of_exactly_the_needed_frames(seconds: float) -> None:
    (w,) = plan_windows(0.0, seconds, SEQ)
    assert (w.clip_start, w.clip_stop) == (0, SEQ.clip_frames(0, seconds))
    assert (w.code_start, w.code_stop, w.prompt, w.repeat_last) == (0, _code_frames(seconds), 0, 0)


def test_five_seconds_is_the_official_430_plus_the_last_frame_repeated() -> None:
    (w,) = plan_windows(10.0, 15.0, SEQ)
    assert (w.clip_frames, w.generated_frames, w.code_stop, w.repeat_last) == (20, 430, 431, 1)


def test_twelve_seconds() -> None:
    windows = plan_windows(0.0, 12.0, SEQ)
    assert [(w.clip_start, w.clip_stop, w.code_start, w.code_stop, w.prompt) for w in windows] == [
        (0, 20, 0, 430, 0),
        (16, 36, 345, 775, 85),
        (32, 48, 689, 1034, 86),
    ]


@given(st.floats(min_value=0.05, max_value=120.0), st.floats(min_value=0.0, max_value=1000.0))
def test_windows_cover_the_clip_within_the_model_limits(seconds: float, start: float) -> None:
    end = start + seconds
    windows = plan_windows(start, end, SEQ)
    total = _code_frames(end - start)
    assert windows[0].code_start == 0 and windows[-1].code_stop == total
    assert windows[-1].clip_stop == SEQ.clip_frames(start, end)
    for prev, w in zip(windows, windows[1:], strict=False):
        assert w.code_start == prev.code_stop - w.prompt  # the prompt is exactly the overlap
        assert 0 < w.prompt < w.generated_frames
        # window k starts on the true codec clock at 4 k seconds
        assert abs(w.code_start - w.clip_start / 4 * 44100 / 512) <= 0.5
    for w in windows:
        assert 1 <= w.clip_frames <= 20 and 1 <= w.generated_frames <= 430
        assert SEQ.max_clip_frames >= w.clip_frames
