"""Cancelling one job of a shared batch answers at once; the batch's other jobs go on and finish."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bridge_fixtures import address_of, fake_settings, wait_for, write_media

from visage.bridge.client import JobFailed, VisageClient
from visage.bridge.daemon import Daemon
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.osc_protocol import Progress

BATCH_SECONDS = 2.5  # the fake engine's time for a whole batch


def _wait_until_running(client: VisageClient, job_id: str) -> None:
    def running() -> bool:
        return isinstance(client.status(job_id), Progress)

    wait_for(running, timeout_s=3 * BATCH_SECONDS, what=f"job {job_id} never ran")


def test_a_job_cancelled_inside_a_running_batch_is_answered_before_the_batch_ends(tmp_path: Path) -> None:
    media = write_media(tmp_path)
    engine = FakeEngine(FakeSettings(delay_s=BATCH_SECONDS, steps=80, seconds=0.05))
    out = tmp_path / "out"
    out.mkdir()
    with Daemon(fake_settings(tmp_path, max_batch=4), engine) as d, VisageClient(address_of(d)) as c:
        blocker = c.submit(media, yaw=0.0, pitch=0.0, end=0.1, output=out / "blocker.wav")
        _wait_until_running(c, blocker)  # the worker is busy: the next jobs queue up behind it
        ids = [
            c.submit(media, yaw=10.0 * (i + 1), pitch=0.0, end=0.1, output=out / f"{i}.wav") for i in range(3)
        ]
        c.wait(blocker, timeout_s=3 * BATCH_SECONDS)
        _wait_until_running(c, ids[1])  # with the other two: one batch of three (checked below)
        started = time.monotonic()
        c.cancel(ids[1])
        with pytest.raises(JobFailed) as info:
            c.wait(ids[1], timeout_s=BATCH_SECONDS)
        answered_s = time.monotonic() - started
        assert info.value.code == "cancelled"
        assert isinstance(c.status(ids[0]), Progress)  # the others are still running
        done = [c.wait(i, timeout_s=3 * BATCH_SECONDS) for i in (ids[0], ids[2])]
        finished_s = time.monotonic() - started
    assert engine.batch_sizes == [1, 3]
    assert answered_s < finished_s / 2, (answered_s, finished_s)
    assert [Path(r.output).name for r in done] == ["0.wav", "2.wav"]
    assert not (out / "1.wav").exists()
