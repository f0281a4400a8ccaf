"""Finding shot media: references as written (URLs with spaces or percent-encoding, relative paths),
then names under media roots (exact, by stem, ignoring case), and a message saying what was tried."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentimelineio.opentime import RationalTime

from visage.bridge.fill.media_relink import MediaFinder, MediaNotFound
from visage.bridge.fill.media_timecode import read_start_timecode, timecode_origin
from visage.bridge.fill.otio_shots import MediaHint


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _hint(target: str | None = None, *names: str) -> MediaHint:
    return MediaHint("external" if target else "missing", target, names, None)


def test_references_as_written(tmp_path: Path) -> None:
    spaced = _touch(tmp_path / "my media" / "take 1.mov")
    finder = MediaFinder(tmp_path)
    assert finder.find(_hint(f"file://{spaced.as_posix()}")) == spaced  # bare spaces
    encoded = "file://localhost" + spaced.as_posix().replace(" ", "%20")
    assert finder.find(_hint(encoded)) == spaced
    assert finder.find(_hint(str(spaced))) == spaced  # a plain path
    assert finder.find(_hint("my media/take 1.mov")) == spaced  # relative to the edit's folder


def test_names_under_media_roots(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    cam = _touch(root / "A001" / "clip_A.MOV")
    exact = _touch(root / "card" / "reel.mxf")
    _touch(root / "card" / "clip_A.json")  # not a video: never matched by stem
    finder = MediaFinder(tmp_path / "edits", [root])
    assert finder.find(_hint("file:///elsewhere/reel.mxf", "reel.mxf")) == exact  # absent: by base name
    assert finder.find(_hint(None, "clip_A")) == cam  # stem of a video file
    assert finder.find(_hint(None, "CLIP_a.mov")) == cam  # ignoring case
    assert finder.find(_hint(None, "missing", "clip_A")) == cam  # later names are tried too


def test_not_found_says_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound, match=r"reference '/x/y.mov' and names 'y.mov', 'shot 1'"):
        MediaFinder(tmp_path).find(_hint("/x/y.mov", "y.mov", "shot 1"))
    with pytest.raises(MediaNotFound, match="names no media"):
        MediaFinder(tmp_path).find(_hint())


def test_timecodes(tmp_path: Path) -> None:
    assert timecode_origin("01:00:00:00", 24) == RationalTime(86400, 24)
    assert timecode_origin("01:00:00;00", 30000 / 1001) == RationalTime(107892, 30000 / 1001)  # drop frame
    assert read_start_timecode(_touch(tmp_path / "empty.mov")) is None  # unreadable: the generator reports


def test_timecodes_at_rounded_ntsc_rates() -> None:
    # 23.976 and 29.97 as written in edits stand for 24000/1001 and 30000/1001; OTIO's parser refuses them
    assert timecode_origin("01:00:00:00", 23.976) == RationalTime(86400, 23.976)
    assert timecode_origin("01:00:00;00", 29.97) == RationalTime(107892, 29.97)
    with pytest.raises(ValueError, match="start timecode 01:00:00:00 at 15 fps"):
        timecode_origin("01:00:00:00", 15)  # not a SMPTE rate: the message says which timecode and rate
