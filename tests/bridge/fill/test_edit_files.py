"""Editorial files: reading by suffix (with the EDL rate), atomic writes, refusing to overwrite, probing."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from visage.bridge.fill.edit_files import EditFileError, check_writable, probe_write, read_edit, write_edit


def _timeline() -> otio.schema.Timeline:
    clip = otio.schema.Clip(
        name="a",
        media_reference=otio.schema.ExternalReference(
            "file:///nowhere/a.mov", TimeRange(RationalTime(0, 24), RationalTime(48, 24))
        ),
        source_range=TimeRange(RationalTime(0, 24), RationalTime(24, 24)),
    )
    return otio.schema.Timeline(name="t", tracks=[otio.schema.Track(children=[clip])])


def test_edl_rate(otio_samples_dir: Path) -> None:
    edl = otio_samples_dir / "25fps.edl"
    with pytest.raises(EditFileError, match="cannot read as cmx_3600"):
        read_edit(edl)  # frame 24 does not exist at the default 24 fps
    assert read_edit(edl, rate=25).duration() == RationalTime(496, 25)


def test_edl_rate_written_rounded(otio_samples_dir: Path) -> None:
    timeline = read_edit(otio_samples_dir / "gap_test.edl", rate=23.976)  # --rate 23.976, as people type it
    clip = next(iter(timeline.find_clips()))
    assert clip.source_range == TimeRange(RationalTime(14400, 24000 / 1001), RationalTime(24, 24000 / 1001))


@pytest.mark.parametrize("suffix", [".otio", ".otioz", ".otiod", ".xml"])
def test_atomic_writes_and_force(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"cut{suffix}"
    write_edit(_timeline(), out)
    with pytest.raises(EditFileError, match="exists; use --force"):
        write_edit(_timeline(), out)
    changed = _timeline()
    changed.name = "second"
    write_edit(changed, out, force=True)  # the bundle writers refuse existing files; we replace them
    assert read_edit(out).name == "second"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_a_file_made_while_writing_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --force the check before the work is repeated, race-free, when the edit is renamed in."""
    out = tmp_path / "cut.otio"
    real_write = otio.adapters.write_to_file

    def write_and_race(timeline: otio.schema.Timeline, filepath: str, **kwargs: object) -> None:
        real_write(timeline, filepath, **kwargs)
        out.write_text("the user's edit")  # appears after check_writable, before the rename

    monkeypatch.setattr(otio.adapters, "write_to_file", write_and_race)
    with pytest.raises(EditFileError, match="exists; use --force"):
        write_edit(_timeline(), out)
    assert out.read_text() == "the user's edit"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(EditFileError, match="no installed OpenTimelineIO adapter for .doc"):
        check_writable(tmp_path / "cut.doc", force=False)
    with pytest.raises(EditFileError, match="does not exist"):
        check_writable(tmp_path / "missing" / "cut.otio", force=False)
    with pytest.raises(EditFileError, match="cannot read as otio_json"):
        (tmp_path / "bad.otio").write_text("{")
        read_edit(tmp_path / "bad.otio")


def test_probe_write_reads_back(tmp_path: Path) -> None:
    assert probe_write(_timeline(), tmp_path / "x.xml").tracks[0].name == ""  # FCP XML drops the name
    assert probe_write(_timeline(), tmp_path / "x.svg") is None  # write-only
    assert list(tmp_path.iterdir()) == []
