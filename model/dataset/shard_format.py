"""The on-disk training dataset: a versioned JSON manifest and safetensors shards of per-clip features.

Layout of a dataset folder::

    manifest.json          format, version, the settings the features were made with, one row per clip,
                           and the clips that failed (with the reason)
    shard-00000.safetensors  per clip ``<id>/clip`` [F, 512] float16 CLIP frame embeddings,
                           ``<id>/energy`` [F, 49] float32 patch energy maps, ``<id>/codes`` [T, K] int16
                           codec codes and ``<id>/codes_rotated`` [T, K] int16 codes of the sound field
                           turned by the rotation augmentation (spec §6.2)
    views/<id>.mp4         the rendered field-of-view clip (optional)

Every file is written to a temporary name and renamed, and the manifest is rewritten after each shard,
so an interrupted build leaves a consistent dataset that the next run extends. CLIP features are float16
as in the official preprocessing (spec §7.2); codes fit int16 (cardinality <= 32768).

Dimension letters: F CLIP frames, P = 49 patches, T code frames, K code rows (9 x channel + codebook).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from visage.model.files.output_files import atomic_output

FORMAT_NAME = "visage-dataset"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val")
TENSOR_NAMES = ("clip", "energy", "codes", "codes_rotated")


class DatasetFormatError(ValueError):
    """A manifest or shard that does not follow this format; names the file and the row."""


class ClipTensors(NamedTuple):
    """Precomputed inputs of one clip.

    Attributes:
        clip: [F, 512] CLIP frame embeddings.
        energy: [F, 49] patch energy maps.
        codes: [T, K] codec codes of the AmbiX audio.
        codes_rotated: [T, K] codes of the audio after the augmentation's rotation.
    """

    clip: torch.Tensor
    energy: torch.Tensor
    codes: torch.Tensor
    codes_rotated: torch.Tensor


@dataclass(frozen=True)
class ClipRecord:
    """One clip of the manifest.

    Attributes:
        id: unique name (``<recording>_<start second>`` for clips cut here).
        shard: shard file holding its tensors.
        source: the recording or field-of-view video it came from.
        start_s: start in the source, seconds.
        duration_s: length, seconds.
        yaw_deg, pitch_deg: camera direction (AmbiX degrees).
        direction: [3] model direction vector (float32 values).
        direction_rotated: [3] the vector after the rotation augmentation's camera shift.
        clip_frames: F.
        code_frames: T.
        split: "train" or "val".
    """

    id: str
    shard: str
    source: str
    start_s: float
    duration_s: float
    yaw_deg: float
    pitch_deg: float
    direction: tuple[float, float, float]
    direction_rotated: tuple[float, float, float]
    clip_frames: int
    code_frames: int
    split: str


@dataclass(frozen=True)
class Failure:
    """A clip (or a whole source, ``clip`` = None) that could not be built, and why."""

    source: str
    clip: str | None
    error: str


@dataclass(frozen=True)
class DatasetSettings:
    """What the features were computed with; a resumed build must use the same.

    Attributes:
        clip_seconds: clip length.
        clip_frame_rate: CLIP frames per second.
        sample_rate: codec sample rate.
        num_code_rows: K.
        cardinality: codes per codebook.
        clip_model: CLIP weights used (hub id or folder).
        codec: codec weights used (file or description).
        fov_deg, view_size: field-of-view rendering of 360° recordings.
    """

    clip_seconds: float
    clip_frame_rate: int
    sample_rate: int
    num_code_rows: int
    cardinality: int
    clip_model: str
    codec: str
    fov_deg: float = 90.0
    view_size: int = 224


@dataclass
class Manifest:
    """The dataset's table of contents."""

    settings: DatasetSettings
    clips: list[ClipRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def split(self, name: str) -> list[ClipRecord]:
        """The clips of one split, in manifest order."""
        return [c for c in self.clips if c.split == name]

    def to_json(self) -> str:
        data = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "settings": dataclasses.asdict(self.settings),
            "clips": [dataclasses.asdict(c) for c in self.clips],
            "failures": [dataclasses.asdict(f) for f in self.failures],
        }
        return json.dumps(data, indent=1) + "\n"

    def write(self, folder: str | Path) -> Path:
        """Write ``manifest.json`` into ``folder`` atomically."""
        path = Path(folder) / MANIFEST_NAME
        with atomic_output(path, overwrite=True) as tmp:  # rewritten after every shard
            tmp.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """Read and validate ``folder/manifest.json``.

        Raises:
            FileNotFoundError: no manifest there.
            DatasetFormatError: wrong format or version, or a bad row (named by index and id).
        """
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no dataset manifest (build one with `visage dataset build`)"
            ) from None
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise DatasetFormatError(f"{path}: not a {FORMAT_NAME} manifest")
        if data.get("version") != FORMAT_VERSION:
            raise DatasetFormatError(
                f"{path}: manifest version {data.get('version')!r}; "
                f"this program reads version {FORMAT_VERSION}"
            )
        settings = _build(DatasetSettings, data.get("settings"), f"{path}: settings")
        clips = [_clip(row, f"{path}: clips[{i}]") for i, row in enumerate(_list(data, "clips", path))]
        failures = [
            _build(Failure, row, f"{path}: failures[{i}]")
            for i, row in enumerate(_list(data, "failures", path))
        ]
        seen: set[str] = set()
        for i, c in enumerate(clips):
            if c.id in seen:
                raise DatasetFormatError(f"{path}: clips[{i}] ({c.id}): duplicate clip id")
            seen.add(c.id)
        return cls(settings, clips, failures)


