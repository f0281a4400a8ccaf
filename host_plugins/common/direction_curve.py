"""Direction curves as hosts write them: samples, the file format, a mean direction, text directives.

The file format and the yaw interval are the project's result-file contract
(``visage.model.files.result_files``, through ``result_files.contract``): JSON
``{"time": [...], "yaw": [...], "pitch": [...]}`` or CSV with the header ``time,yaw,pitch``; times in
seconds on the media's own timeline, strictly increasing; yaw in degrees, positive left, reported in
[-180, 180); pitch in [-90, 90], positive up. Each sample holds until the next one (sample-and-hold),
so a sample equal to its predecessor carries no information and is dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from .result_files import contract

CURVE_FIELDS = contract.CURVE_FIELDS
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"
_YAW = re.compile(rf"\b(?:yaw|azimuth|azi)\s*[=:]\s*{_NUMBER}", re.IGNORECASE)
_PITCH = re.compile(rf"\b(?:pitch|elevation|ele)\s*[=:]\s*{_NUMBER}", re.IGNORECASE)


CurveError = contract.CurveError  # samples, text or a file that do not make a direction curve


class CurveSample(NamedTuple):
    time_s: float
    yaw_deg: float  # [-180, 180)
    pitch_deg: float  # [-90, 90]


def build_curve(samples: Iterable[tuple[float, float, float]]) -> tuple[CurveSample, ...]:
    """Validate (time, yaw, pitch) samples, wrap yaw, and drop repeats of the held direction.

    Raises:
        CurveError: no samples, a non-finite value, pitch outside [-90, 90], times not increasing.
    """
    rows = list(samples)
    times, yaws, pitches = contract.check_curve(*(zip(*rows, strict=True) if rows else ((), (), ())))
    out: list[CurveSample] = []
    for time_s, yaw, pitch in zip(times, yaws, pitches, strict=True):
        sample = CurveSample(time_s, contract.wrap_yaw(yaw), pitch)
        if out and (out[-1].yaw_deg, out[-1].pitch_deg) == (sample.yaw_deg, sample.pitch_deg):
            continue
        out.append(sample)
    return tuple(out)


def format_curve(samples: Sequence[CurveSample], file_format: str = "json") -> str:
    """The text of a curve file (``"json"`` or ``"csv"``); floats are written with repr (exact)."""
    return contract.format_curve(_columns(samples), file_format)


def write_curve(path: str | Path, samples: Sequence[CurveSample]) -> Path:
    """Write a curve file atomically, replacing it; the suffix (.json/.csv) picks the format."""
    path = Path(path)
    contract.curve_format(path)  # an unknown suffix fails before the folder is made
    path.parent.mkdir(parents=True, exist_ok=True)
    return contract.write_curve_file(path, _columns(samples), overwrite=True)


def _columns(samples: Sequence[CurveSample]) -> contract.CurveColumns:
    columns = tuple(zip(*samples, strict=True)) if samples else ((), (), ())
    return contract.CurveColumns(*columns)


def mean_direction(samples: Sequence[CurveSample], start_s: float, end_s: float) -> tuple[float, float]:
    """Time-weighted mean (yaw, pitch) over ``[start_s, end_s]`` under sample-and-hold.

    Yaw is the circular mean; when the yaws cancel out, the first sample held in the window is used.
    Matches ``visage.model.features.direction.DirectionCurve.mean_over`` (the model's per-window
    conditioning).
    """
    if end_s <= start_s:
        held = [s for s in samples if s.time_s <= start_s]
        chosen = held[-1] if held else samples[0]
        return chosen.yaw_deg, chosen.pitch_deg
    weights = []
    for i, sample in enumerate(samples):
        holds_from = -math.inf if i == 0 else sample.time_s
        holds_until = math.inf if i == len(samples) - 1 else samples[i + 1].time_s
        weights.append(max(0.0, min(end_s, holds_until) - max(start_s, holds_from)))
    total = sum(weights)
    cos_sum = sum(w * math.cos(math.radians(s.yaw_deg)) for w, s in zip(weights, samples, strict=True))
    sin_sum = sum(w * math.sin(math.radians(s.yaw_deg)) for w, s in zip(weights, samples, strict=True))
    pitch = sum(w * s.pitch_deg for w, s in zip(weights, samples, strict=True)) / total
    if math.hypot(cos_sum, sin_sum) < 1e-9 * total:
        first = next(s for w, s in zip(weights, samples, strict=True) if w > 0)
        return first.yaw_deg, pitch
    return contract.wrap_yaw(math.degrees(math.atan2(sin_sum, cos_sum))), pitch


def parse_direction_text(text: str | None) -> tuple[float, float] | None:
    """(yaw, pitch) from free text such as a marker name or note: ``"yaw=30 pitch=-10"``.

    Also accepts ``azimuth``/``azi`` and ``elevation``/``ele``, ``:`` instead of ``=``; a missing pitch
    or yaw is 0. Returns None when the text names neither.
    """
    if not text:
        return None
    yaw, pitch = _YAW.search(text), _PITCH.search(text)
    if yaw is None and pitch is None:
        return None
    pitch_deg = float(pitch.group(1)) if pitch else 0.0
    if not -90.0 <= pitch_deg <= 90.0:
        return None
    return (contract.wrap_yaw(float(yaw.group(1))) if yaw else 0.0), pitch_deg
