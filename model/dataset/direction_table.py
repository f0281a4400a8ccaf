"""Tables of already-cropped field-of-view clips and their camera directions (the YT-Ambigen layout).

YT-Ambigen ships its clips as field-of-view videos plus a JSON file (``ambi.json``) that maps each clip
id to ``[e, a]``: the camera direction in the dataset's 2° units (spec §7.6). A clip table here is a CSV
with a header row and one clip per row:

* ``id`` (required): the clip id, also the key of the direction file;
* ``video``: the field-of-view video, relative to the CSV's folder (default ``<id>.mp4``);
* ``audio``: its 4-channel ambisonic audio (default: a file next to the video with the same stem, or
  the video's own audio track);
* ``split``: ``train`` or ``val`` (default: decided by the builder);
* the direction, unless a direction file is given: either ``elevation_units`` and ``azimuth_units``
  (dataset units) or ``yaw`` and ``pitch`` (AmbiX degrees, as everywhere else in this project).

Directions in dataset units give the official model vectors bit for bit
(``direction.dataset_units_to_vector``); degrees go through ``direction.model_direction_vector``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visage.model.features.direction import (
    CameraDirection,
    DirectionError,
    dataset_units_to_camera,
    dataset_units_to_vector,
    model_direction_vector,
)

ROTATION_YAW_DEG = -90.0  # the augmentation turns the camera by -90° of AmbiX yaw (+90° of α)


class ClipTableError(ValueError):
    """A clip table or direction file that cannot be used; names the file and the row."""


@dataclass(frozen=True)
class ClipDirection:
    """A camera direction and the two model vectors the dataset stores for it.

    Attributes:
        camera: AmbiX yaw/pitch in degrees.
        vector: [3] model direction input.
        vector_rotated: [3] model input after the rotation augmentation's camera shift.
    """

    camera: CameraDirection
    vector: tuple[float, float, float]
    vector_rotated: tuple[float, float, float]

    @classmethod
    def from_camera(cls, camera: CameraDirection) -> ClipDirection:
        rotated = CameraDirection(camera.yaw_deg + ROTATION_YAW_DEG, camera.pitch_deg)
        return cls(camera, _floats(model_direction_vector(camera)), _floats(model_direction_vector(rotated)))

    @classmethod
    def from_units(cls, elevation_units: int, azimuth_units: int) -> ClipDirection:
        """The official vectors of dataset units ``(e, a)`` (augmented: ``a + 45``, wrapped)."""
        return cls(
            dataset_units_to_camera(elevation_units, azimuth_units),
            _floats(dataset_units_to_vector(elevation_units, azimuth_units)),
            _floats(dataset_units_to_vector(elevation_units, azimuth_units, augment=True)),
        )


@dataclass(frozen=True)
class TableClip:
    """One row of a clip table, with its files resolved."""

    id: str
    video: Path
    audio: Path
    direction: ClipDirection
    split: str | None


def _floats(vector: np.ndarray) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in vector)
    return x, y, z


def read_direction_file(path: str | Path) -> dict[str, ClipDirection]:
    """An ``ambi.json``-style file: ``{"<id>": [e, a], ...}`` in dataset units.

    Raises:
        ClipTableError: missing file, bad JSON, or a bad entry (named by id).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClipTableError(f"{path}: direction file not found") from None
    except json.JSONDecodeError as exc:
        raise ClipTableError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ClipTableError(f"{path}: expected an object mapping clip ids to [e, a]")
    out = {}
    for clip_id, value in data.items():
        if not (isinstance(value, list) and len(value) == 2):
            raise ClipTableError(
                f"{path}: {clip_id}: expected [elevation_units, azimuth_units], got {value!r}"
            )
        try:
            out[str(clip_id)] = ClipDirection.from_units(*value)
        except DirectionError as exc:
            raise ClipTableError(f"{path}: {clip_id}: {exc}") from None
    return out


def read_clip_table(table: str | Path, directions: str | Path | None = None) -> list[TableClip]:
    """Read a clip table (see the module docstring) and resolve each clip's files and direction.

    Args:
        table: the CSV file.
        directions: an ``ambi.json``-style direction file; without it the CSV carries the directions.

    Raises:
        ClipTableError: missing file or column, a bad value, a duplicate id, a clip without a direction;
            the message names the file and the line.
    """
    table = Path(table)
    try:
        text = table.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ClipTableError(f"{table}: clip table not found") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ClipTableError(f"{table}: no clips (expected a header row with 'id' and one row per clip)")
    header = set(rows[0])
    if "id" not in header:
        raise ClipTableError(f"{table}: the header has no 'id' column (found {sorted(header)})")
    by_id = read_direction_file(directions) if directions is not None else None
    root = table.parent
    out, seen = [], set()
    for line, row in enumerate(rows, start=2):
        where = f"{table}: line {line}"
        clip_id = (row.get("id") or "").strip()
        if not clip_id:
            raise ClipTableError(f"{where}: empty id")
        if clip_id in seen:
            raise ClipTableError(f"{where}: duplicate id {clip_id}")
        seen.add(clip_id)
        if by_id is not None:
            if clip_id not in by_id:
                raise ClipTableError(f"{where}: clip {clip_id} is not in the direction file {directions}")
            direction = by_id[clip_id]
        else:
            direction = _row_direction(row, where)
        video = root / (row.get("video") or f"{clip_id}.mp4").strip()
        audio = root / row["audio"].strip() if row.get("audio") else video
        split = (row.get("split") or "").strip() or None
        if split not in (None, "train", "val"):
            raise ClipTableError(f"{where}: split must be 'train' or 'val', got {split!r}")
        out.append(TableClip(clip_id, video, audio, direction, split))
    return out


def _row_direction(row: dict[str, str], where: str) -> ClipDirection:
    try:
        if row.get("elevation_units") and row.get("azimuth_units"):
            return ClipDirection.from_units(int(row["elevation_units"]), int(row["azimuth_units"]))
        if row.get("yaw") and row.get("pitch"):
            return ClipDirection.from_camera(CameraDirection(float(row["yaw"]), float(row["pitch"])))
    except (ValueError, DirectionError) as exc:
        raise ClipTableError(f"{where}: bad direction ({exc})") from None
    raise ClipTableError(
        f"{where}: no direction: give a direction file, or columns elevation_units,azimuth_units or yaw,pitch"
    )
