"""`visage batch` runs: outputs, keys and manifest, resume, refusals, failures, the command line, a daemon
and the tiny-random engine. Media are small synthetic videos; most runs generate with a stand-in that
writes silent WAVs of each job's length."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from bridge_fixtures import fake_settings
from media_factory import make_test_video

from visage.bridge.batch.batch_run import BatchError, BatchOptions, run_batch_jobs
from visage.bridge.batch.batch_summary import format_batch_summary
from visage.bridge.batch.commands import add_batch_arguments, run_batch
from visage.bridge.batch.job_list import JobListError
from visage.bridge.daemon import Daemon
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.fill.fill_edit import ShotStatus
from visage.bridge.fill.generators import GenerationSettings, LocalGenerator, ShotJob
from visage.bridge.fill.manifest import MANIFEST_NAME, ShotOptions, shot_key
from visage.model.inference.pipeline import VideoToAmbisonics

RATE = 8000  # Hz of the stand-in's WAVs
SETTINGS = GenerationSettings(sample_rate=RATE)


class SilentWavs:
    """Writes a silent 4-channel WAV per job; can fail jobs of one media, write short audio, or be
    interrupted after ``interrupt_after`` finished jobs."""

    model_id = "silent"

    def __init__(
        self,
        fail_media: str | None = None,
        short_media: str | None = None,
        interrupt_after: int | None = None,
    ) -> None:
        self.fail_media, self.short_media, self.interrupt_after = fail_media, short_media, interrupt_after
        self.jobs: list[ShotJob] = []

    def run(self, jobs: Sequence[ShotJob], progress, finished) -> None:  # type: ignore[no-untyped-def]
        for i, job in enumerate(jobs):
            self.jobs.append(job)
            if job.media.name == self.fail_media:
                finished(i, RuntimeError("the model ran out of memory"))
                continue
            seconds = (job.end_s - job.start_s) / (2 if job.media.name == self.short_media else 1)
            sf.write(str(job.output), np.zeros((round(seconds * RATE), 4), np.float32), RATE)
            finished(i, None)
            if self.interrupt_after is not None and len(self.jobs) >= self.interrupt_after:
                raise KeyboardInterrupt


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """a.mp4: 1 s at 24 fps; b.mov: 0.5 s at 20 fps; pan.csv: a direction curve; notes.mp4: not a video."""
    folder = tmp_path / "media"
    folder.mkdir()
    make_test_video(folder / "a.mp4", duration=1.0, fps=24, size=(32, 24))
    make_test_video(folder / "b.mov", duration=0.5, fps=20, size=(32, 24))
    (folder / "pan.csv").write_text("time,yaw,pitch\n0,0,0\n0.5,90,10\n", encoding="utf-8")
    (folder / "notes.mp4").write_text("not a video", encoding="utf-8")
    return folder


def write_jobs(folder: Path, text: str, name: str = "jobs.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_files(out: Path) -> dict[str, str]:
    """The manifest's key -> file, read as JSON."""
    return {k: v["file"] for k, v in json.loads((out / MANIFEST_NAME).read_text())["results"].items()}


THREE = (
    "media,start,end,yaw,pitch,direction_curve,seed,output\n"
    "a.mp4,0,0.5,30,,,,\n"
    "a.mp4,0.25,,,-10,,7,sub/x.wav\n"
    "b.mov,,,,,pan.csv,,\n"
)


