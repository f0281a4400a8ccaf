"""Path rules that need no daemon: what a job writes against what it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from visage.bridge.errors import ErrorCode, RequestError
from visage.bridge.security import check_outputs_spare_inputs
from visage.model.files.output_files import part_path


def _written(folder: Path) -> list[Path]:
    return [folder / name for name in ("x.wav", "x.wav.json", "x.binaural.wav", "x.binaural.wav.json")]


def test_every_written_file_and_every_temporary_the_writer_would_use_is_refused_as_an_input(
    tmp_path: Path,
) -> None:
    written = _written(tmp_path)
    # the writer's own temporary names (several draws: the random part must not matter)
    temporaries = [part_path(path) for path in written for _ in range(3)]
    for source in written + temporaries:
        with pytest.raises(RequestError) as info:
            check_outputs_spare_inputs(written, [tmp_path / "clip.mp4", source])
        assert info.value.code is ErrorCode.BAD_OUTPUT and str(source) in info.value.message


def test_names_that_only_look_alike_are_allowed(tmp_path: Path) -> None:
    inputs = [
        tmp_path / "x.wav.json.bak",
        tmp_path / ".x.wav.json",  # hidden, but not a temporary (no random part, no suffix)
        tmp_path / "other" / "x.wav",  # same name, other folder
        tmp_path / ".y.wav.0123456789ab.visage-part",  # a temporary of another file
        tmp_path / "x.WAV.json",  # another name (none of these exist, so no case-insensitive lookup)
    ]
    check_outputs_spare_inputs(_written(tmp_path), inputs)


def test_a_symlinked_output_folder_is_compared_by_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(RequestError):
        check_outputs_spare_inputs(_written(tmp_path / "link"), [real / ".x.wav.0123456789ab.visage-part"])
