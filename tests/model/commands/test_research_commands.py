"""The research stages' command lines: one-line errors and exit status 1 for every bad input."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from visage.model.commands import research as rc


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    getattr(rc, f"add_{name.replace('-', '_')}_arguments")(parser)
    return getattr(rc, f"run_{name.replace('-', '_')}")(parser.parse_args(argv))


@pytest.mark.parametrize(
    ("name", "argv", "message"),
    [
        ("dataset", ["build", "-o", "out"], "give 360° recordings"),
        ("dataset", ["build", "missing.mp4", "-o", "out"], "no such recording(s): missing.mp4"),
        (
            "dataset",
            ["build", "-o", "out", "--directions", "a.json", "x.mp4"],
            "--directions goes with --table",
        ),
        ("dataset", ["build", "-o", "out", "--table", "none.csv"], "clip table not found"),
        ("train", ["none.toml"], "config file not found"),
        ("eval", ["a", "b", "--spatial-only"], "no such folder"),
    ],
)
def test_bad_inputs_are_one_line_errors(
    name: str, argv: list[str], message: str, capsys, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(name, argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"visage {name}: error:") and message in err[0]


def test_train_check_validates_config_and_dataset(tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.toml"
    config.write_text('[data]\ndataset = "ds"\n[train]\noutput_dir = "out"\n[optim]\nlr = "high"\n')
    assert run("train", [str(config), "--check"]) == 1
    assert "[optim] lr must be a finite number" in capsys.readouterr().err
    config.write_text('[data]\ndataset = "ds"\n[train]\noutput_dir = "out"\n')
    assert run("train", [str(config), "--check"]) == 1
    assert "no dataset manifest" in capsys.readouterr().err


def test_dataset_build_then_train_check(tmp_path: Path, capsys, monkeypatch) -> None:
    import numpy as np
    import soundfile as sf

    from visage.model.files.panorama_video import write_view_clip

    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path / "cache"))
    write_view_clip(tmp_path / "c1.mp4", np.zeros((4, 224, 224, 3), np.uint8))
    sf.write(str(tmp_path / "c1.wav"), np.zeros((44100, 4), np.float32) + 0.01, 44100)
    (tmp_path / "clips.csv").write_text("id,yaw,pitch\nc1,10,0\n")
    argv = ["build", "--table", str(tmp_path / "clips.csv"), "-o", str(tmp_path / "ds")]
    assert (
        run("dataset", [*argv, "--clip-model", "tiny-random", "--codec", "carrier", "--device", "cpu"]) == 0
    )
    assert "1 clips built, 0 already there, 0 failed" in capsys.readouterr().out
    config = tmp_path / "run.toml"
    config.write_text('[data]\ndataset = "ds"\n[train]\noutput_dir = "out"\n')
    assert run("train", [str(config), "--check"]) == 0
    assert "ok (1 training, 0 validation clips)" in capsys.readouterr().out
