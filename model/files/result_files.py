"""The result-file contract: the names, keys and formats that the model, the daemon and the hosts share.

Why one module: a result is written by the model's pipeline (or the daemon's fake engine), copied by the
daemon's result cache and read by the host plugins and the delivery commands; each used to spell these
facts itself, and they drifted (``OUT.json`` next to ``OUT.wav.json``; yaw in (-180, 180] next to
[-180, 180)). It owns:

* the JSON **sidecar** of an audio file, ``OUT.wav`` -> ``OUT.wav.json``, and the keys it holds;
* the **binaural preview**, ``OUT.wav`` -> ``OUT.binaural.wav``, named in the result's sidecar under
  ``"preview"`` relative to the sidecar's folder;
* **direction-curve files**: JSON ``{"time": [...], "yaw": [...], "pitch": [...]}`` or CSV with the
  header ``time,yaw,pitch``; seconds on the media's own timeline, strictly increasing; yaw in degrees,
  positive left; pitch in [-90, 90] degrees, positive up;
* the **yaw convention**: every yaw the project reports lies in [-180, 180) (the OSC wire's interval).

Standard library only, with one sibling (``output_files``, the atomic writer): the daemon imports it when
it starts and the Blender extension vendors a byte-equal copy (``host_plugins/install.py``). Bump
``CONTRACT_VERSION`` on any change a reader of old files would notice.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from .output_files import atomic_write_bytes

CONTRACT_VERSION = 1

# --- file names -------------------------------------------------------------------------------------
SIDECAR_SUFFIX = ".json"  # appended to the audio file's whole name: OUT.wav -> OUT.wav.json
PREVIEW_SUFFIX = ".binaural.wav"  # replaces the result's suffix: OUT.wav -> OUT.binaural.wav

# --- sidecar keys -----------------------------------------------------------------------------------
# What the audio file is; every sidecar has these.
FORMAT_KEY = "format"  # "AmbiX" for a result, "binaural" for a preview
CHANNELS_KEY = "channels"  # channel names in file order
FILE_KEY = "file"  # the audio file's name, relative to the sidecar's folder
SAMPLE_RATE_KEY = "sample_rate"  # Hz
NUM_FRAMES_KEY = "num_frames"  # samples per channel
# The AmbiX layout of a result (values in AMBIX_LAYOUT) and its sample format.
ORDER_KEY = "order"
CHANNEL_ORDER_KEY = "channel_order"
NORMALIZATION_KEY = "normalization"
SUBTYPE_KEY = "subtype"  # soundfile's name: "PCM_16", "PCM_24", "FLOAT"
# How the model's pipeline made a result.
GENERATOR_KEY = "generator"  # "visage <version>"
CREATED_KEY = "created"  # ISO 8601, UTC
SOURCE_KEY = "source"  # result: {"media", "size_bytes", "modified"}; preview: the result's absolute path
RANGE_KEY = "range"  # {"start_s", "end_s", "duration_s", "samples"}, media seconds
RANGE_START_KEY = "start_s"  # where in the media the audio's first sample belongs
DIRECTION_KEY = "direction"  # {"yaw_deg", "pitch_deg"} or {"curve": true, "samples"}; + "per_window"
DIRECTION_CURVE_KEY = "curve"
DIRECTION_YAW_KEY = "yaw_deg"
DIRECTION_PITCH_KEY = "pitch_deg"
MODEL_KEY = "model"  # {"checkpoint", "dtype", "device", "fast": null, "bf16" or "int8"}
GUIDANCE_KEY = "guidance"  # pipeline: {"mode", "scale", "direction_scale"}; fake engine: the scale
SAMPLING_KEY = "sampling"  # {"seed", "top_k", "temperature"}
WINDOWS_KEY = "windows"  # number of generation windows
LOUDNESS_KEY = "loudness"  # measured loudness, or null without pyloudnorm
LOUDNESS_NORMALIZATION_KEY = "loudness_normalization"  # only when asked: {"target_lufs", "gain_db"}
REQUEST_KEY = "request"  # only when the caller passed metadata: its own keys
PREVIEW_KEY = "preview"  # only with a preview: its file name, relative to the sidecar's folder
# Only for a 360° video, or a 2:1 one read as flat: how the video was read. {"projection":
# "equirectangular" or "flat", "sound_field": which way the result's front is, "note": why a 2:1 frame
# was read as flat, "saved_views": the --save-view file} and for 360°: {"detected_by": "sv3d", "uuid",
# "matroska" or "--equirect", "pose_yaw_deg", "look": null or "auto", "views": per window
# [{"start_s", "yaw_deg", "pitch_deg" (the panorama direction rendered), "looked": chosen by look}]}.
INPUT_KEY = "input"
# A preview's own sidecar (besides FORMAT, CHANNELS, FILE, SOURCE, SAMPLE_RATE, NUM_FRAMES, LOUDNESS).
LISTENER_KEY = "listener"  # {"yaw_deg", "pitch_deg"} the listener faces
HRTF_KEY = "hrtf"  # the analytic head's description or the SOFA file's path
GAIN_DB_KEY = "gain_db"  # applied to avoid clipping (0 or negative)
# What the daemon's fake engine records instead of the pipeline's provenance: the job, flat.
MODEL_ID_KEY = "model_id"
MEDIA_KEY = "media"
START_KEY = "start"
END_KEY = "end"
YAW_KEY = "yaw"
PITCH_KEY = "pitch"
SEED_KEY = "seed"
DURATION_KEY = "duration_s"

AMBIX_LAYOUT: Mapping[str, Any] = MappingProxyType(
    {
        FORMAT_KEY: "AmbiX",
        ORDER_KEY: 1,
        CHANNEL_ORDER_KEY: "ACN",
        NORMALIZATION_KEY: "SN3D",
        CHANNELS_KEY: ("W", "Y", "Z", "X"),
    }
)
"""The layout facts every AmbiX result's sidecar holds, with their values."""

