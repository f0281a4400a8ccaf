"""--look auto: the direction of the most motion in a panorama is where the moving object is."""

from __future__ import annotations

import math

import numpy as np
import pytest
from panorama_factory import angular_distance, disc_frames, moving_disc_centres, pixel_directions

from visage.model.features.look_direction import (
    LookDirectionError,
    look_direction,
    motion_direction,
    motion_map,
)

# Seeded random object directions (azimuth anywhere, elevation within ±60°), plus fixed cases.
_RNG = np.random.default_rng(20261207)
RANDOM_CASES = [
    (float(a), float(e)) for a, e in zip(_RNG.uniform(-180, 180, 6), _RNG.uniform(-60, 60, 6), strict=True)
]


def degrees_apart(found, az_deg: float, el_deg: float) -> float:
    return math.degrees(
        float(
            angular_distance(
                math.radians(found.yaw_deg),
                math.radians(found.pitch_deg),
                math.radians(az_deg),
                math.radians(el_deg),
            )
        )
    )


@pytest.mark.parametrize(("az", "el"), [(0.0, 0.0), (90.0, 20.0), (-135.0, -35.0), *RANDOM_CASES])
def test_a_moving_object_is_found_within_10_degrees(az: float, el: float) -> None:
    frames = disc_frames(moving_disc_centres(az, el, frames=8), seed=1)
    found = look_direction(frames)
    assert found is not None
    assert degrees_apart(found, az, el) < 10.0


@pytest.mark.parametrize("az", [180.0, -178.0, 176.0])
def test_an_object_crossing_the_seam_is_found(az: float) -> None:
    frames = disc_frames(moving_disc_centres(az, 10.0, frames=8, span_deg=12.0), seed=2)
    found = look_direction(frames)
    assert found is not None
    assert degrees_apart(found, az, 10.0) < 10.0


def test_motion_near_a_pole_is_found() -> None:
    frames = disc_frames(moving_disc_centres(40.0, 72.0, frames=8, span_deg=30.0), seed=3)
    found = look_direction(frames)
    assert found is not None
    assert degrees_apart(found, 40.0, 72.0) < 10.0


def test_the_pitch_is_clamped() -> None:
    frames = disc_frames(moving_disc_centres(-60.0, 50.0, frames=6), seed=4)
    found = look_direction(frames, max_pitch_deg=30.0)
    assert found is not None
    assert found.pitch_deg == 30.0
    assert found.yaw_deg == pytest.approx(-60.0, abs=10.0)


def test_still_frames_and_single_frames_have_no_direction() -> None:
    still = disc_frames([(30.0, 0.0)] * 5)
    assert look_direction(still) is None
    assert look_direction(still[:1]) is None


def test_equal_pixel_areas_of_motion_weigh_by_the_solid_angle_they_cover() -> None:
    """The same block of moving pixels covers less of the sphere near a pole: the horizon one wins."""
    motion = np.zeros((90, 180))
    motion[40:50, 20:30] = 1.0  # about the horizon
    motion[5:15, 120:130] = 1.0  # about 70° up: as many pixels, a third of the solid angle
    found = motion_direction(motion)
    azimuth, elevation = pixel_directions(180, 90)
    assert found is not None
    assert found.pitch_deg == pytest.approx(math.degrees(elevation[40:50].mean()), abs=3.0)
    assert found.yaw_deg == pytest.approx(math.degrees(azimuth[0, 20:30].mean()), abs=3.0)


def test_the_motion_map_is_the_summed_grey_difference_at_analysis_size() -> None:
    frames = np.zeros((3, 128, 512), np.float64)
    frames[1, :, :4] = 1.0  # one block of 2x2 analysis pixels (factor 2) changes, and changes back
    motion = motion_map(frames)
    assert motion.shape == (64, 256)
    assert motion[:, :2].sum() == pytest.approx(2 * 64 * 2)  # twice a change of 1 on 64 x 2 pixels
    assert motion[:, 2:].sum() == 0.0


@pytest.mark.parametrize(
    ("frames", "message"),
    [(np.zeros((2, 4, 4, 4)), "frames"), (np.zeros((2, 1, 1)), "too small"), (np.zeros((0, 8, 8)), "frames")],
)
def test_bad_frames_are_refused(frames: np.ndarray, message: str) -> None:
    with pytest.raises(LookDirectionError, match=message):
        look_direction(frames)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"cap_radius_deg": 0.0}, "cap_radius_deg"), ({"max_pitch_deg": 95.0}, "max_pitch")],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(LookDirectionError, match=message):
        motion_direction(np.ones((8, 16)), **kwargs)
