"""A node dies mid-run: on a two-node Ray cluster on this machine (head and worker, one CPU each, so one
actor on each), the worker node is removed while both actors are generating. Its shots go to the head's
actor; every shot of the fill ends exactly once, recorded in the manifest, with the samples a local run
gives. With no retries allowed, the lost shots fail alone, naming the node, and the rest succeed."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

ray = pytest.importorskip("ray")

import opentimelineio as otio  # noqa: E402
from media_factory import make_test_video  # noqa: E402
from opentimelineio.opentime import RationalTime, TimeRange  # noqa: E402
from ray._private import ray_constants  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from visage.bridge.cluster.ray_generator import RayGenerator, RayOptions, death_reason  # noqa: E402
from visage.bridge.fill.commands import add_fill_arguments, run_fill  # noqa: E402
from visage.bridge.fill.generators import (  # noqa: E402
    FinishedCallback,
    GenerationSettings,
    LocalGenerator,
    ProgressCallback,
    ShotJob,
)
from visage.bridge.fill.manifest import MANIFEST_NAME  # noqa: E402

SETTINGS = GenerationSettings()
STORE = 80 * 1024 * 1024
CLIPS_S = (1.0, 1.1, 1.2, 1.3)  # four media files, one shot each: two batches of two
# Node deaths are noticed within about a second (the defaults take ~15 s).
FAST_HEALTH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 2,
}


@pytest.fixture(scope="module")
def cluster(tiny_bundle_cache: Path) -> Iterator[Cluster]:
    head_args = {"num_cpus": 1, "object_store_memory": STORE, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**head_args, "_system_config": FAST_HEALTH})
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("media")
    paths = [folder / f"clip{i}.mp4" for i in range(len(CLIPS_S))]
    for i, (path, seconds) in enumerate(zip(paths, CLIPS_S, strict=True)):
        make_test_video(path, duration=seconds, seed=10 + i)
    return paths


class KillsANodeMidRun:
    """Wraps a generator: its actors first load on a warm-up run (so that both take their first batch of
    the real run at the same moment); then, once shots of both batches report progress, ``kill`` runs
    once, while both batches are generating. It records every end it passes on."""

    def __init__(self, inner: RayGenerator, kill: Callable[[], None], warm_up: list[ShotJob]) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.kill = kill
        self.warm_up = warm_up
        self.jobs: list[ShotJob] = []
        self.ends: list[tuple[int, str | None]] = []

    def run(self, jobs: Sequence[ShotJob], progress: ProgressCallback, finished: FinishedCallback) -> None:
        self.inner.run(self.warm_up, lambda i, f, s: None, lambda i, error: None)
        self.jobs = list(jobs)
        seen: set[int] = set()
        killed = False

        def watch(i: int, fraction: float, stage: str) -> None:
            nonlocal killed
            seen.add(i // 2)  # two actors, four shots: the batches are {0, 1} and {2, 3}
            if len(seen) == 2 and not killed:
                killed = True
                self.kill()
            progress(i, fraction, stage)

        def end(i: int, error: Exception | None) -> None:
            self.ends.append((i, None if error is None else str(error)))
            finished(i, error)

        self.inner.run(jobs, watch, end)
        assert killed, "the node was never removed: both batches must have run"

    def close(self) -> None:
        self.inner.close()


def _edit(clips: list[Path], path: Path) -> Path:
    rate = 24
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for i, (media, seconds) in enumerate(zip(clips, CLIPS_S, strict=True)):
        available = TimeRange(RationalTime(0, rate), RationalTime(round(seconds * rate), rate))
        used = TimeRange(RationalTime(0, rate), RationalTime(round((seconds - 0.1) * rate), rate))
        track.append(
            otio.schema.Clip(
                name=f"shot{i}",
                media_reference=otio.schema.ExternalReference(str(media), available),
                source_range=used,
            )
        )
    otio.adapters.write_to_file(otio.schema.Timeline(tracks=[track]), str(path))
    return path


def _warm_up(clips: list[Path], folder: Path) -> list[ShotJob]:
    """One short shot per actor, written apart from the run's folder."""
    out = folder / "warm-up"
    out.mkdir()
    return [ShotJob(clip, 0.0, 0.2, 0.0, 0.0, None, i, out / f"{i}.wav") for i, clip in enumerate(clips[:2])]


def _fill(edit: Path, out: Path, generator: Any) -> int:
    parser = argparse.ArgumentParser()
    add_fill_arguments(parser)
    args = parser.parse_args([str(edit), "-o", str(out), "--ray", "auto", "--no-progress", "--jobs", "2"])
    return run_fill(args, generator=generator)


def _remove_worker(cluster: Cluster) -> Callable[[], None]:
    """Add a worker node; the function returned kills it the way a machine dies: its worker processes
    (the actor's) first, all at once, then Ray's own (a raylet killed alone leaves them running a while)."""
    import psutil

    worker = cluster.add_node(num_cpus=1, object_store_memory=STORE)
    cluster.wait_for_nodes()

    def kill() -> None:
        (raylet,) = worker.all_processes[ray_constants.PROCESS_TYPE_RAYLET]
        for child in psutil.Process(raylet.process.pid).children(recursive=True):
            child.kill()
        cluster.remove_node(worker, allow_graceful=False)

    return kill


