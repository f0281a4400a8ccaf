"""`RayGenerator` on a local Ray instance (two CPUs, shared by the module) with the tiny-random models:
the same samples as a local run, `visage fill --ray` end to end with ``--resume``, and the
shared-filesystem check that stops a run before anything is generated."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("ray")

import opentimelineio as otio  # noqa: E402
from media_factory import make_test_video  # noqa: E402
from opentimelineio.opentime import RationalTime, TimeRange  # noqa: E402

from visage.bridge.cluster.ray_generator import RayGenerator, RayOptions  # noqa: E402
from visage.bridge.cluster.ray_session import RaySession, connect  # noqa: E402
from visage.bridge.fill.commands import add_fill_arguments, run_fill  # noqa: E402
from visage.bridge.fill.generators import (  # noqa: E402
    GenerationSettings,
    GeneratorUnavailable,
    LocalGenerator,
    ShotJob,
)
from visage.bridge.fill.manifest import MANIFEST_NAME  # noqa: E402

SETTINGS = GenerationSettings()
CLIPS_S = (1.0, 1.3, 1.6)  # media lengths: one window each at the tiny model, all different


@pytest.fixture(scope="module")
def ray_local(tiny_bundle_cache: Path) -> Iterator[RaySession]:
    """One Ray instance for the module; its workers build nothing: the tiny bundle is made first."""
    with connect("local", num_cpus=2, object_store_mb=100) as session:
        yield session


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("media")
    paths = [folder / f"clip{i}.mp4" for i in range(len(CLIPS_S))]
    for i, (path, seconds) in enumerate(zip(paths, CLIPS_S, strict=True)):
        make_test_video(path, duration=seconds, seed=i)
    return paths


def _jobs(clips: list[Path], folder: Path) -> list[ShotJob]:
    folder.mkdir(exist_ok=True)
    return [
        ShotJob(clip, 0.0, seconds - 0.1, 30.0 * i - 45.0, 5.0 * i, None, 1000 + i, folder / f"shot{i}.wav")
        for i, (clip, seconds) in enumerate(zip(clips, CLIPS_S, strict=True))
    ]


def _samples(path: Path) -> np.ndarray:
    data, _ = sf.read(str(path), dtype="int32")  # PCM_24 as read: the stored integers, exactly
    return data


def test_each_clip_gives_the_same_samples_on_ray_as_locally(
    ray_local: RaySession, clips: list[Path], pipeline: object, tmp_path: Path
) -> None:
    on_ray = _jobs(clips, tmp_path / "ray")
    ended: list[tuple[int, Exception | None]] = []
    options = RayOptions("local", batch_size=2)
    with RayGenerator(SETTINGS, options, checkpoint="tiny-random") as generator:
        generator.run(on_ray, lambda i, f, s: None, lambda i, error: ended.append((i, error)))
        assert generator.actor_count == 2
    assert sorted(ended) == [(i, None) for i in range(len(on_ray))]  # each once, none failed

    local = _jobs(clips, tmp_path / "local")
    here = LocalGenerator(SETTINGS, pipeline=pipeline)  # type: ignore[arg-type]
    for job in local:  # one at a time: batch-invariant generation gives each clip the same samples
        here.run([job], lambda i, f, s: None, lambda i, error: None)
    for ray_job, local_job in zip(on_ray, local, strict=True):
        ray_samples, local_samples = _samples(ray_job.output), _samples(local_job.output)
        assert ray_samples.shape == local_samples.shape
        assert np.array_equal(ray_samples, local_samples), ray_job.output.name
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]  # no temporaries


def _edit(clips: list[Path], path: Path) -> Path:
    """Three shots over two media files: clip0 whole, clip1 twice over one range (one result)."""
    rate = 24

    def clip(media: Path, seconds: float, name: str) -> otio.schema.Clip:
        available = TimeRange(RationalTime(0, rate), RationalTime(round(seconds * rate), rate))
        return otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(str(media), available),
            source_range=TimeRange(RationalTime(0, rate), RationalTime(round(0.75 * rate), rate)),
        )

    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    track.extend([clip(clips[0], CLIPS_S[0], "a"), clip(clips[1], CLIPS_S[1], "b")])
    track.append(clip(clips[1], CLIPS_S[1], "c"))
    timeline = otio.schema.Timeline(tracks=[track], global_start_time=RationalTime(0, rate))
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _fill_args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_fill_arguments(parser)
    return parser.parse_args(list(extra))


def test_fill_on_ray_records_every_shot_and_resume_redoes_nothing(
    ray_local: RaySession, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit = _edit(clips, tmp_path / "cut.otio")
    common = ["--model", "tiny-random", "--ray", "local", "--daemon", "none", "--no-progress", "--jobs", "2"]
    first = [*common, "--ray-actors", "5"]
    assert run_fill(_fill_args(str(edit), "-o", str(tmp_path / "out.otio"), *first)) == 0
    assert "2 actor(s) of 1 CPU each (5 asked for; the cluster holds 2)" in capsys.readouterr().err
    results = tmp_path / "out.ambix"
    manifest = json.loads((results / MANIFEST_NAME).read_text())
    recorded = {entry["file"] for entry in manifest["results"].values()}
    wavs = {p.name for p in results.glob("*.wav")}
    assert len(recorded) == 2 and recorded == wavs  # shots b and c share one result
    assert not [p for p in results.iterdir() if p.name.startswith(".")]
    before = {p.name: p.stat().st_mtime_ns for p in results.glob("*.wav")}

    again = ["-o", str(tmp_path / "again.otio"), "--output-dir", str(results), "--resume"]
    assert run_fill(_fill_args(str(edit), *again, *common)) == 0
    output = capsys.readouterr()
    assert "actor(s)" not in output.err  # nothing to generate: no actor was started
    assert "3 reused" in output.out
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.wav")} == before


def test_a_node_that_cannot_see_the_files_stops_the_run_before_any_shot(
    ray_local: RaySession, clips: list[Path], tmp_path: Path
) -> None:
    jobs = _jobs(clips, tmp_path / "out")
    missing = tmp_path / "not-shared" / "clip.mp4"
    jobs[1] = ShotJob(missing, 0.0, 1.0, 0.0, 0.0, None, 1, jobs[1].output)
    jobs.append(ShotJob(clips[0], 0.0, 1.0, 0.0, 0.0, None, 1, tmp_path / "no-such-folder" / "x.wav"))
    ended: list[int] = []
    with (
        RayGenerator(SETTINGS, RayOptions("local"), checkpoint="tiny-random") as generator,
        pytest.raises(GeneratorUnavailable) as error,
    ):
        generator.run(jobs, lambda i, f, s: None, lambda i, e: ended.append(i))
    import ray

    node = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"  # the one node: this machine
    message = str(error.value)
    assert message.startswith(f"Ray node {node} does not see the run's files")
    assert f"{missing}: not found" in message
    assert f"{tmp_path / 'no-such-folder'}: output folder not found" in message
    assert ended == [] and list((tmp_path / "out").iterdir()) == []  # nothing was generated


def test_a_shot_written_while_ctrl_c_stops_the_run_is_still_reported_finished(
    ray_local: RaySession, clips: list[Path], tmp_path: Path
) -> None:
    """Ctrl-C the moment the first file of a batch is in place: that shot's end (in the same answer as
    its progress, or in the next) still reaches ``finished``, so fill records it and ``--resume`` keeps
    it. The batch's other shots are written or cancelled, depending on when the cancel lands; either
    way a file on disk is a shot reported finished, and nothing else is left."""
    jobs = _jobs(clips, tmp_path / "out")
    ended: dict[int, Exception | None] = {}

    def progress(i: int, fraction: float, stage: str) -> None:
        if stage == "write":
            raise KeyboardInterrupt

    options = RayOptions("local", max_actors=1, batch_size=len(jobs))
    with pytest.raises(KeyboardInterrupt):
        RayGenerator(SETTINGS, options, checkpoint="tiny-random").run(jobs, progress, ended.__setitem__)
    assert len(ended) >= 1 and all(error is None for error in ended.values())
    finished = {jobs[i].output.name for i in ended}
    assert {p.name for p in (tmp_path / "out").iterdir()} == finished | {f"{name}.json" for name in finished}
