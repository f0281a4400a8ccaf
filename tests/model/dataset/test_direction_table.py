"""Clip tables and direction files (the YT-Ambigen layout): official vectors, and errors with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from visage.model.dataset.direction_table import (
    ClipDirection,
    ClipTableError,
    read_clip_table,
    read_direction_file,
)
from visage.model.features.direction import CameraDirection, dataset_units_to_vector, model_direction_vector


def test_units_give_the_official_vectors_bit_for_bit(tmp_path: Path) -> None:
    (tmp_path / "ambi.json").write_text(json.dumps({"clipA": [20, 100], "clipB": [45, 170]}))
    (tmp_path / "clips.csv").write_text("id,split\nclipA,train\nclipB,val\n")
    rows = read_clip_table(tmp_path / "clips.csv", tmp_path / "ambi.json")
    assert [r.id for r in rows] == ["clipA", "clipB"] and rows[1].split == "val"
    assert rows[0].video == tmp_path / "clipA.mp4" and rows[0].audio == rows[0].video
    np.testing.assert_array_equal(rows[0].direction.vector, dataset_units_to_vector(20, 100))
    np.testing.assert_array_equal(
        rows[1].direction.vector_rotated, dataset_units_to_vector(45, 170, augment=True)
    )


def test_degrees_rotate_the_camera_by_minus_90() -> None:
    d = ClipDirection.from_camera(CameraDirection(30.0, 10.0))
    np.testing.assert_allclose(d.vector_rotated, model_direction_vector(CameraDirection(-60.0, 10.0)))
    # The same rule as the official augmentation (a + 45 units = alpha + 90 = yaw - 90).
    units = ClipDirection.from_units(30, 60)
    np.testing.assert_allclose(
        ClipDirection.from_camera(units.camera).vector_rotated, units.vector_rotated, atol=1e-6
    )


def test_directions_in_the_csv(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,video,audio,yaw,pitch\na,v/a.mp4,s/a.wav,-20,5\nb,,,10,0\n")
    a, b = read_clip_table(tmp_path / "t.csv")
    assert a.video == tmp_path / "v/a.mp4" and a.audio == tmp_path / "s/a.wav"
    assert a.direction.camera == CameraDirection(-20, 5) and b.direction.camera == CameraDirection(10, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nx\n", "no 'id' column"),
        ("id,yaw,pitch\na,1,2\na,3,4\n", "line 3: duplicate id a"),
        ("id\na\n", "line 2: no direction"),
        ("id,yaw,pitch\na,1,95\n", "line 2: bad direction"),
        ("id,elevation_units,azimuth_units\na,10,400\n", "line 2: bad direction"),
        ("id,yaw,pitch,split\na,1,2,test\n", "line 2: split"),
        ("", "no clips"),
    ],
)
def test_bad_tables_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(ClipTableError, match=message):
        read_clip_table(tmp_path / "t.csv")


def test_bad_direction_files(tmp_path: Path) -> None:
    with pytest.raises(ClipTableError, match="direction file not found"):
        read_direction_file(tmp_path / "none.json")
    (tmp_path / "d.json").write_text(json.dumps({"a": [1]}))
    with pytest.raises(ClipTableError, match="a: expected"):
        read_direction_file(tmp_path / "d.json")
    (tmp_path / "t.csv").write_text("id\nb\n")
    (tmp_path / "d.json").write_text(json.dumps({"a": [1, 2]}))
    with pytest.raises(ClipTableError, match="clip b is not in the direction file"):
        read_clip_table(tmp_path / "t.csv", tmp_path / "d.json")
