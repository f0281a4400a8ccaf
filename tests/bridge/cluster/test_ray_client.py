"""``--ray ray://HOST:PORT``: a cluster started with ``ray start --head`` (in its own process group, stopped
by signalling that group: never ``ray stop``, which stops every Ray on the machine), joined through Ray
Client, generates the same samples as a local run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("ray")

from media_factory import make_test_video  # noqa: E402

from visage.bridge.cluster.ray_generator import RayGenerator, RayOptions  # noqa: E402
from visage.bridge.fill.generators import GenerationSettings, LocalGenerator, ShotJob  # noqa: E402

SETTINGS = GenerationSettings()
START_S = 90.0  # the head's first start imports Ray's dashboard modules: slow on a busy machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def head(tiny_bundle_cache: Path) -> Iterator[str]:
    """``ray start --head --block`` on this machine; yields its Ray Client address."""
    client_port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Unix socket paths must stay short
    # grpcio's fork handlers break the client server Ray forks for each client ("epoll_wait error: Bad
    # file descriptor"); the head runs without them.
    env = dict(os.environ, GRPC_ENABLE_FORK_SUPPORT="0", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus=2"]
    command += [f"--port={_free_port()}", f"--ray-client-server-port={client_port}"]
    command += ["--include-dashboard=false", f"--object-store-memory={100 * 1024 * 1024}"]
    command += [f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("ray start --head did not open its client port")
                time.sleep(0.2)
        yield f"ray://127.0.0.1:{client_port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # what outlived the head's own stop
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


def test_a_cluster_joined_through_ray_client_gives_the_local_samples(
    head: str, pipeline: object, tmp_path: Path
) -> None:
    clips = []
    for i, seconds in enumerate((1.0, 1.2)):
        clips.append(make_test_video(tmp_path / f"clip{i}.mp4", duration=seconds, seed=i).path)
    out = [tmp_path / f"ray{i}.wav" for i in range(len(clips))]
    jobs = [ShotJob(c, 0.0, 0.9, 20.0 * i, 0.0, None, 7 + i, out[i]) for i, c in enumerate(clips)]
    ended: list[tuple[int, Exception | None]] = []
    notes: list[str] = []
    with RayGenerator(SETTINGS, RayOptions(head), checkpoint="tiny-random", log=notes.append) as generator:
        generator.run(jobs, lambda i, f, s: None, lambda i, error: ended.append((i, error)))
    assert sorted(ended) == [(0, None), (1, None)]
    assert notes and notes[0].startswith("Ray 2.") and f"at {head}" in notes[0]
    here = LocalGenerator(SETTINGS, pipeline=pipeline)  # type: ignore[arg-type]
    for job in jobs:
        local = job.output.with_name(f"local-{job.output.name}")
        here.run([replace(job, output=local)], lambda i, f, s: None, lambda i, e: None)
        assert np.array_equal(_samples(job.output), _samples(local)), job.output.name


def _samples(path: Path) -> np.ndarray:
    data, _ = sf.read(str(path), dtype="int32")
    return data
