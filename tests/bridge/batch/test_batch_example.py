"""The example job lists run as a user would run them: the example clip made next to them, then
``visage batch`` in a subprocess, offline, on the tiny-random models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from visage.bridge.batch.job_list import read_job_list

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
LISTS = ("batch_jobs.csv", "batch_jobs.jsonl", "batch_pan.csv")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env)


def test_the_csv_and_jsonl_examples_list_the_same_jobs() -> None:
    csv_jobs = read_job_list(EXAMPLES / "batch_jobs.csv")
    jsonl_jobs = read_job_list(EXAMPLES / "batch_jobs.jsonl")
    assert [j.__dict__ | {"line": 0} for j in csv_jobs] == [j.__dict__ | {"line": 0} for j in jsonl_jobs]


def test_the_example_job_list_makes_three_clips_then_resumes(tmp_path: Path) -> None:
    for name in LISTS:
        shutil.copy(EXAMPLES / name, tmp_path / name)
    env = {
        **os.environ,
        "VISAGE_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    made = _run(str(EXAMPLES / "make_example_clip.py"), str(tmp_path / "example_clip.mp4"), env=env)
    assert made.returncode == 0, made.stderr
    command = (
        "-m",
        "visage.model.cli",
        "batch",
        str(tmp_path / "batch_jobs.csv"),
        "-o",
        str(tmp_path / "out"),
    )
    local = ("--model", "tiny-random", "--daemon", "none")
    done = _run(*command, *local, env=env)
    assert done.returncode == 0, done.stderr
    assert "3 clips: 3 generated; model tiny-random" in done.stdout
    lengths = {"ball_camera_left.wav": 2.0, "ball_camera_right.wav": 2.0, "ball_camera_panning.wav": 4.0}
    for name, seconds in lengths.items():
        info = sf.info(str(tmp_path / "out" / name))
        assert (info.channels, info.samplerate) == (4, 48000) and abs(info.frames - seconds * 48000) <= 1
    again = _run(*command, *local, "--resume", env=env)
    assert again.returncode == 0 and "3 clips: 3 reused" in again.stdout
