"""The tiny-random bundle appears at its path whole or not at all, even when another process builds it at
the same time (Ray actors that find an empty cache together)."""

from __future__ import annotations

from pathlib import Path

import pytest

import visage.model.audio.codec as codec
from visage.model.inference.tiny_random_bundle import tiny_random_folder


def test_a_bundle_being_built_is_invisible_and_a_concurrent_build_leaves_one_whole_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "cache" / "tiny-random-v1"
    build_dac = codec.build_tiny_random_dac
    seen: dict[str, object] = {}

    def dac_while_another_process_builds(path: Path, seed: int = 0) -> Path:
        if not seen:  # the first builder, half way: nothing at the bundle's path yet
            seen["visible_half_way"] = base.exists()
            seen["other"] = tiny_random_folder(base)  # a second builder starts and finishes meanwhile
            seen["other_files"] = sorted(p.relative_to(base).as_posix() for p in base.rglob("*"))
        return build_dac(path, seed)

    monkeypatch.setattr(codec, "build_tiny_random_dac", dac_while_another_process_builds)
    assert tiny_random_folder(base) == base
    assert seen["visible_half_way"] is False and seen["other"] == base
    files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*"))
    assert files == seen["other_files"] and {"complete", "dac.pth"} <= set(files)
    assert [p.name for p in base.parent.iterdir()] == ["tiny-random-v1"]  # no temporary copies left


def test_an_interrupted_build_leaves_nothing_that_looks_like_a_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "tiny-random-v1"

    def fails(path: Path, seed: int = 0) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(codec, "build_tiny_random_dac", fails)
    with pytest.raises(KeyboardInterrupt):
        tiny_random_folder(base)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    partial = base / "visage"  # what an interrupted build of the earlier version left in place
    partial.mkdir(parents=True)
    assert (tiny_random_folder(base) / "complete").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-random-v1"]
