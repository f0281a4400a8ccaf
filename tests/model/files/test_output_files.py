"""The one atomic writer: whole files or none, never replacing without ``overwrite``, no temporaries left.

Every guarantee the three former writers (the model's, the bridge's ``atomic_files``, the dataset's
``_atomic_write``) gave is checked here on the merged one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from visage.model.files import output_files
from visage.model.files.output_files import (
    PART_SUFFIX,
    MissingOutputFolderError,
    OutputExistsError,
    UnwritableOutputFolderError,
    atomic_copy,
    atomic_output,
    atomic_write_bytes,
    part_path,
    remove_stale_parts,
)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_whole_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    source = tmp_path / "a.json"
    atomic_copy(source, tmp_path / "b.json")
    with atomic_output(tmp_path / "c.bin") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".c.bin.") and tmp.name.endswith(PART_SUFFIX)
        tmp.write_bytes(b"c")
    assert _names(tmp_path) == ["a.json", "b.json", "c.bin"]
    assert (tmp_path / "b.json").read_bytes() == b"{}" and (tmp_path / "c.bin").read_bytes() == b"c"


def test_never_replaces_without_overwrite(tmp_path: Path) -> None:
    mine = tmp_path / "mine.wav"
    mine.write_bytes(b"the user's")
    with pytest.raises(OutputExistsError, match="mine.wav already exists"):
        atomic_write_bytes(mine, b"ours")
    with pytest.raises(OutputExistsError):
        atomic_copy(mine, mine)
    assert mine.read_bytes() == b"the user's" and _names(tmp_path) == ["mine.wav"]
    atomic_write_bytes(mine, b"ours", overwrite=True)
    assert mine.read_bytes() == b"ours" and _names(tmp_path) == ["mine.wav"]


def test_a_file_made_while_writing_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "race.wav"
    with pytest.raises(OutputExistsError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"ours")
            target.write_bytes(b"someone else's")  # after the check, before the rename
    assert target.read_bytes() == b"someone else's" and _names(tmp_path) == ["race.wav"]


def test_an_error_removes_the_temporary_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "kept.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["kept.json"]


def test_file_and_folder_are_flushed_before_and_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("rename") or real_replace(a, b))
    atomic_write_bytes(tmp_path / "x", b"x", overwrite=True)
    if os.name == "posix" and Path("/proc/self/fd").is_dir():
        assert events == ["fsync file", "rename", "fsync dir"]


def test_permissions_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    atomic_write_bytes(tmp_path / "shared.json", b"{}")
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600


def test_a_missing_or_read_only_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(MissingOutputFolderError, match="missing"):
        atomic_write_bytes(tmp_path / "missing" / "x.json", b"")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("permissions are not enforced for this user")
        with pytest.raises(UnwritableOutputFolderError, match="locked"):
            atomic_write_bytes(locked / "x.json", b"")
    finally:
        locked.chmod(0o755)


def test_stale_temporaries_of_one_file_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "take [1]*.wav"  # glob metacharacters in the name are matched literally
    stale = [part_path(target), part_path(target)]
    for path in stale:
        path.write_bytes(b"partial")
    other = part_path(tmp_path / "take 1.wav")
    other.write_bytes(b"another file's")
    assert remove_stale_parts(target) == 2
    assert _names(tmp_path) == [other.name]
    assert remove_stale_parts(tmp_path / "absent" / "x.wav") == 0


def test_part_path_keeps_the_suffix_when_asked(tmp_path: Path) -> None:
    kept = part_path(tmp_path / "cut.otio", keep_suffix=True)
    assert kept.name.startswith(".cut.otio.") and kept.name.endswith(PART_SUFFIX + ".otio")
    assert part_path(tmp_path / "cut.otio") != part_path(tmp_path / "cut.otio")  # fresh each time
    assert not kept.exists()


def test_the_dataset_writes_with_the_one_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset's shards and manifest go through the same writer (its own ``.part`` suffix is gone)."""
    torch = pytest.importorskip("torch")
    from visage.model.dataset import shard_format

    seen: list[Path] = []
    real = output_files.reserve_temp
    monkeypatch.setattr(output_files, "reserve_temp", lambda path: seen.append(real(path)) or seen[-1])
    t = shard_format.ClipTensors(
        torch.zeros(2, 512), torch.zeros(2, 49), torch.zeros(3, 36, dtype=torch.int64), torch.zeros(3, 36)
    )
    shard_format.write_shard(tmp_path / "shard-00000.safetensors", {"c": t})
    shard_format.write_shard(tmp_path / "shard-00000.safetensors", {"c": t})  # an unlisted shard is redone
    assert [p.name.endswith(PART_SUFFIX) for p in seen] == [True, True]
    assert _names(tmp_path) == ["shard-00000.safetensors"]
