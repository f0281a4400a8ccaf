"""Clip selection: valid seconds, kept windows, and the camera pointed at the dominant sound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visage.model.audio.ambisonics import encode_mono
from visage.model.dataset.clip_selection import SelectionRules, clip_starts, dominant_direction, valid_seconds

SR = 1000


def noise_foa(seconds: int, levels: list[float]) -> np.ndarray:
    mono = np.random.default_rng(0).standard_normal(seconds * SR)
    mono *= np.repeat(levels, SR)
    return encode_mono(mono, 0.4, 0.1)


def test_valid_seconds_thresholds_the_rms_of_w() -> None:
    foa = noise_foa(4, [1.0, 1e-4, 0.1, 1e-2])
    assert valid_seconds(foa, SR, -30.0).tolist() == [True, False, True, False]
    assert valid_seconds(foa[:, :-10], SR, -30.0).tolist() == [True, False, True]  # partial second dropped


def test_a_dead_channel_invalidates_the_second() -> None:
    foa = noise_foa(2, [1.0, 1.0])
    foa[2, SR:] = 0.0  # Z empty in the second second
    assert valid_seconds(foa, SR, -30.0).tolist() == [True, False]


def test_windows_need_more_than_the_minimum_of_valid_seconds() -> None:
    rules = SelectionRules(clip_seconds=5, min_valid_seconds=3)
    valid = [1, 1, 1, 1, 0] + [1, 1, 1, 0, 0] + [1, 1, 1, 1, 1] + [1, 1]
    assert clip_starts(valid, rules) == [0, 10]  # the last 2 s are no window


@pytest.mark.parametrize(("az", "el"), [(40, 20), (-150, -30), (178, 0), (0, 60)])
def test_the_camera_looks_at_the_dominant_source(az: float, el: float) -> None:
    rng = np.random.default_rng(1)
    loud = encode_mono(rng.standard_normal(4000), math.radians(az), math.radians(el))
    quiet = encode_mono(0.2 * rng.standard_normal(4000), math.radians(az + 120), 0.0)
    camera = dominant_direction(loud + quiet)
    assert abs((camera.yaw_deg - az + 180) % 360 - 180) <= 2
    assert camera.pitch_deg == pytest.approx(el, abs=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip_seconds": 0}, "clip_seconds"),
        ({"min_valid_seconds": 5}, "min_valid_seconds"),
        ({"rms_threshold_db": math.inf}, "finite"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectionRules(**kwargs)


def test_wrong_channel_count_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[4, N\]"):
        valid_seconds(np.zeros((2, 100)), SR, -30)
