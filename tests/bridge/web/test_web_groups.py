"""A `visage fill` run through the daemon shows on the page as one group: its jobs, counts, time left.

The run is the real command (`visage fill EDIT --daemon HOST:PORT`) on a shared sample edit, against the
fake engine; the expected counts are the edit's shots. `group_view`'s arithmetic is checked on jobs with
hand-picked times.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from bridge_fixtures import fake_settings, fast_engine
from media_factory import make_test_video
from web_client import EventStream, PageSession

from visage.bridge.daemon import Daemon
from visage.bridge.engine import GenerateSpec
from visage.bridge.errors import ErrorCode, RequestError
from visage.bridge.jobs import Job, JobState
from visage.bridge.osc_protocol import parse_options
from visage.bridge.web.job_views import group_view
from visage.model.cli import main as visage_main

# simple_cut.otio's four clips (file name, seconds of media), as tests/bridge/fill/test_fill.py makes them.
SIMPLE_CUT_MEDIA = [
    ("titles.mov", 0.40),
    ("wind-up.mov", 0.45),
    ("punchline.mov", 0.50),
    ("credits.mov", 0.55),
]


def test_a_fill_run_through_the_daemon_is_one_group(otio_samples_dir: Path, tmp_path: Path) -> None:
    media_root = tmp_path / "media"
    media_root.mkdir()
    for name, seconds in SIMPLE_CUT_MEDIA:
        make_test_video(media_root / name, duration=seconds, fps=24, size=(32, 24))
    settings = fake_settings(tmp_path, web_port=0)
    with Daemon(settings, fast_engine(seconds=1.0)) as daemon:  # results as long as any shot
        assert daemon.web_url is not None
        url = daemon.web_url.rstrip("/")
        page = PageSession(url).open()
        argv = [
            "fill",
            str(otio_samples_dir / "simple_cut.otio"),
            "-o",
            str(tmp_path / "cut.otio"),
            "--media-root",
            str(media_root),
            "--daemon",
            f"127.0.0.1:{daemon.udp_address[1]}",
            "--jobs",
            "2",
            "--no-progress",
        ]
        codes: list[int] = []
        with EventStream(url, page.cookie) as stream:
            run = threading.Thread(target=lambda: codes.append(visage_main(argv)))
            run.start()
            try:
                while True:  # the group's events count up to the whole run
                    name, data = stream.next_event()
                    if name == "group" and data["done"] + data["failed"] == len(SIMPLE_CUT_MEDIA):
                        break
            finally:
                run.join()
        assert codes == [0]
        groups = page.get("/api/groups").json()["groups"]
        jobs = page.get("/api/jobs").json()["jobs"]
    assert len(groups) == 1
    group = groups[0]
    assert group["id"].startswith("fill:cut.ambix:") and group["label"] == "fill cut.ambix"
    assert (group["total"], group["done"], group["failed"], group["running"], group["queued"]) == (
        4,
        4,
        0,
        0,
        0,
    )
    assert group["state"] == "finished" and group["eta_s"] is None
    assert len(jobs) == 4 and {(j["group"], j["source"], j["state"]) for j in jobs} == {
        (group["id"], "fill", "done")
    }


def _job(n: int, state: JobState, created: float, updated: float, total: int | None = 10) -> Job:
    spec = GenerateSpec(Path("/m.mp4"), 0.0, 1.0, 0.0, 0.0, None, 2.5, None, 48000, Path(f"/o/{n}.wav"), {})
    return Job(
        id=f"j{n}",
        seq=n,
        state=state,
        spec=spec,
        fingerprint="",
        created_at=created,
        updated_at=updated,
        group="fill:e:1",
        group_label="fill e",
        group_total=total,
    )


def test_the_time_left_follows_the_pace_so_far() -> None:
    # 10 jobs; by t=100 s after the first was submitted 3 are done and 1 failed: 4 per 100 s, 6 to go.
    jobs = [
        _job(0, JobState.DONE, 0.0, 30.0),
        _job(1, JobState.DONE, 0.0, 60.0),
        _job(2, JobState.ERROR, 0.0, 80.0),
    ]
    jobs += [_job(3, JobState.DONE, 0.0, 100.0), _job(4, JobState.RUNNING, 0.0, 100.0)]
    jobs += [_job(5, JobState.QUEUED, 0.0, 0.0), _job(6, JobState.ACCEPTED, 0.0, 0.0)]
    view = group_view("fill:e:1", jobs, now=101.0, idle_s=120.0)
    assert (view["done"], view["failed"], view["running"], view["queued"], view["total"]) == (3, 1, 1, 2, 10)
    assert view["state"] == "running" and view["eta_s"] == 6 * 100.0 / 4
    assert view["label"] == "fill e"


def test_a_group_waits_for_its_next_batch_until_it_goes_idle() -> None:
    jobs = [_job(0, JobState.DONE, 0.0, 10.0, total=4), _job(1, JobState.DONE, 0.0, 20.0, total=4)]
    assert group_view("g", jobs, now=25.0, idle_s=120.0)["state"] == "running"  # 2 of 4 submitted
    assert group_view("g", jobs, now=200.0, idle_s=120.0)["state"] == "finished"  # given up on
    unknown = [_job(0, JobState.DONE, 0.0, 10.0, total=None)]
    assert group_view("g", unknown, now=11.0, idle_s=120.0) | {"id": "g"} == {
        "id": "g",
        "label": "fill e",
        "total": None,
        "done": 1,
        "failed": 0,
        "running": 0,
        "queued": 0,
        "eta_s": None,
        "state": "finished",
    }


def test_group_options_are_kept_apart_from_the_engines() -> None:
    text = json.dumps(
        {"group": "fill:e:1", "group_label": "fill e", "group_total": 3, "binaural_preview": False}
    )
    options = parse_options(text)
    assert (options.group, options.group_label, options.group_total) == ("fill:e:1", "fill e", 3)
    assert dict(options.extra) == {"binaural_preview": False}  # what the engine and the cache key see
    assert parse_options(options.to_json()) == options


@pytest.mark.parametrize(
    "options",
    [
        {"group": ""},
        {"group": "g" * 201},
        {"group": 5},
        {"group_label": ["x"]},
        {"group_total": -1},
        {"group_total": 1.5},
    ],
)
def test_bad_group_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(RequestError) as refused:
        parse_options(json.dumps(options))
    assert refused.value.code is ErrorCode.BAD_OPTIONS and next(iter(options)) in refused.value.message
