"""The shared-filesystem check an actor runs on its node, here on this machine's files."""

from __future__ import annotations

from pathlib import Path

from visage.bridge.cluster.preflight import check_shared_files, preflight_message, shared_files


def test_what_a_run_needs_is_listed_once_each(tmp_path: Path) -> None:
    a, b, curve = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "pan.csv"
    out = tmp_path / "out"
    files = shared_files([a, b, a, curve], [out / "1.wav", out / "2.wav", tmp_path / "3.wav"])
    assert files.readable == (a, b, curve)
    assert files.writable == (out, tmp_path)


def test_readable_media_and_a_writable_folder_pass_and_leave_nothing(tmp_path: Path) -> None:
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"\x00" * 16)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    assert check_shared_files(shared_files([media, empty], [out / "clip.wav"])) == []
    assert list(out.iterdir()) == []  # the probe file is gone


def test_each_missing_file_and_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "clip.mp4"
    folder_media = tmp_path  # a folder where a file should be
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    problems = check_shared_files(
        shared_files([missing, folder_media], [tmp_path / "gone" / "a.wav", not_a_folder / "b.wav"])
    )
    assert len(problems) == 4
    assert problems[0] == f"{missing}: not found"
    assert problems[1].startswith(f"{folder_media}: cannot be read")
    assert problems[2] == f"{tmp_path / 'gone'}: output folder not found"
    assert problems[3] == f"{not_a_folder}: output folder not found"


def test_the_message_names_the_node_and_counts_what_it_does_not_list() -> None:
    problems = [f"/m/{i}.mp4: not found" for i in range(8)]
    message = preflight_message("gpu-3 (10.0.0.5)", problems)
    assert message.startswith("Ray node gpu-3 (10.0.0.5) does not see the run's files")
    assert "/m/4.mp4" in message and "/m/5.mp4" not in message and "and 3 more" in message
    assert "shared filesystem" in message
