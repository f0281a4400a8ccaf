"""Ctrl-C on ``visage fill --ray local``: a driver subprocess gets SIGINT (to its whole process group, as a
terminal sends it) while a shot is generating. It exits 130, Ray's processes go with it, no temporary or
half-written file is left, the finished shots stay recorded; ``--resume`` then makes only the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("ray")

import opentimelineio as otio  # noqa: E402
from media_factory import make_test_video  # noqa: E402
from opentimelineio.opentime import RationalTime, TimeRange  # noqa: E402

from visage.bridge.fill.manifest import MANIFEST_NAME  # noqa: E402

RATE = 24
SHOTS_S = (2.0, 2.1, 2.2, 2.3)  # distinct lengths, so distinct media and keys


def _frames(seconds: float) -> int:
    """The shot's length in frames: its media's, less two."""
    return round(seconds * RATE) - 2


def _edit(folder: Path) -> Path:
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for i, seconds in enumerate(SHOTS_S):
        media = folder / f"clip{i}.mp4"
        make_test_video(media, duration=seconds, seed=i)
        frames = _frames(seconds)
        track.append(
            otio.schema.Clip(
                name=f"shot{i}",
                media_reference=otio.schema.ExternalReference(
                    str(media), TimeRange(RationalTime(0, RATE), RationalTime(round(seconds * RATE), RATE))
                ),
                source_range=TimeRange(RationalTime(0, RATE), RationalTime(frames, RATE)),
            )
        )
    edit = folder / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(tracks=[track]), str(edit))
    return edit


def _fill(edit: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """``visage fill --ray local`` with one one-CPU actor, one shot per batch, in its own process group."""
    command = [sys.executable, "-m", "visage.model.cli", "fill", str(edit), "-o", str(out), "--model"]
    command += ["tiny-random", "--ray", "local", "--ray-actors", "1", "--jobs", "1", "--daemon", "none"]
    command += ["--no-progress", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    pipe = subprocess.PIPE
    return subprocess.Popen(command, env=env, stdout=pipe, stderr=pipe, text=True, start_new_session=True)


def _recorded(results: Path) -> dict[str, dict[str, object]]:
    manifest = results / MANIFEST_NAME
    try:
        return {entry["file"]: entry for entry in json.loads(manifest.read_text())["results"].values()}
    except (OSError, ValueError, KeyError):
        return {}


def _group_gone(pgid: int, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_exits_130_leaving_only_whole_files_and_resume_makes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from visage.model.inference.tiny_random_bundle import tiny_random_folder

    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path / "cache"))
    tiny_random_folder()  # built before: the actor only loads it
    edit = _edit(tmp_path)
    results = tmp_path / "out.ambix"
    driver = _fill(edit, tmp_path / "out.otio")
    try:
        while not _recorded(results) and driver.poll() is None:  # one shot done, the next one running
            time.sleep(0.05)
        assert driver.poll() is None, driver.communicate()
        os.killpg(driver.pid, signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, err
    assert "interrupted" in err
    assert _group_gone(driver.pid), "Ray's processes outlived the driver"

    kept = _recorded(results)
    assert 1 <= len(kept) < len(SHOTS_S)
    leftovers = [p.name for p in results.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary files
    for wav in results.glob("*.wav"):  # every WAV there is whole: it reads, as long as its shot
        shot = int(wav.name.removeprefix("shot").split("_")[0])
        info = sf.info(str(wav))
        assert info.channels == 4 and info.frames >= _frames(SHOTS_S[shot]) / RATE * info.samplerate - 1
    kept_times = {name: (results / name).stat().st_mtime_ns for name in kept}

    again = _fill(edit, tmp_path / "out.otio", "--resume")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"{len(kept)} reused" in out
    assert len(_recorded(results)) == len(SHOTS_S)
    assert {name: (results / name).stat().st_mtime_ns for name in kept} == kept_times  # not made again