def test_a_dead_nodes_shots_are_retried_elsewhere_and_each_ends_once(
    cluster: Cluster, clips: list[Path], pipeline: object, tmp_path: Path
) -> None:
    losses: list[str] = []
    options = RayOptions("auto", batch_size=2, retries=2, placement_timeout_s=30)
    ray_generator = RayGenerator(SETTINGS, options, checkpoint="tiny-random", log=losses.append)
    generator = KillsANodeMidRun(ray_generator, _remove_worker(cluster), _warm_up(clips, tmp_path))
    assert _fill(_edit(clips, tmp_path / "cut.otio"), tmp_path / "out.otio", generator) == 0

    assert any("died" in line for line in losses), losses  # the fault path ran
    assert sorted(generator.ends) == [(i, None) for i in range(len(CLIPS_S))]  # each shot once, each made
    results = tmp_path / "out.ambix"
    manifest = json.loads((results / MANIFEST_NAME).read_text())["results"]
    recorded = sorted(entry["file"] for entry in manifest.values())
    assert recorded == sorted(p.name for p in results.glob("*.wav"))
    assert len(manifest) == len(CLIPS_S)
    assert not [p for p in results.iterdir() if p.name.startswith(".")]  # no temporaries left
    here = LocalGenerator(SETTINGS, pipeline=pipeline)  # type: ignore[arg-type]
    for job in generator.jobs:
        local = tmp_path / f"local-{job.output.name}"
        here.run([_to(job, local)], lambda i, f, s: None, lambda i, error: None)
        assert np.array_equal(_samples(job.output), _samples(local)), job.output.name


def test_without_retries_a_dead_nodes_shots_fail_alone_naming_it(
    cluster: Cluster, clips: list[Path], tmp_path: Path
) -> None:
    options = RayOptions("auto", batch_size=2, retries=0, placement_timeout_s=30)
    ray_generator = RayGenerator(SETTINGS, options, checkpoint="tiny-random")
    kill = _remove_worker(cluster)
    worker_ip = ray.util.get_node_ip_address()  # every node of this cluster runs on this machine
    generator = KillsANodeMidRun(ray_generator, kill, _warm_up(clips, tmp_path))
    assert _fill(_edit(clips, tmp_path / "cut.otio"), tmp_path / "out.otio", generator) == 1

    failed = [(i, error) for i, error in generator.ends if error is not None]
    made = [i for i, error in generator.ends if error is None]
    assert sorted(i for i, _ in generator.ends) == list(range(len(CLIPS_S)))  # each shot ended once
    assert len(failed) == 2 and len(made) == 2  # the dead node's batch failed; the other node's was made
    assert len({i // 2 for i, _ in failed}) == 1
    for _, error in failed:
        assert error is not None and error.startswith("actor on node ") and f"({worker_ip}) died: " in error
    results = tmp_path / "out.ambix"
    for i in made:
        assert generator.jobs[i].output.is_file()
    for i, _ in failed:
        assert not generator.jobs[i].output.exists()
    assert not [p for p in results.iterdir() if p.name.startswith(".")]


def test_ray_says_why_an_actor_died_in_a_few_words() -> None:
    node_died = (
        "The actor died unexpectedly before finishing this task.\n\tclass_name: ShotWorker\n"
        "\tactor_id: 7d8d\n\tpid: 27946\n\tip: 10.0.0.5\n"
        "The actor is dead because its node has died. Node Id: ab12\n"
    )
    assert death_reason(RuntimeError(node_died)) == "its node has died"
    killed = (
        "The actor died unexpectedly before finishing this task.\n"
        "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit "
        "detail: Worker unexpectedly exits with a connection error code 2. End of file. There are ..."
    )
    assert death_reason(RuntimeError(killed)) == (
        "its worker process has died (Worker unexpectedly exits with a connection error code 2)"
    )
    assert death_reason(RuntimeError("\nSomething else.\nmore")) == "Something else"
    bare = "The actor died unexpectedly before finishing this task."  # all Ray says of some deaths
    assert death_reason(RuntimeError(bare)) == "unexpectedly before finishing this task"
    raylet_gone = (  # what a poll gets when the actor's raylet is killed (ActorUnavailableError, Ray 2.48)
        "The actor acb1bc9e9eb97c126651ab4f01000000 is unavailable: The actor is temporarily unavailable: "
        "RpcError: RPC Error message: Socket closed; RPC Error details:  rpc_code: 14. The task may or may "
        "not have been executed on the actor."
    )
    assert death_reason(RuntimeError(raylet_gone)) == "it stopped answering (Socket closed)"


def _to(job: ShotJob, output: Path) -> ShotJob:
    from dataclasses import replace

    return replace(job, output=output)


def _samples(path: Path) -> np.ndarray:
    data, _ = sf.read(str(path), dtype="int32")
    return data
