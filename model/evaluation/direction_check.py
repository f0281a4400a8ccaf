"""Does the generated sound follow the camera, or its mirror image? (``visage doctor --check-direction``)

The model's direction input (``features/direction.py``, ``model_direction_vector``) was derived from the
dataset code and the rotation augmentation, never tested against the released weights. This check
generates one clip four times, with the camera at yaw +90° and −90° (pitch 0) and at pitch +45° and
−45° (yaw 0), measures where the energy of each result flows from (``ambisonics.active_intensity``),
and compares each pair along its axis (left for yaw, up for pitch, AmbiX). If the sound of what the
camera sees moves the way the camera turns, the convention holds ("follows"); if it moves the other way
it is mirrored; if the two results differ by less than :data:`MIN_SEPARATION` the clip says nothing.

Each result is summarised by its normalised intensity, ``directedness · unit vector`` (the mean
intensity over the mean energy): every component lies in [−1, 1], whatever the loudness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visage.model.audio.ambisonics import ActiveIntensity, active_intensity
from visage.model.features.direction import CameraDirection
from visage.model.files.video_io import probe_video
from visage.model.inference.pipeline import GenerationRequest, VideoToAmbisonics

MIN_SEPARATION = 0.05
"""Smallest half-difference of the two normalised intensities along the axis that counts as a result."""

CLIP_SECONDS = 5.0  # one generation window

# name -> (camera of the positive side, camera of the negative side, axis: 1 = y (left), 2 = z (up))
PAIRS: dict[str, tuple[CameraDirection, CameraDirection, int]] = {
    "yaw": (CameraDirection(90.0, 0.0), CameraDirection(-90.0, 0.0), 1),
    "pitch": (CameraDirection(0.0, 45.0), CameraDirection(0.0, -45.0), 2),
}
VERDICTS = ("follows", "mirrored", "inconclusive")


@dataclass(frozen=True)
class DirectionReading:
    """Where the result for one camera direction points."""

    camera: CameraDirection
    intensity: ActiveIntensity

    @property
    def normalised(self) -> np.ndarray:
        """[3] directedness times the unit vector toward the intensity (x front, y left, z up)."""
        az, el = self.intensity.azimuth, self.intensity.elevation
        unit = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        return self.intensity.directedness * unit


@dataclass(frozen=True)
class PairVerdict:
    """The verdict on one pair: ``separation`` > 0 means the sound moved the way the camera turned."""

    name: str
    verdict: str
    separation: float


@dataclass(frozen=True)
class DirectionReport:
    """Readings of the four runs (yaw +90, yaw −90, pitch +45, pitch −45) and a verdict per pair."""

    checkpoint: str
    video: Path
    start: float
    end: float
    readings: tuple[DirectionReading, ...]
    verdicts: tuple[PairVerdict, ...]


def judge_pair(name: str, positive: DirectionReading, negative: DirectionReading, axis: int) -> PairVerdict:
    """Compare the runs with the camera turned to the positive and negative side of ``axis``.

    Args:
        name: the pair's name, for the report.
        positive: the run with the camera toward +axis (left for yaw +90, up for pitch +45).
        negative: the run with the camera toward −axis.
        axis: 1 for y (left), 2 for z (up).
    """
    separation = float(positive.normalised[axis] - negative.normalised[axis]) / 2
    if separation >= MIN_SEPARATION:
        verdict = "follows"
    elif separation <= -MIN_SEPARATION:
        verdict = "mirrored"
    else:
        verdict = "inconclusive"
    return PairVerdict(name, verdict, separation)


def check_direction(
    pipeline: VideoToAmbisonics, video: str | Path, *, start: float = 0.0, seed: int = 0
) -> DirectionReport:
    """Generate ``video`` from ``start`` (up to 5 s) for the four cameras of :data:`PAIRS`; judge each pair.

    The four requests run as one batch with the same seed, at the codec's rate (no resampling).
    """
    video = Path(video)
    end = min(start + CLIP_SECONDS, probe_video(video).duration)
    cameras = [camera for positive, negative, _ in PAIRS.values() for camera in (positive, negative)]
    requests = [
        GenerationRequest(video, start, end, camera, seed=seed, sample_rate=pipeline.codec.sample_rate)
        for camera in cameras
    ]
    readings = []
    for camera, result in zip(cameras, pipeline.generate(requests), strict=True):
        if isinstance(result, Exception):
            raise result
        readings.append(DirectionReading(camera, active_intensity(result.audio)))
    verdicts = tuple(
        judge_pair(name, readings[2 * i], readings[2 * i + 1], axis)
        for i, (name, (_, _, axis)) in enumerate(PAIRS.items())
    )
    return DirectionReport(pipeline.checkpoint, video, start, end, tuple(readings), verdicts)


def format_direction_report(report: DirectionReport) -> str:
    """Readings and verdicts as text, one line each, and what they mean for the convention."""
    lines = [
        f"direction check: {report.video} [{report.start:g}, {report.end:g}) s, weights {report.checkpoint}"
    ]
    for r in report.readings:
        i = r.intensity
        lines.append(
            f"  camera yaw {r.camera.yaw_deg:+5.0f} pitch {r.camera.pitch_deg:+4.0f}: energy from azimuth "
            f"{math.degrees(i.azimuth):+6.1f}, elevation {math.degrees(i.elevation):+5.1f} "
            f"(directedness {i.directedness:.2f})"
        )
    axes = {"yaw": "left/right", "pitch": "up/down"}
    for v in report.verdicts:
        lines.append(f"  {v.name} ({axes[v.name]}): {v.verdict} (separation {v.separation:+.3f})")
    found = {v.verdict for v in report.verdicts}
    if found == {"follows"}:
        lines.append("the sound follows the camera: the direction convention of model_direction_vector holds")
    elif "mirrored" in found:
        lines.append(
            "MIRRORED: the sound moves against the camera on the axes marked so; the direction vector's "
            "sign for them (features/direction.py, model_direction_vector) is wrong for these weights"
        )
    else:
        lines.append(
            f"inconclusive: the results differ by less than {MIN_SEPARATION} along an axis; "
            "try a clip with a clear sound source in view"
        )
    return "\n".join(lines)
