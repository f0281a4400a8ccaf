"""`visage serve --ray`: the daemon's engine on a local Ray instance (two CPU actors, tiny-random models).

A job sent to a daemon on Ray gives the samples the daemon's own engine gives; a job cancelled while
queued or while generating stops alone; a batch whose files a node cannot see fails with the node's
name and leaves the actors for the next batch; options that cannot go with ``--ray`` are refused before
Ray starts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("ray")

from bridge_fixtures import address_of, fake_settings  # noqa: E402
from media_factory import make_test_video  # noqa: E402

from visage.bridge.cli import add_serve_arguments, run_serve  # noqa: E402
from visage.bridge.client import VisageClient  # noqa: E402
from visage.bridge.cluster.ray_engine import RayEngine  # noqa: E402
from visage.bridge.cluster.ray_generator import RayOptions  # noqa: E402
from visage.bridge.cluster.shot_actor import ShotWorker  # noqa: E402
from visage.bridge.daemon import Daemon  # noqa: E402
from visage.bridge.engine import (  # noqa: E402
    CancelledCallback,
    GenerateSpec,
    JobDone,
    JobFailed,
    JobOutcome,
    ProgressCallback,
)
from visage.model.inference.daemon_engine import VisageEngine  # noqa: E402


@pytest.fixture(scope="module")
def ray_engine(tiny_bundle_cache: Path) -> Iterator[RayEngine]:
    """One engine for the module: it starts a local Ray instance and its two actors load the model."""
    options = RayOptions("local", batch_size=2, local_cpus=2, local_object_store_mb=100)
    engine = RayEngine("tiny-random", options)
    yield engine
    engine.close()


class _Outliving:
    """The module's engine, lent to a daemon: closing the daemon leaves the engine to the next test."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine
        self.model_id = engine.model_id
        self.device = engine.device

    def batch_key(self, spec: GenerateSpec) -> Hashable:
        return self.engine.batch_key(spec)

    def run_batch(
        self, specs: Sequence[GenerateSpec], progress: ProgressCallback, cancelled: CancelledCallback
    ) -> list[JobOutcome]:
        return self.engine.run_batch(specs, progress, cancelled)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=1.6, seed=3).path


def _spec(video: Path, output: Path, yaw: float = 30.0, seed: int = 7) -> GenerateSpec:
    return GenerateSpec(video, 0.0, 1.5, yaw, 0.0, None, 2.5, seed, 48000, output, {})


def _samples(path: Path) -> np.ndarray:
    data, _ = sf.read(str(path), dtype="int32")
    return data


def test_a_daemon_on_ray_gives_the_samples_of_the_daemons_own_engine(
    ray_engine: RayEngine, video: Path, pipeline: object, tmp_path: Path
) -> None:
    assert ray_engine.model_id == "tiny-random" and ray_engine.device == "ray (2 actors)"
    settings = fake_settings(tmp_path, model="tiny-random", allow_dirs=(tmp_path, video.parent))
    outputs = [tmp_path / "left.wav", tmp_path / "right.wav"]
    with Daemon(settings, _Outliving(ray_engine)) as daemon, VisageClient(address_of(daemon)) as client:  # type: ignore[arg-type]
        assert client.ping().model_id == "tiny-random"
        ids = [
            client.submit(video, yaw=yaw, pitch=0.0, start=0.0, end=1.5, output=out, guidance=2.5, seed=7)
            for yaw, out in zip((60.0, -60.0), outputs, strict=True)
        ]
        results = [client.wait(job_id) for job_id in ids]
    assert [Path(r.output) for r in results] == outputs
    sidecar = json.loads(outputs[0].with_name("left.wav.json").read_text())
    assert sidecar["request"]["daemon_model_id"] == "tiny-random"  # the daemon engine's metadata, as here
    assert outputs[0].with_name("left.binaural.wav").is_file()  # the daemon's headphone preview too

    here = VisageEngine(pipeline, "tiny-random")  # type: ignore[arg-type]
    local = [tmp_path / "local-left.wav", tmp_path / "local-right.wav"]
    specs = [_spec(video, out, yaw) for yaw, out in zip((60.0, -60.0), local, strict=True)]
    assert all(isinstance(o, JobDone) for o in here.run_batch(specs, lambda *a: None, lambda i: False))
    for on_ray, made_here in zip(outputs, local, strict=True):
        assert np.array_equal(_samples(on_ray), _samples(made_here)), on_ray.name


def test_a_job_cancelled_while_queued_ends_alone_and_writes_nothing(
    ray_engine: RayEngine, video: Path, tmp_path: Path
) -> None:
    specs = [_spec(video, tmp_path / f"{i}.wav", seed=i) for i in range(3)]
    outcomes = ray_engine.run_batch(specs, lambda *a: None, lambda i: i == 1)
    assert isinstance(outcomes[0], JobDone) and isinstance(outcomes[2], JobDone)
    assert outcomes[1] == JobFailed("cancelled", "cancelled")
    assert (tmp_path / "0.wav").is_file() and (tmp_path / "2.wav").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("1.", ".1."))]