def test_each_job_gets_its_file_its_key_and_a_manifest_entry(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    generator = SilentWavs()
    options = BatchOptions(
        write_jobs(media, THREE), out, yaw_deg=-20.0, pitch_deg=5.0, jobs=2, settings=SETTINGS
    )
    report = run_batch_jobs(options, generator)
    assert [o.status for o in report.outcomes] == [ShotStatus.GENERATED] * 3 and report.exit_code == 0

    first, second, third = generator.jobs
    assert (first.media, first.start_s, first.end_s, first.yaw_deg, first.pitch_deg) == (
        media / "a.mp4",
        0,
        0.5,
        30,
        5,
    )
    assert (second.start_s, second.end_s, second.yaw_deg, second.pitch_deg, second.seed) == (
        0.25,
        1.0,
        -20,
        -10,
        7,
    )
    assert (third.media, third.start_s, third.end_s, third.curve) == (
        media / "b.mov",
        0,
        0.5,
        media / "pan.csv",
    )
    assert re.fullmatch(r"a_[0-9a-f]{12}\.wav", first.output.name) and first.output.parent == out.absolute()
    assert second.output == out.absolute() / "sub" / "x.wav"
    assert re.fullmatch(r"b_[0-9a-f]{12}\.wav", third.output.name)

    # Keys as `visage fill` computes them: media content, range, direction (the curve's content), options.
    options_key = ShotOptions("joint", 2.5, None, "silent", RATE, "PCM_24")
    a, b, pan = (sha256(media / n) for n in ("a.mp4", "b.mov", "pan.csv"))
    expected = {
        shot_key(a, 0.0, 0.5, {"yaw": 30.0, "pitch": 5.0}, options_key): first,
        shot_key(
            a,
            0.25,
            1.0,
            {"yaw": -20.0, "pitch": -10.0},
            ShotOptions("joint", 2.5, 7, "silent", RATE, "PCM_24"),
        ): second,
        shot_key(b, 0.0, 0.5, {"curve": pan}, options_key): third,
    }
    files = manifest_files(out)
    assert files == {key: job.output.relative_to(out.absolute()).as_posix() for key, job in expected.items()}
    document = json.loads((out / MANIFEST_NAME).read_text())["results"]
    for key, job in expected.items():
        assert document[key]["sha256"] == sha256(job.output)
        assert job.output.name[-16:-4] == key[:12] or job.output.name == "x.wav"
        assert job.seed == (7 if job is second else int(key[:8], 16) % 2**31)  # derived from the key

    summary = format_batch_summary(report)
    assert "3 clips: 3 generated; model silent" in summary and "sub/x.wav" in summary
    assert "0.250-1.000" in summary and "curve pan.csv" in summary


def test_summary_says_look_auto_instead_of_the_unused_direction(media: Path, tmp_path: Path) -> None:
    """With --look auto the jobs' yaw/pitch only stand where nothing moves: the table says so."""
    settings = GenerationSettings(sample_rate=RATE, equirect=True, look="auto")
    options = BatchOptions(write_jobs(media, THREE), tmp_path / "out", settings=settings)
    report = run_batch_jobs(options, SilentWavs())
    summary = format_batch_summary(report)
    assert summary.count("look auto") == 2 and "yaw" not in summary  # the curve job keeps its curve
    assert "curve pan.csv" in summary


def test_resume_redoes_only_missing_or_damaged_results(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = write_jobs(media, THREE)
    run_batch_jobs(BatchOptions(jobs, out, settings=SETTINGS), SilentWavs())
    made = set(out.rglob("*.wav"))
    with pytest.raises(BatchError, match="holds results of an earlier run: use --resume"):
        run_batch_jobs(BatchOptions(jobs, out, settings=SETTINGS), SilentWavs())

    untouched = {p: sha256(p) for p in out.rglob("*.wav")}
    missing = next(p for p in untouched if p.name.startswith("a_"))
    damaged = out / "sub" / "x.wav"
    missing.unlink()
    damaged.write_bytes(damaged.read_bytes()[:-8])  # a WAV cut short by a crash
    again = SilentWavs()
    report = run_batch_jobs(BatchOptions(jobs, out, resume=True, settings=SETTINGS), again)
    assert sorted(j.output.name for j in again.jobs) == sorted([missing.name, "x.wav"])
    assert [o.status for o in report.outcomes] == [
        ShotStatus.GENERATED,
        ShotStatus.GENERATED,
        ShotStatus.REUSED,
    ]
    assert all(sha256(p) == untouched[p] for p in untouched if p not in (missing, damaged))

    nothing = SilentWavs()
    report = run_batch_jobs(BatchOptions(jobs, out, resume=True, settings=SETTINGS), nothing)
    assert nothing.jobs == [] and {o.status for o in report.outcomes} == {ShotStatus.REUSED}
    everything = SilentWavs()
    run_batch_jobs(BatchOptions(jobs, out, force=True, settings=SETTINGS), everything)
    assert len(everything.jobs) == 3
    assert set(out.rglob("*.wav")) == made and len(made) == 3


def test_a_file_no_run_made_is_refused_unless_forced(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    mine = out / "sub" / "x.wav"
    mine.write_bytes(b"the user's own recording")
    jobs = write_jobs(media, THREE)
    generator = SilentWavs()
    with pytest.raises(JobListError) as caught:
        run_batch_jobs(BatchOptions(jobs, out, resume=True, settings=SETTINGS), generator)
    assert caught.value.problems == [
        f"{jobs}:3: {mine.absolute()} exists and no earlier run of this batch made it; "
        "use --force to replace it"
    ]
    assert generator.jobs == [] and mine.read_bytes() == b"the user's own recording"
    report = run_batch_jobs(BatchOptions(jobs, out, force=True, settings=SETTINGS), generator)
    assert report.exit_code == 0 and sf.info(str(mine)).channels == 4


def test_every_problem_with_media_curves_and_duplicates_is_reported_before_generating(
    media: Path, tmp_path: Path
) -> None:
    (media / "steep.json").write_text('{"time": [0], "yaw": [0], "pitch": [100]}', encoding="utf-8")
    text = (
        "media,start,end,yaw,direction_curve,seed\n"
        "a.mp4,0,0.5,10,,\n"  # 2: fine
        "gone.mp4,0,1,,,\n"  # 3
        "a.mp4,0.5,1.2,,,\n"  # 4: past the end (1 s + half a frame)
        "b.mov,0.5,,,,\n"  # 5: starts at the end
        "notes.mp4,,,,,\n"  # 6: not a video
        "a.mp4,,,,steep.json,\n"  # 7: a bad curve
        "a.mp4,,,,nowhere.csv,\n"  # 8
        "a.mp4,0,0.5,370,,\n"  # 9: line 2 again (yaw 370 is 10)
        "a.mp4,0,0.5,10,,3\n"  # 10: another seed: fine
        "a.mp4,0,1.02,,,\n"  # 11: within half a frame of the end: fine
    )
    jobs = write_jobs(media, text)
    generator = SilentWavs()
    with pytest.raises(JobListError) as caught:
        run_batch_jobs(BatchOptions(jobs, tmp_path / "out", settings=SETTINGS), generator)
    problems = [p.removeprefix(f"{jobs}:") for p in caught.value.problems]
    assert [p.split(":")[0] for p in problems] == ["3", "4", "5", "6", "7", "8", "9"]
    assert problems[0] == f"3: field 'media': {media / 'gone.mp4'} not found"
    assert problems[1] == "4: field 'end': 1.2 s is past the end of a.mp4 (1.000 s)"
    assert problems[2] == "5: field 'start': 0.5 s is not before the end of b.mov (0.500 s)"
    assert problems[3].startswith("6: field 'media': ") and "not a media file" in problems[3]
    assert (
        problems[4].startswith("7: field 'direction_curve': ")
        and "pitch must lie in [-90, 90]" in problems[4]
    )
    assert problems[5].startswith("8: field 'direction_curve': ") and "not found" in problems[5]
    assert problems[6].startswith("9: the same clip as line 2 ")
    assert generator.jobs == [] and not (tmp_path / "out").exists()


def test_a_failed_clip_does_not_stop_the_others(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    text = "media,end,output\nb.mov,0.5,fails.wav\na.mp4,0.5,short.wav\na.mp4,0.25,fine.wav\n"
    report = run_batch_jobs(
        BatchOptions(write_jobs(media, text), out, settings=SETTINGS), SilentWavs(fail_media="b.mov")
    )
    assert [o.status for o in report.outcomes] == [
        ShotStatus.FAILED,
        ShotStatus.GENERATED,
        ShotStatus.GENERATED,
    ]
    assert report.outcomes[0].message == "the model ran out of memory" and report.exit_code == 1
    assert sorted(manifest_files(out).values()) == ["fine.wav", "short.wav"]

    short = run_batch_jobs(
        BatchOptions(write_jobs(media, text), out, force=True, settings=SETTINGS),
        SilentWavs(short_media="a.mp4"),
    )
    assert [o.status for o in short.outcomes] == [ShotStatus.GENERATED] + [ShotStatus.FAILED] * 2
    assert "holds 0.250 s of audio; the clip needs 0.500 s" in short.outcomes[1].message
    summary = format_batch_summary(short)
    assert (
        "line 3 (a.mp4): the result short.wav holds 0.250 s" in summary and "re-run with --resume" in summary
    )


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_batch_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_line_exit_codes(media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = str(write_jobs(media, THREE))
    out = str(tmp_path / "out")
    quiet = ("--no-progress", "--sample-rate", str(RATE))
    assert run_batch(_args(jobs, "-o", out, *quiet), generator=SilentWavs(interrupt_after=1)) == 130
    assert "interrupted; finished clips are kept: re-run with --resume" in capsys.readouterr().err
    assert len(manifest_files(Path(out))) == 1  # recorded the moment it was written
    assert run_batch(_args(jobs, "-o", out, *quiet), generator=SilentWavs()) == 2
    assert "use --resume to keep them" in capsys.readouterr().err
    rest = SilentWavs()
    assert run_batch(_args(jobs, "-o", out, "--resume", *quiet), generator=rest) == 0
    assert len(rest.jobs) == 2 and "3 clips: 2 generated, 1 reused" in capsys.readouterr().out

    bad = str(write_jobs(media, "media,yaw,pitch\na.mp4,left,0\nb.mov,0,95\n", "bad.csv"))
    assert run_batch(_args(bad, "-o", out, *quiet), generator=SilentWavs()) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"visage batch: error: {bad}:2: field 'yaw': expected a number, got 'left'",
        f"visage batch: error: {bad}:3: field 'pitch': expected a number in [-90, 90], got '95'",
        "visage batch: 2 problem(s); nothing was generated",
    ]
    assert run_batch(_args(str(media / "pan.json"), "-o", out), generator=SilentWavs()) == 2
    assert "a job list ends in .csv, .jsonl, .ndjson" in capsys.readouterr().err
    assert run_batch(_args(jobs, "-o", out, "--jobs", "0"), generator=SilentWavs()) == 2
    assert run_batch(_args(jobs, "-o", out, "--pitch", "91"), generator=SilentWavs()) == 2
    (tmp_path / "file").write_text("")
    assert run_batch(_args(jobs, "-o", str(tmp_path / "file")), generator=SilentWavs()) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_daemon_generates_the_clips(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = str(
        write_jobs(media, '{"media": "a.mp4", "end": 0.5}\n{"media": "b.mov", "yaw": 200}\n', "j.jsonl")
    )
    engine = FakeEngine(FakeSettings(delay_s=0.0, steps=1, seconds=60.0))  # long enough for any clip
    with Daemon(fake_settings(tmp_path), engine) as daemon:
        host, port = daemon.udp_address
        code = run_batch(
            _args(jobs, "-o", str(tmp_path / "out"), "--daemon", f"{host}:{port}", "--no-progress")
        )
    assert code == 0
    captured = capsys.readouterr()
    assert f"visage batch: generating on the daemon at {host}:{port} (fake" in captured.err
    assert "2 clips: 2 generated; model fake" in captured.out and "yaw -160 pitch 0" in captured.out


def test_the_tiny_random_engine_writes_ambix_of_each_clips_length(
    media: Path, tmp_path: Path, pipeline: VideoToAmbisonics
) -> None:
    out = tmp_path / "out"
    text = "media,start,end,yaw,output\na.mp4,0.25,0.75,45,left.wav\nb.mov,,,,\n"
    generator = LocalGenerator(GenerationSettings(), pipeline=pipeline)
    report = run_batch_jobs(BatchOptions(write_jobs(media, text), out, jobs=2), generator)
    assert report.exit_code == 0, [o.message for o in report.outcomes]
    for outcome, seconds in zip(report.outcomes, (0.5, 0.5), strict=True):
        info = sf.info(str(outcome.wav))
        assert (info.channels, info.samplerate) == (4, 48000) and abs(info.frames - seconds * 48000) <= 1
        sidecar = json.loads(outcome.wav.with_name(outcome.wav.name + ".json").read_text())
        assert sidecar["format"] == "AmbiX" and sidecar["request"] == {"visage_fill": True}
        assert sidecar["sampling"]["seed"] == outcome.seed


def test_on_ray_every_clip_goes_in_one_call_and_the_generator_is_closed(media: Path, tmp_path: Path) -> None:
    class Closing(SilentWavs):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[int] = []
            self.closed = False

        def run(self, jobs, progress, finished) -> None:  # type: ignore[no-untyped-def]
            self.calls.append(len(jobs))
            super().run(jobs, progress, finished)

        def close(self) -> None:
            self.closed = True

    generator = Closing()
    argv = (str(write_jobs(media, THREE)), "-o", str(tmp_path / "out"), "--no-progress", "--jobs", "1")
    assert run_batch(_args(*argv, "--ray", "local"), generator=generator) == 0
    assert generator.calls == [3] and generator.closed  # Ray packs --jobs clips per actor itself


def test_resume_regenerates_a_result_written_but_not_recorded_before_an_interruption(
    media: Path, tmp_path: Path, pipeline: VideoToAmbisonics
) -> None:
    """Ctrl-C (or a kill) between a clip's file and its manifest entry, as on Ray where actors finish
    files the driver no longer records: the file is this batch's own, so --resume makes it again."""

    class StopsBeforeRecording:
        model_id = "tiny-random"

        def __init__(self) -> None:
            self.inner = LocalGenerator(GenerationSettings(), pipeline=pipeline)

        def run(self, jobs, progress, finished) -> None:  # type: ignore[no-untyped-def]
            def interrupted(i: int, error: Exception | None) -> None:
                raise KeyboardInterrupt  # the file is complete; the manifest never hears of it

            self.inner.run(jobs, progress, interrupted)

    out = tmp_path / "out"
    jobs = write_jobs(media, "media,start,end,output\na.mp4,0,0.5,left.wav\n")
    with pytest.raises(KeyboardInterrupt):
        run_batch_jobs(BatchOptions(jobs, out, jobs=1), StopsBeforeRecording())  # type: ignore[arg-type]
    assert (out / "left.wav").is_file() and not (out / MANIFEST_NAME).exists()
    generator = LocalGenerator(GenerationSettings(), pipeline=pipeline)
    report = run_batch_jobs(BatchOptions(jobs, out, resume=True, jobs=1), generator)
    assert [o.status for o in report.outcomes] == [ShotStatus.GENERATED]
    assert list(manifest_files(out).values()) == ["left.wav"]


def test_bad_cells_and_bad_files_are_reported_together_in_line_order(media: Path, tmp_path: Path) -> None:
    """A user fixing a job list should see every problem in one run, not the cells first and the files
    after: the rows that parse are checked against their files too."""
    text = (
        "media,start,end,output\n"
        "a.mp4,abc,0.5,x.wav\n"  # 2: a bad cell
        "gone.mp4,0,0.5,y.wav\n"  # 3: no such media
        "a.mp4,0,0.5,Y.WAV\n"  # 4: y.wav again
        "a.mp4,0,9,z.wav\n"  # 5: past the end of the media
        ".,0,0.5,w.wav\n"  # 6: a folder
    )
    jobs = write_jobs(media, text)
    generator = SilentWavs()
    with pytest.raises(JobListError) as caught:
        run_batch_jobs(BatchOptions(jobs, tmp_path / "out", settings=SETTINGS), generator)
    problems = [p.removeprefix(f"{jobs}:") for p in caught.value.problems]
    assert [p.split(":")[0] for p in problems] == ["2", "3", "4", "5", "6"], problems
    assert problems[0] == "2: field 'start': expected a number, got 'abc'"
    assert problems[1] == f"3: field 'media': {media / 'gone.mp4'} not found"
    assert problems[2] == "4: field 'output': Y.WAV is also written by line 3"
    assert problems[4] == f"6: field 'media': {media} is a folder, not a video"
    assert generator.jobs == []
