"""`EventHub` on a real event loop: which job changes reach an open event stream, in which form."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from visage.bridge import const
from visage.bridge.engine import GenerateSpec
from visage.bridge.jobs import Job, JobState
from visage.bridge.osc_protocol import Accepted, Done, Progress, Reply
from visage.bridge.web.event_hub import EventHub


def _job(state: JobState, group: str | None = None) -> Job:
    spec = GenerateSpec(Path("/m.mp4"), 0.0, 1.0, 0.0, 0.0, None, 2.5, None, 48000, Path("/o/a.wav"), {})
    return Job(id="a", seq=1, state=state, spec=spec, fingerprint="", group=group)


def _events(stream: asyncio.Queue[bytes | None]) -> list[tuple[str, dict[str, object]]]:
    found = []
    while not stream.empty():
        item = stream.get_nowait()
        if item is None:
            found.append(("end", {}))
            continue
        name, data = item.decode().strip().split("\n")
        found.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return found


def _view(job: Job, reply: Reply | None) -> dict[str, object]:
    return {"state": job.state.value, "stage": reply.stage if isinstance(reply, Progress) else None}


def test_progress_of_one_stage_is_thinned_and_every_state_change_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(const, "WEB_PROGRESS_MIN_INTERVAL_S", 3600.0)  # only the first of each stage

    async def scenario() -> list[tuple[str, dict[str, object]]]:
        hub = EventHub(asyncio.get_running_loop(), _view, lambda group: {"id": group})
        stream = hub.subscribe()
        hub.on_job_change(_job(JobState.ACCEPTED), Accepted("a", 0))  # as the queue's thread calls it
        hub.on_job_change(_job(JobState.QUEUED), None)
        for fraction in (0.0, 0.1, 0.2):
            hub.on_job_change(_job(JobState.RUNNING), Progress("a", fraction, "running"))
        hub.on_job_change(_job(JobState.RUNNING), Progress("a", 0.9, "writing"))
        hub.on_job_change(_job(JobState.DONE), Done("a", "/o/a.wav", "/o/a.wav.json", False))
        await asyncio.sleep(0)
        hub.close()
        return _events(stream)

    events = asyncio.run(scenario())
    assert events == [
        ("job", {"state": "accepted", "stage": None}),
        ("job", {"state": "queued", "stage": None}),
        ("job", {"state": "running", "stage": "running"}),
        ("job", {"state": "running", "stage": "writing"}),
        ("job", {"state": "done", "stage": None}),
        ("end", {}),
    ]


def test_a_groups_changes_send_one_group_event() -> None:
    async def scenario() -> list[tuple[str, dict[str, object]]]:
        hub = EventHub(asyncio.get_running_loop(), _view, lambda group: {"id": group})
        stream = hub.subscribe()
        for state in (JobState.ACCEPTED, JobState.QUEUED, JobState.RUNNING, JobState.DONE):
            hub.job_changed(_job(state, group="fill:e:1"))
        await asyncio.sleep(1.0)  # past the group's coalescing delay
        return [event for event in _events(stream) if event[0] == "group"]

    assert asyncio.run(scenario()) == [("group", {"id": "fill:e:1"})]
