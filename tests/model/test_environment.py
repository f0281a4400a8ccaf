"""`visage doctor`: the report, and the torchaudio workaround applied only when loading fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visage.model import environment
from visage.model.cli import COMMANDS, main


def _fake_lib(tmp_path: Path) -> Path:
    lib = tmp_path / "torchaudio" / "lib"
    lib.mkdir(parents=True)
    for name in ("_torchaudio.abi3.so", "libtorchaudio.abi3.so"):
        (lib / name).write_bytes(b"\x7fELF")
    (lib / "__init__.py").write_text("")
    return lib


def test_fix_moves_native_libraries_only_when_loading_fails(tmp_path: Path, monkeypatch) -> None:
    lib = _fake_lib(tmp_path)
    monkeypatch.setattr(environment, "torchaudio_lib_dir", lambda: lib)
    state = {"loads": False}

    def loads():
        # torchaudio loads once no native library is left in lib/
        state["loads"] = not list(lib.glob("*.so"))
        return state["loads"], "imports" if state["loads"] else "OSError: Could not load this library"

    monkeypatch.setattr(environment, "torchaudio_loads", loads)
    check = environment.fix_torchaudio()
    assert check.ok and "moved" in check.detail
    assert sorted(p.name for p in (lib / environment.DISABLED_FOLDER).iterdir()) == [
        "_torchaudio.abi3.so",
        "libtorchaudio.abi3.so",
    ]
    assert (lib / "__init__.py").exists()
    again = environment.fix_torchaudio()
    assert again.ok and again.detail == "imports; nothing to fix"


def test_fix_reports_failure_it_cannot_repair(tmp_path: Path, monkeypatch) -> None:
    lib = _fake_lib(tmp_path)
    monkeypatch.setattr(environment, "torchaudio_lib_dir", lambda: lib)
    monkeypatch.setattr(environment, "torchaudio_loads", lambda: (False, "ImportError: something else"))
    check = environment.fix_torchaudio()
    assert not check.ok and "still failing" in check.detail


def test_doctor_reports_every_piece(capsys) -> None:
    assert main(["doctor"]) in (0, 1)
    out = capsys.readouterr().out
    for name in (
        "torch",
        "device",
        "transformers",
        "dac",
        "torchaudio",
        "ViSAGe checkpoint",
        "CLIP ViT-B/32",
        "DAC 44 kHz",
    ):
        assert name in out


def test_command_line_help_is_fast_and_lists_stages() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "visage.model.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert all(name in proc.stdout for name in COMMANDS)
    proc = subprocess.run(  # every stage registers its arguments without importing torch
        [
            sys.executable,
            "-c",
            "import visage.model.cli as c, sys; c.build_parser(); print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "False"


def test_bench_runs_on_the_tiny_architecture(capsys) -> None:
    assert (
        main(["bench", "generate", "--preset", "tiny", "--batch", "1", "--frames", "2", "--dtype", "fp32"])
        == 0
    )
    out = capsys.readouterr().out
    assert "steps/s" in out and "vs reference fp32" in out


def test_unknown_command_is_an_error() -> None:
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_public_names_load_lazily() -> None:
    code = (
        "import sys, visage.model as m; assert 'torch' not in sys.modules; "
        "assert sorted(m.__all__) == sorted(m._EXPORTS); m.Visage; m.VideoToAmbisonics; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "ok", proc.stderr
