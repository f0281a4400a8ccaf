"""The comparison's measurements against signals whose cues are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visage.model.delivery.binaural_preview import load_decoder
from visage.model.evaluation.binaural_comparison import ear_cues, noise_burst, sweep_cues, woodworth_itd_us

RATE = 48_000


@pytest.mark.parametrize(("delay", "gain"), [(10, 0.5), (-7, 2.0), (0, 1.0)])
def test_ild_and_itd_of_a_delayed_scaled_copy(delay: int, gain: float) -> None:
    burst = noise_burst(RATE, 0.3, seed=3)
    right = gain * np.roll(burst, delay)  # the burst fades in and out: the wrap-around is silent
    cues = ear_cues(np.stack([burst, right]), RATE, 0.0)
    assert cues.ild_db == pytest.approx(-20 * math.log10(gain), abs=0.01)
    assert cues.ild_high_db == pytest.approx(-20 * math.log10(gain), abs=0.05)
    assert cues.itd_us == pytest.approx(1e6 * delay / RATE, abs=2.0)


def test_woodworth_by_hand() -> None:
    assert woodworth_itd_us(90.0) == pytest.approx(1e6 * 0.0875 / 343 * (math.pi / 2 + 1))
    assert woodworth_itd_us(0.0) == 0.0 and woodworth_itd_us(180.0) == pytest.approx(0.0, abs=1e-9)
    assert woodworth_itd_us(-30.0) == pytest.approx(-woodworth_itd_us(30.0))


def test_both_renderers_put_a_left_source_left() -> None:
    burst = noise_burst(RATE, 0.2)
    for renderer in ("spherical-head", "youtube"):
        left, right = sweep_cues(load_decoder(RATE, renderer=renderer), burst, [90.0, -90.0])
        assert left.ild_db > 6 and left.itd_us > 200, renderer
        assert right.ild_db == pytest.approx(-left.ild_db, abs=0.5) and right.itd_us < -200, renderer