def test_a_job_cancelled_while_it_generates_stops_on_its_actor(
    ray_engine: RayEngine, video: Path, tmp_path: Path
) -> None:
    """Cancelled once its actor reports it generating: a long clip (many windows, one round each) so
    that the cancel lands long before its last decoder step; the other job of the batch is made."""
    (tmp_path / "media").mkdir()
    long = make_test_video(tmp_path / "media" / "long.mp4", duration=20.0, size=(64, 48), seed=5).path
    specs = [
        _spec(video, tmp_path / "short.wav"),
        GenerateSpec(long, 0.0, 19.5, 0.0, 0.0, None, 2.5, 1, 48000, tmp_path / "long.wav", {}),
    ]
    generating: set[int] = set()

    def progress(i: int, fraction: float, stage: str) -> None:
        if stage == "generate":
            generating.add(i)

    outcomes = ray_engine.run_batch(specs, progress, lambda i: i == 1 and i in generating)
    assert 1 in generating and outcomes[1] == JobFailed("cancelled", "cancelled")
    assert isinstance(outcomes[0], JobDone)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("long.", ".long."))]


def test_an_actor_stops_the_shots_it_is_told_to_and_only_those(
    tiny_bundle_cache: Path, video: Path, tmp_path: Path
) -> None:
    """The actor's class in this process: the cancel may come before its batch starts (Ray runs the
    actor's calls on several threads), and a cancel of another batch changes nothing."""
    worker = ShotWorker("tiny-random", "cpu", 1, None)
    worker.load()
    worker.cancel(7, [11])  # before the batch
    worker.cancel(6, None)  # an older batch
    worker.start(7, [(10, _spec(video, tmp_path / "kept.wav")), (11, _spec(video, tmp_path / "stopped.wav"))])
    ends = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        news = worker.poll(7, 1.0)
        ends.update({e.index: (e.error, e.code) for e in news.events if e.ended})
        if news.over:
            break
    assert ends == {10: (None, None), 11: ("cancelled", "cancelled")}
    assert (tmp_path / "kept.wav").is_file() and not [p for p in tmp_path.iterdir() if "stopped" in p.name]


def test_a_batch_a_node_cannot_see_fails_naming_the_node_and_the_next_runs(
    ray_engine: RayEngine, video: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "only-on-the-daemon" / "clip.mp4"
    outcomes = ray_engine.run_batch([_spec(missing, tmp_path / "x.wav")], lambda *a: None, lambda i: False)
    assert isinstance(outcomes[0], JobFailed) and outcomes[0].code == "engine_error"
    assert "does not see the run's files" in outcomes[0].message
    assert f"{missing}: not found" in outcomes[0].message
    after = ray_engine.run_batch([_spec(video, tmp_path / "y.wav")], lambda *a: None, lambda i: False)
    assert isinstance(after[0], JobDone)


def test_a_job_whose_files_a_node_cannot_see_fails_alone_in_its_batch(
    ray_engine: RayEngine, video: Path, tmp_path: Path
) -> None:
    """A daemon's batch mixes unrelated jobs: one whose output folder was removed after it was accepted
    (or whose media only the daemon's machine sees) fails, the others of its batch are made."""
    gone = tmp_path / "removed-since" / "b.wav"
    specs = [
        _spec(video, tmp_path / "a.wav", seed=1),
        _spec(video, gone, seed=2),
        _spec(video, tmp_path / "c.wav", seed=3),
    ]
    outcomes = ray_engine.run_batch(specs, lambda *a: None, lambda i: False)
    assert isinstance(outcomes[0], JobDone) and isinstance(outcomes[2], JobDone)
    assert isinstance(outcomes[1], JobFailed) and outcomes[1].code == "engine_error"
    assert f"{gone.parent}: output folder not found" in outcomes[1].message
    assert (tmp_path / "a.wav").is_file() and (tmp_path / "c.wav").is_file()


def _serve_args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(extra))


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--model", "fake"], "--model fake runs only here"),
        (["--device", "cpu"], "--device does not go with --ray"),
        (["--ray-actors", "0"], "--ray-actors must be at least 1"),
        (["--ray", "ray://"], "ray://"),
    ],
)
def test_serve_refuses_what_does_not_go_with_ray_before_starting_it(
    extra: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _serve_args("--ray", "local", "--state-dir", str(tmp_path), *extra)
    assert run_serve(args) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("visage serve: ")]
    assert len(said) == 1 and says in said[0]
    assert not (tmp_path / "daemon.json").exists()


def test_serve_on_a_cluster_that_does_not_answer_says_so_at_once(tmp_path: Path) -> None:
    """In a process of its own: this module's process is already connected to its Ray instance."""
    command = [sys.executable, "-m", "visage.model.cli", "serve", "--ray", "127.0.0.1:1"]
    command += ["--state-dir", str(tmp_path), "--model", "tiny-random", "--no-zeroconf"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if line.startswith("visage serve: ")]
    assert said == [
        "visage serve: cannot start on Ray (127.0.0.1:1) with model 'tiny-random': "
        "--ray: no Ray cluster answered at 127.0.0.1:1: Connection refused"
    ]