RESULT_KEYS = frozenset({*AMBIX_LAYOUT, FILE_KEY, SAMPLE_RATE_KEY, NUM_FRAMES_KEY, SUBTYPE_KEY})
"""Keys of every AmbiX result's sidecar, whoever wrote it."""
GENERATED_KEYS = frozenset(
    {
        GENERATOR_KEY,
        CREATED_KEY,
        SOURCE_KEY,
        RANGE_KEY,
        DIRECTION_KEY,
        MODEL_KEY,
        GUIDANCE_KEY,
        SAMPLING_KEY,
        WINDOWS_KEY,
        LOUDNESS_KEY,
    }
)
"""Keys the model's pipeline adds to a result's sidecar (optional ones: LOUDNESS_NORMALIZATION, REQUEST,
PREVIEW, INPUT)."""
FAKE_ENGINE_KEYS = frozenset(
    {MODEL_ID_KEY, MEDIA_KEY, START_KEY, END_KEY, YAW_KEY, PITCH_KEY, SEED_KEY, GUIDANCE_KEY, DURATION_KEY}
)
"""Keys the daemon's fake engine adds to a result's sidecar."""
PREVIEW_SIDECAR_KEYS = frozenset(
    {
        FORMAT_KEY,
        CHANNELS_KEY,
        FILE_KEY,
        SOURCE_KEY,
        SAMPLE_RATE_KEY,
        NUM_FRAMES_KEY,
        LISTENER_KEY,
        HRTF_KEY,
        GAIN_DB_KEY,
        LOUDNESS_KEY,
    }
)
"""Keys of a binaural preview's sidecar."""

# --- direction curves -------------------------------------------------------------------------------
CURVE_FIELDS = ("time", "yaw", "pitch")  # keys of a JSON curve file; the CSV header, in column order
CURVE_FORMATS = {".json": "json", ".csv": "csv"}  # file suffix (any case) -> format


