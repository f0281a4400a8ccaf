"""Direction curves as hosts write them: samples, the file format, a mean direction, text directives.

The file format is the project's (``visage.model.features.direction``, which hosts may not import because it
pulls numpy/torch): JSON ``{"time": [...], "yaw": [...], "pitch": [...]}`` or CSV with the header
``time,yaw,pitch``; times in seconds on the media's own timeline, strictly increasing; yaw in degrees,
positive left; pitch in [-90, 90], positive up. Each sample holds until the next one (sample-and-hold),
so a sample equal to its predecessor carries no information and is dropped.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

CURVE_FIELDS = ("time", "yaw", "pitch")
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"
_YAW = re.compile(rf"\b(?:yaw|azimuth|azi)\s*[=:]\s*{_NUMBER}", re.IGNORECASE)
_PITCH = re.compile(rf"\b(?:pitch|elevation|ele)\s*[=:]\s*{_NUMBER}", re.IGNORECASE)


class CurveError(ValueError):
    """Samples that do not make a direction curve."""


class CurveSample(NamedTuple):
    time_s: float
    yaw_deg: float  # (-180, 180]
    pitch_deg: float  # [-90, 90]


def _wrap(angle: float) -> float:
    wrapped = angle % 360.0
    return wrapped - 360.0 if wrapped > 180.0 else wrapped


def build_curve(samples: Iterable[tuple[float, float, float]]) -> tuple[CurveSample, ...]:
    """Validate (time, yaw, pitch) samples, wrap yaw, and drop repeats of the held direction.

    Raises:
        CurveError: no samples, a non-finite value, pitch outside [-90, 90], times not increasing.
    """
    out: list[CurveSample] = []
    last_time: float | None = None
    for i, (time_s, yaw, pitch) in enumerate(samples):
        values = (float(time_s), float(yaw), float(pitch))
        if not all(math.isfinite(v) for v in values):
            raise CurveError(f"sample {i}: values must be finite, got {values}")
        if not -90.0 <= values[2] <= 90.0:
            raise CurveError(f"sample {i}: pitch must lie in [-90, 90], got {values[2]}")
        if last_time is not None and values[0] <= last_time:
            raise CurveError(f"sample {i}: time must increase strictly, got {values[0]} after {last_time}")
        last_time = values[0]
        sample = CurveSample(values[0], _wrap(values[1]), values[2])
        if out and (out[-1].yaw_deg, out[-1].pitch_deg) == (sample.yaw_deg, sample.pitch_deg):
            continue
        out.append(sample)
    if not out:
        raise CurveError("a direction curve needs at least one sample")
    return tuple(out)


def format_curve(samples: Sequence[CurveSample], file_format: str = "json") -> str:
    """The text of a curve file (``"json"`` or ``"csv"``); floats are written with repr (exact)."""
    columns = [list(column) for column in zip(*samples, strict=True)] if samples else [[], [], []]
    if file_format == "json":
        return json.dumps(dict(zip(CURVE_FIELDS, columns, strict=True)), indent=1) + "\n"
    if file_format == "csv":
        rows = (",".join(repr(float(v)) for v in sample) for sample in samples)
        return "\n".join([",".join(CURVE_FIELDS), *rows]) + "\n"
    raise CurveError(f"unknown curve format {file_format!r}; expected 'json' or 'csv'")


def write_curve(path: str | Path, samples: Sequence[CurveSample]) -> Path:
    """Write a curve file atomically (temp file + rename); the suffix (.json/.csv) picks the format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise CurveError(f"{path}: curve files end in .json or .csv")
    text = format_curve(samples, suffix[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


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
    return _wrap(math.degrees(math.atan2(sin_sum, cos_sum))), pitch


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
    return (_wrap(float(yaw.group(1))) if yaw else 0.0), pitch_deg
