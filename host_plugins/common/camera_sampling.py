"""Which scene frames to sample for a camera-direction curve, and which camera is active at a frame.

The model conditions each of its 5-s windows on the camera's mean direction over the window
(``visage.model.features.windows``; ``DirectionCurve.mean_over``), so a curve needs enough samples for
that mean, not one per frame: evaluating every frame of a long strip froze Blender for seconds. A plan
takes `SAMPLES_PER_WINDOW` samples per window (every frame when the scene rate is lower), at most
`MAX_SAMPLES` in all. Each sample holds from its own frame until the next sample's (sample-and-hold,
as curves are read) and is evaluated at the middle of the frames it holds (a subframe when they are even
in number), so that its value is their mean for a steady pan rather than lagging half a step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple, TypeVar

MODEL_WINDOW_S = 5  # the model's conditioning window (visage.model.features.windows)
SAMPLES_PER_WINDOW = 25  # 5 per second
MAX_SAMPLES = 2000  # a 2-hour strip still samples in a few seconds

Camera = TypeVar("Camera")


class SamplePoint(NamedTuple):
    hold_frame: int  # the sample's time on the curve: it holds from this scene frame
    eval_frame: float  # where the camera is evaluated: the middle of the frames it holds (a subframe)


def plan_samples(first: int, end: int, scene_rate: Fraction) -> list[SamplePoint]:
    """Sample points covering scene frames ``[first, end)``.

    Raises:
        ValueError: no frames, or a rate that is not positive.
    """
    frames = end - first
    if frames <= 0 or scene_rate <= 0:
        raise ValueError(f"nothing to sample: frames {first}..{end} at {scene_rate} fps")
    step = max(
        1, math.floor(MODEL_WINDOW_S * scene_rate / SAMPLES_PER_WINDOW), math.ceil(frames / MAX_SAMPLES)
    )
    return [SamplePoint(hold, hold + (min(step, end - hold) - 1) / 2) for hold in range(first, end, step)]


def marker_camera(markers: Sequence[tuple[int, Camera]], frame: int) -> Camera | None:
    """The camera Blender's camera-switching markers make active at ``frame``, None without any.

    ``markers`` are (frame, camera) of the markers bound to a camera that renders. The rule is
    ``BKE_scene_camera_switch_find``: the last marker at or before the frame; before every marker, the
    left-most one's camera (the first listed on a tie, as Blender walks its marker list).
    """
    at_or_before = [(marker_frame, i) for i, (marker_frame, _) in enumerate(markers) if marker_frame <= frame]
    if at_or_before:
        latest = max(at_or_before, key=lambda found: (found[0], -found[1]))
        return markers[latest[1]][1]
    if not markers:
        return None
    earliest = min(range(len(markers)), key=lambda i: (markers[i][0], i))
    return markers[earliest][1]