def _list(data: dict[str, Any], key: str, path: Path) -> list[Any]:
    rows = data.get(key, [])
    if not isinstance(rows, list):
        raise DatasetFormatError(f"{path}: '{key}' must be a list")
    return rows


def _build(cls: Any, row: Any, where: str) -> Any:
    if not isinstance(row, dict):
        raise DatasetFormatError(f"{where}: expected an object, got {type(row).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    missing, unknown = sorted(required - set(row)), sorted(set(row) - names)
    if missing or unknown:
        raise DatasetFormatError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    return cls(**row)


def _clip(row: Any, where: str) -> ClipRecord:
    record = _build(ClipRecord, row, where)
    where = f"{where} ({record.id})"
    for name in ("direction", "direction_rotated"):
        value = getattr(record, name)
        if not (
            isinstance(value, list | tuple)
            and len(value) == 3
            and all(isinstance(v, int | float) for v in value)
        ):
            raise DatasetFormatError(f"{where}: {name} must be 3 numbers, got {value!r}")
    for name in ("clip_frames", "code_frames"):
        if not isinstance(getattr(record, name), int) or getattr(record, name) < 1:
            raise DatasetFormatError(f"{where}: {name} must be a positive integer")
    if record.split not in SPLITS:
        raise DatasetFormatError(f"{where}: split must be one of {SPLITS}, got {record.split!r}")
    return dataclasses.replace(
        record, direction=tuple(record.direction), direction_rotated=tuple(record.direction_rotated)
    )


def write_shard(path: str | Path, clips: dict[str, ClipTensors]) -> Path:
    """Write the tensors of several clips into one safetensors shard, atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for clip_id, t in clips.items():
        tensors[f"{clip_id}/clip"] = t.clip.to(torch.float16).contiguous()
        tensors[f"{clip_id}/energy"] = t.energy.to(torch.float32).contiguous()
        tensors[f"{clip_id}/codes"] = t.codes.to(torch.int16).contiguous()
        tensors[f"{clip_id}/codes_rotated"] = t.codes_rotated.to(torch.int16).contiguous()
    path = Path(path)
    with atomic_output(path, overwrite=True) as tmp:  # one the manifest does not list yet is written again
        save_file(tensors, str(tmp), metadata={"format": FORMAT_NAME})
    return path


class ShardReader:
    """Reads clips from a dataset's shards lazily (memory-mapped), keeping shards open."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._open: dict[str, Any] = {}

    def read(self, record: ClipRecord) -> ClipTensors:
        """The tensors of one clip, checked against its manifest row.

        Raises:
            DatasetFormatError: missing shard or tensor, or shapes that disagree with the manifest.
        """
        from safetensors import safe_open

        path = self.folder / record.shard
        handle = self._open.get(record.shard)
        if handle is None:
            if not path.is_file():
                raise DatasetFormatError(f"{path}: shard of clip {record.id} is missing")
            handle = self._open[record.shard] = safe_open(str(path), framework="pt")
        try:
            t = ClipTensors(*(handle.get_tensor(f"{record.id}/{name}") for name in TENSOR_NAMES))
        except Exception as exc:  # safetensors raises its own error types for unknown keys
            raise DatasetFormatError(f"{path}: clip {record.id} is not in this shard ({exc})") from None
        f, t_frames = record.clip_frames, record.code_frames
        if t.clip.shape[0] != f or t.energy.shape[0] != f or t.codes.shape[0] != t_frames:
            raise DatasetFormatError(
                f"{path}: clip {record.id} has {t.clip.shape[0]} CLIP / {t.energy.shape[0]} energy frames "
                f"and "
                f"{t.codes.shape[0]} code frames; the manifest says {f} and {t_frames}"
            )
        if t.codes.shape != t.codes_rotated.shape:
            raise DatasetFormatError(
                f"{path}: clip {record.id}: rotated codes differ in shape from the codes"
            )
        return t
