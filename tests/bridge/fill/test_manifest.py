"""Shot keys with the 360° options (``--equirect``, ``--look``): keys of runs without them are the keys
earlier versions wrote (pinned), keys with them differ and are the documented hash; and ``--resume`` of
fill and batch regenerates a result only when the options that made it changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf
from media_factory import make_test_video
from opentimelineio.opentime import RationalTime, TimeRange

from visage.bridge.batch.batch_run import BatchOptions, run_batch_jobs
from visage.bridge.fill.fill_edit import FillOptions, ShotStatus, fill_edit
from visage.bridge.fill.generators import GenerationSettings, ShotJob
from visage.bridge.fill.manifest import ShotOptions, shot_key

FLAT = ShotOptions("joint", 2.5, None, "visage-official", 48000, "PCM_24")
CURVED = ShotOptions("video", 3.0, 7, "tiny-random", 44100, "FLOAT")
# Computed with the shot_key of commit f2a428c (before the 360° options entered keys), from
# `git show f2a428c:bridge/fill/manifest.py`: results recorded by that version must still be found.
PINNED = {
    "flat": "f699610103a22b15112cdc7b3a39fb566b451f5bda18c1de49b24934c8174079",
    "curved": "049f650ac65ea616fd41aade613d0d16ad039ced701c44d931b17400f0dbfb3e",
}
RATE = 8000  # Hz of the stand-in generator's WAVs


def flat_key(options: ShotOptions) -> str:
    return shot_key("a" * 64, 1.25, 6.5, {"yaw": 30.0, "pitch": -5.0}, options)


def curved_key(options: ShotOptions) -> str:
    return shot_key("b" * 64, 0.0, 10.0, {"curve": "c" * 64}, options)


def test_keys_without_the_360_options_are_the_earlier_versions_keys() -> None:
    assert flat_key(FLAT) == PINNED["flat"]
    assert curved_key(CURVED) == PINNED["curved"]
    assert flat_key(replace(FLAT, equirect=False, look=None)) == PINNED["flat"]


def test_each_360_option_changes_the_key_to_its_documented_hash() -> None:
    keys = {
        flat_key(replace(FLAT, equirect=True)),
        flat_key(replace(FLAT, look="auto")),
        flat_key(replace(FLAT, equirect=True, look="auto")),
        PINNED["flat"],
    }
    assert len(keys) == 4
    # The oracle: the canonical JSON of the module docstring, written out by hand.
    canonical = (
        '{"direction":{"pitch":-5.0,"yaw":30.0},"media":"' + "a" * 64 + '",'
        '"options":{"equirect":true,"guidance_mode":"joint","guidance_scale":2.5,"look":"auto",'
        '"model":"visage-official","sample_rate":48000,"seed":null,"subtype":"PCM_24"},'
        '"range":[1.25,6.5],"schema":1}'
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert flat_key(replace(FLAT, equirect=True, look="auto")) == expected


class SilentWavs:
    """Writes a silent 4-channel WAV of each job's length; remembers the jobs."""

    model_id = "silent"

    def __init__(self) -> None:
        self.jobs: list[ShotJob] = []

    def run(self, jobs: Sequence[ShotJob], progress, finished) -> None:  # type: ignore[no-untyped-def]
        for i, job in enumerate(jobs):
            self.jobs.append(job)
            frames = round((job.end_s - job.start_s) * RATE)
            sf.write(str(job.output), np.zeros((frames, 4), np.float32), RATE)
            finished(i, None)


RUNS = [  # settings of successive --resume runs in one folder -> whether each regenerates
    (GenerationSettings(sample_rate=RATE), True),
    (GenerationSettings(sample_rate=RATE), False),
    (GenerationSettings(sample_rate=RATE, equirect=True), True),
    (GenerationSettings(sample_rate=RATE, equirect=True, look="auto"), True),
    (GenerationSettings(sample_rate=RATE, equirect=True, look="auto"), False),
]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_test_video(tmp_path / "pano.mp4", duration=0.5, fps=24, size=(32, 16)).path


def test_fill_resume_regenerates_a_shot_whose_360_options_changed(video: Path, tmp_path: Path) -> None:
    clip = otio.schema.Clip(
        name="pano",
        media_reference=otio.schema.ExternalReference(target_url=video.as_uri()),
        source_range=TimeRange(RationalTime(0, 24), RationalTime(12, 24)),
    )
    timeline = otio.schema.Timeline(tracks=[otio.schema.Track(name="V1", children=[clip])])
    edit = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(edit))
    for settings, regenerates in RUNS:
        generator = SilentWavs()
        options = FillOptions(edit, tmp_path / "out.otio", resume=True, force=True, settings=settings)
        (outcome,) = fill_edit(options, generator).outcomes
        assert outcome.status is (ShotStatus.GENERATED if regenerates else ShotStatus.REUSED), settings
        assert len(generator.jobs) == int(regenerates)


def test_batch_resume_regenerates_a_clip_whose_360_options_changed(video: Path, tmp_path: Path) -> None:
    job_list = tmp_path / "jobs.csv"
    job_list.write_text("media,start,end\npano.mp4,0,0.5\n", encoding="utf-8")
    out = tmp_path / "out"
    files = []
    for settings, regenerates in RUNS:
        generator = SilentWavs()
        options = BatchOptions(job_list, out, resume=True, settings=settings)
        (outcome,) = run_batch_jobs(options, generator).outcomes
        assert outcome.status is (ShotStatus.GENERATED if regenerates else ShotStatus.REUSED), settings
        assert len(generator.jobs) == int(regenerates)
        files.append(outcome.wav.name)
    assert len(set(files)) == 3  # one file per set of options, named by its key
    manifest = json.loads((out / "visage-fill.json").read_text())
    assert len(manifest["results"]) == 3