def sidecar_path(audio: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of an audio file: ``clip.wav`` -> ``clip.wav.json`` (unambiguous per file)."""
    path = Path(audio)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def preview_path(result: str | os.PathLike[str]) -> Path:
    """Where a result's binaural preview goes: ``clip.wav`` -> ``clip.binaural.wav``."""
    path = Path(result)
    return path.with_name(path.stem + PREVIEW_SUFFIX)


def wrap_yaw(yaw_deg: float) -> float:
    """The same azimuth in [-180, 180) degrees; a value already inside comes back unchanged.

    ``math.fmod`` is exact and the one correction by 360 is too (Sterbenz), so the result is exactly
    ``yaw_deg - 360 k``: 180 -> -180, 540 -> -180, -190 -> 170.

    Raises:
        ValueError: ``yaw_deg`` is not finite.
    """
    if -180.0 <= yaw_deg < 180.0:
        return yaw_deg
    if not math.isfinite(yaw_deg):
        raise ValueError(f"yaw must be finite, got {yaw_deg}")
    wrapped = math.fmod(yaw_deg, 360.0)  # (-360, 360), the sign of yaw_deg
    if wrapped >= 180.0:
        return wrapped - 360.0
    if wrapped < -180.0:
        return wrapped + 360.0
    return wrapped


class CurveError(ValueError):
    """Direction-curve samples, text or a file that do not follow the format; names entry and field."""


class CurveColumns(NamedTuple):
    """A direction curve as a file holds it. Shapes: S samples."""

    times_s: tuple[float, ...]  # [S] seconds on the media's timeline, strictly increasing
    yaws_deg: tuple[float, ...]  # [S] degrees, positive left, as written (any range; see wrap_yaw)
    pitches_deg: tuple[float, ...]  # [S] degrees in [-90, 90], positive up


def check_curve(
    times: Iterable[object],
    yaws: Iterable[object],
    pitches: Iterable[object],
    *,
    names: tuple[str, str, str] = CURVE_FIELDS,
    entry: Callable[[int], str] = lambda i: f"sample {i}",
) -> CurveColumns:
    """Check curve samples column by column.

    Args:
        times, yaws, pitches: one number per sample each (bools are not numbers).
        names: what to call the three columns in errors.
        entry: what to call sample ``i`` in errors (a JSON index, a CSV line).

    Raises:
        CurveError: a value that is not a finite number, columns of different lengths, no samples,
            a pitch outside [-90, 90], or times that do not increase strictly.
    """
    columns = []
    for name, values in zip(names, (times, yaws, pitches), strict=True):
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise CurveError(f"{name} must be a sequence of numbers, got {values!r}")
        column = []
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise CurveError(f"{entry(i)}: {name} must be a number, got {value!r}")
            number = float(value)
            if not math.isfinite(number):
                raise CurveError(f"{entry(i)}: {name} must be finite, got {number}")
            column.append(number)
        columns.append(tuple(column))
    lengths = {name: len(column) for name, column in zip(names, columns, strict=True)}
    if len(set(lengths.values())) != 1:
        raise CurveError(f"time, yaw and pitch need one value per sample, got lengths {lengths}")
    if not columns[0]:
        raise CurveError("a direction curve needs at least one sample, got none")
    for i, pitch in enumerate(columns[2]):
        if not -90.0 <= pitch <= 90.0:
            raise CurveError(
                f"{entry(i)}: {names[2]} must lie in [-90, 90] degrees (positive up), got {pitch}"
            )
    times_s = columns[0]
    for i in range(1, len(times_s)):
        if times_s[i] <= times_s[i - 1]:
            raise CurveError(
                f"{entry(i)}: {names[0]} must increase strictly, got {times_s[i]} after {times_s[i - 1]}"
            )
    return CurveColumns(*columns)


def parse_curve(text: str, file_format: str) -> CurveColumns:
    """The checked samples of a curve file's text (``file_format`` "json" or "csv").

    Raises:
        CurveError: naming the field and the entry (JSON index, CSV line) that is wrong.
    """
    if file_format == "json":
        return _parse_json(text)
    if file_format == "csv":
        return _parse_csv(text)
    raise CurveError(f"unknown direction file format {file_format!r}; expected 'json' or 'csv'")


def format_curve(curve: CurveColumns, file_format: str) -> str:
    """The text of a curve file (``file_format`` "json" or "csv"); floats are written exactly (repr)."""
    columns = [[float(v) for v in column] for column in curve]
    if file_format == "json":
        return json.dumps(dict(zip(CURVE_FIELDS, columns, strict=True)), indent=1) + "\n"
    if file_format == "csv":
        rows = (",".join(repr(v) for v in row) for row in zip(*columns, strict=True))
        return "\n".join([",".join(CURVE_FIELDS), *rows]) + "\n"
    raise CurveError(f"unknown direction file format {file_format!r}; expected 'json' or 'csv'")


def curve_format(path: str | os.PathLike[str]) -> str:
    """The format a curve file's suffix names ("json" or "csv").

    Raises:
        CurveError: another suffix; the message starts with the path.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CURVE_FORMATS:
        raise CurveError(f"{path}: direction files must end in .json or .csv, got {suffix or 'no suffix'!r}")
    return CURVE_FORMATS[suffix]


def read_curve_file(path: str | os.PathLike[str]) -> CurveColumns:
    """The checked samples of a ``.json`` or ``.csv`` curve file.

    Raises:
        CurveError: missing file, unknown suffix or bad content; the message starts with the path.
    """
    file_format = curve_format(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CurveError(f"{path}: direction file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CurveError(f"{path}: cannot read the direction file: {error}") from None
    try:
        return parse_curve(text, file_format)
    except CurveError as error:
        raise CurveError(f"{path}: {error}") from None


def write_curve_file(path: str | os.PathLike[str], curve: CurveColumns, *, overwrite: bool = False) -> Path:
    """Write a curve file atomically, in the format its suffix names; returns its path.

    Raises:
        CurveError: unknown suffix.
        FileExistsError: the file exists and ``overwrite`` is false.
    """
    text = format_curve(curve, curve_format(path))
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
    return Path(path)


def _parse_json(text: str) -> CurveColumns:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CurveError(f"not valid JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != set(CURVE_FIELDS):
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise CurveError(f'expected an object with exactly the keys "time", "yaw", "pitch", got {found}')
    for name in CURVE_FIELDS:
        if not isinstance(document[name], list):
            raise CurveError(f'"{name}" must be a list of numbers, got {type(document[name]).__name__}')
    return check_curve(*(document[name] for name in CURVE_FIELDS), entry=lambda i: f"index {i}")


def _parse_csv(text: str) -> CurveColumns:
    text = text.removeprefix("\ufeff")  # spreadsheet programs start UTF-8 CSV with a byte-order mark
    rows = [(line, row) for line, row in enumerate(csv.reader(io.StringIO(text)), start=1) if row]
    if not rows:
        raise CurveError(f"empty file; expected the header {','.join(CURVE_FIELDS)} and one row per sample")
    header = [name.strip() for name in rows[0][1]]
    if header != list(CURVE_FIELDS):
        raise CurveError(f"expected the header {','.join(CURVE_FIELDS)}, got {','.join(header)}")
    columns: list[list[float]] = [[], [], []]
    for line, row in rows[1:]:
        if len(row) != len(CURVE_FIELDS):
            raise CurveError(f"line {line}: expected {len(CURVE_FIELDS)} values (time,yaw,pitch), got {row}")
        for column, name, cell in zip(columns, CURVE_FIELDS, row, strict=True):
            try:
                column.append(float(cell))
            except ValueError:
                raise CurveError(f"line {line}, {name}: {cell.strip()!r} is not a number") from None
    lines = [line for line, _ in rows[1:]]
    return check_curve(*columns, entry=lambda i: f"line {lines[i]}")
