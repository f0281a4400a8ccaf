"""Manifest and shards: write -> read round trips, and every malformed file is a clear error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from visage.model.dataset.shard_format import (
    ClipRecord,
    ClipTensors,
    DatasetFormatError,
    DatasetSettings,
    Failure,
    Manifest,
    ShardReader,
    write_shard,
)

SETTINGS = DatasetSettings(5.0, 4, 44100, 36, 1024, "clip", "dac")


def record(clip_id: str = "a_0", **changes: object) -> ClipRecord:
    base = ClipRecord(
        clip_id,
        "shard-00000.safetensors",
        "a.mp4",
        0.0,
        5.0,
        10.0,
        -5.0,
        (0.1, 0.2, 0.9),
        (0.9, 0.2, -0.1),
        20,
        431,
        "train",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def tensors(frames: int = 20, code_frames: int = 431) -> ClipTensors:
    g = torch.Generator().manual_seed(0)
    return ClipTensors(
        torch.randn(frames, 512, generator=g),
        torch.rand(frames, 49, generator=g),
        torch.randint(0, 1024, (code_frames, 36), generator=g),
        torch.randint(0, 1024, (code_frames, 36), generator=g),
    )


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = Manifest(SETTINGS, [record(), record("b_5", split="val")], [Failure("c.mp4", None, "boom")])
    manifest.write(tmp_path)
    again = Manifest.read(tmp_path)
    assert again == manifest
    assert [c.id for c in again.split("val")] == ["b_5"]
    assert json.loads((tmp_path / "manifest.json").read_text())["version"] == 1


def test_shard_round_trip_keeps_values(tmp_path: Path) -> None:
    t = tensors()
    write_shard(tmp_path / "shard-00000.safetensors", {"a_0": t})
    back = ShardReader(tmp_path).read(record())
    assert torch.equal(back.codes.long(), t.codes) and torch.equal(back.codes_rotated.long(), t.codes_rotated)
    assert back.clip.dtype == torch.float16 and torch.allclose(back.clip.float(), t.clip, atol=1e-2)
    assert torch.equal(back.energy, t.energy)


def write_manifest(folder: Path, data: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(data))


def valid_document() -> dict:
    return json.loads(Manifest(SETTINGS, [record()]).to_json())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(format="other"), "not a visage-dataset manifest"),
        (lambda d: d["clips"][0].pop("direction"), r"clips\[0\]: missing fields \['direction'\]"),
        (lambda d: d["clips"][0].update(split="test"), r"clips\[0\] \(a_0\): split"),
        (
            lambda d: d["clips"][0].update(direction=[1, 2]),
            r"clips\[0\] \(a_0\): direction must be 3 numbers",
        ),
        (lambda d: d["clips"].append(dict(d["clips"][0])), r"clips\[1\] \(a_0\): duplicate clip id"),
        (lambda d: d["settings"].update(extra=1), "settings: missing fields"),
    ],
)
def test_bad_manifests_name_the_file_and_row(tmp_path: Path, change, message: str) -> None:
    data = valid_document()
    change(data)
    write_manifest(tmp_path, data)
    with pytest.raises(DatasetFormatError, match=message) as info:
        Manifest.read(tmp_path)
    assert str(tmp_path / "manifest.json") in str(info.value)


def test_missing_and_broken_manifests(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no dataset manifest"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        Manifest.read(tmp_path)


def test_shard_problems_are_clear(tmp_path: Path) -> None:
    reader = ShardReader(tmp_path)
    with pytest.raises(DatasetFormatError, match="shard of clip a_0 is missing"):
        reader.read(record())
    write_shard(tmp_path / "shard-00000.safetensors", {"a_0": tensors(code_frames=400)})
    with pytest.raises(DatasetFormatError, match="400 code frames; the manifest says 20 and 431"):
        reader.read(record())
    with pytest.raises(DatasetFormatError, match="clip b_0 is not in this shard"):
        reader.read(record("b_0"))
