"""Every example runs as a user would run it (a subprocess), offline, on the tiny-random models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env)


def test_make_clip_then_generate_from_it(tmp_path: Path) -> None:
    env = {**os.environ, "VISAGE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    clip = tmp_path / "example_clip.mp4"
    made = _run(str(EXAMPLES / "make_example_clip.py"), str(clip), env=env)
    assert made.returncode == 0, made.stderr
    refused = _run(str(EXAMPLES / "make_example_clip.py"), str(clip), env=env)
    assert refused.returncode == 1 and "exists" in refused.stderr
    out = tmp_path / "out.wav"
    generated = _run(
        str(EXAMPLES / "generate_from_video.py"),
        str(clip),
        str(out),
        "--end",
        "2",
        "--yaw",
        "30",
        "--model",
        "tiny-random",
        env=env,
    )
    assert generated.returncode == 0, generated.stderr
    info = sf.info(str(out))
    assert (info.channels, info.samplerate, info.frames) == (4, 48000, 96000)


def test_submit_over_osc_to_a_running_daemon(tmp_path: Path) -> None:
    from bridge_fixtures import fake_settings, fast_engine

    from visage.bridge.daemon import Daemon

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"any bytes: the fake engine does not decode them")
    out = tmp_path / "out.wav"
    with Daemon(fake_settings(tmp_path), fast_engine()) as daemon:
        host, port = daemon.udp_address
        done = _run(
            str(EXAMPLES / "submit_over_osc.py"),
            str(video),
            "-o",
            str(out),
            "--yaw",
            "30",
            "--end",
            "1",
            "--daemon",
            f"{host}:{port}",
            env=dict(os.environ),
        )
    assert done.returncode == 0, done.stderr
    assert "daemon: model fake" in done.stdout and f"wrote {out}" in done.stdout
    assert sf.info(str(out)).channels == 4


def test_fill_an_edit_puts_a_clip_under_each_shot(tmp_path: Path) -> None:
    env = {**os.environ, "VISAGE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    clip = tmp_path / "clip.mp4"
    assert _run(str(EXAMPLES / "make_example_clip.py"), str(clip), env=env).returncode == 0
    work = tmp_path / "work"
    filled = _run(str(EXAMPLES / "fill_an_edit.py"), str(clip), str(work), "--model", "tiny-random", env=env)
    assert filled.returncode == 0, filled.stderr
    assert "track 'Ambisonics (AmbiX)'" in filled.stdout
    assert "wide (AmbiX): at 0.00 s for 2.00 s, {'pitch': 0.0, 'yaw': 30.0}" in filled.stdout
    assert "close (AmbiX): at 2.00 s for 2.00 s, {'pitch': 10.0, 'yaw': -45.0}" in filled.stdout
    wavs = sorted((work / "edit_ambix.ambix").glob("*.wav"))
    assert [sf.info(str(w)).frames for w in wavs] == [96000, 96000]
    again = _run(str(EXAMPLES / "fill_an_edit.py"), str(clip), str(work), "--model", "tiny-random", env=env)
    assert again.returncode == 2 and "exists" in again.stderr  # never replaces its earlier result


def test_every_example_is_run_by_a_test() -> None:
    tested = {"make_example_clip.py", "generate_from_video.py", "submit_over_osc.py", "fill_an_edit.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
