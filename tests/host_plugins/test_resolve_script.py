"""The DaVinci Resolve script against a recorded fake of Resolve's scripting API and a live daemon.

Resolve cannot run here. The fakes implement the documented surface the script uses (Blackmagic's
scripting README, 2026-07) and its measured failure modes: ``None`` for missing objects,
``GetSelectedClips`` returning None before 21.0.4, WAV clips adopting the project's frame rate, and
``AppendToTimeline`` silently dropping a clip (returning a phantom item) when it would overlap.
Every call is recorded so the tests check the exact sequence and arguments.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine, quick_timing, verify_no_leaks  # noqa: F401

from visage.bridge.daemon import Daemon
from visage.model.features.direction import load_direction_curve

SCRIPT = Path(__file__).resolve().parents[2] / "host_plugins" / "resolve" / "visage_resolve.py"
TIMELINE_START = 86400  # 01:00:00:00 at 24 fps


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("visage_resolve_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # not __main__ and no `resolve` global: main() does not run
    return module


class Calls(list):  # type: ignore[type-arg]
    def names(self) -> list[str]:
        return [name for name, _ in self]


class Fake:
    """Records ``Owner.Method(args)`` into the shared call log."""

    _ids = itertools.count(1)

    def __init__(self, calls: Calls, label: str) -> None:
        self._calls, self._label = calls, label

    def _log(self, method: str, *args: Any) -> None:
        self._calls.append((f"{self._label}.{method}", args))


class MediaPoolItem(Fake):
    def __init__(
        self, calls: Calls, path: str, fps: str, *, markers: dict | None = None, metadata: dict | None = None
    ) -> None:
        super().__init__(calls, "MediaPoolItem")
        self.path, self.fps, self.markers, self.metadata = path, fps, markers or {}, metadata or {}
        self.media_id = f"mpi-{next(self._ids)}"

    def GetClipProperty(self, name: str) -> str:
        self._log("GetClipProperty", name)
        return {"File Path": self.path, "FPS": self.fps}.get(name, "")

    def GetMarkers(self) -> dict:
        self._log("GetMarkers")
        return self.markers

    def GetMetadata(self, name: str) -> str:
        self._log("GetMetadata", name)
        return self.metadata.get(name, "")

    def GetMediaId(self) -> str:
        return self.media_id

    def GetName(self) -> str:
        return Path(self.path).name


class TimelineItem(Fake):
    def __init__(
        self,
        calls: Calls,
        name: str,
        *,
        start: int,
        duration: int,
        left: int,
        media: MediaPoolItem | None,
        track: tuple[str, int] = ("video", 1),
        markers: dict | None = None,
        source_span: int | None = None,
    ) -> None:
        super().__init__(calls, f"Item[{name}]")
        self.name, self.start, self.duration, self.left, self.media = name, start, duration, left, media
        self.track, self.markers = track, markers or {}
        self.source_span = duration if source_span is None else source_span

    def GetName(self) -> str:
        return self.name

    def GetStart(self) -> int:
        return self.start

    def GetEnd(self) -> int:
        return self.start + self.duration

    def GetDuration(self) -> int:
        self._log("GetDuration")
        return self.duration

    def GetLeftOffset(self) -> int:
        self._log("GetLeftOffset")
        return self.left

    def GetSourceStartFrame(self) -> int:
        return self.left

    def GetSourceEndFrame(self) -> int:
        return self.left + self.source_span

    def GetMediaPoolItem(self) -> MediaPoolItem | None:
        return self.media

    def GetMarkers(self) -> dict:
        self._log("GetMarkers")
        return self.markers

    def GetTrackTypeAndIndex(self) -> list:
        return list(self.track)


class Timeline(Fake):
    def __init__(
        self,
        calls: Calls,
        rate: str,
        *,
        selected: list | None,
        current: TimelineItem | None,
        audio: list[tuple[str, list[TimelineItem]]],
        drop_appends: bool = False,
    ) -> None:
        super().__init__(calls, "Timeline")
        self.rate, self.selected, self.current, self.audio, self.drop_appends = (
            rate,
            selected,
            current,
            audio,
            drop_appends,
        )

    def GetSetting(self, name: str) -> str:
        self._log("GetSetting", name)
        return self.rate if name == "timelineFrameRate" else ""

    def GetSelectedClips(self) -> list | None:
        self._log("GetSelectedClips")
        return self.selected

    def GetCurrentVideoItem(self) -> TimelineItem | None:
        self._log("GetCurrentVideoItem")
        return self.current

    def GetTrackCount(self, kind: str) -> int:
        self._log("GetTrackCount", kind)
        return len(self.audio) if kind == "audio" else 1

    def GetItemListInTrack(self, kind: str, index: int) -> list:
        self._log("GetItemListInTrack", kind, index)
        return list(self.audio[index - 1][1]) if kind == "audio" else []

    def GetTrackSubType(self, kind: str, index: int) -> str:
        self._log("GetTrackSubType", kind, index)
        return self.audio[index - 1][0]

    def AddTrack(self, kind: str, sub_type: str) -> bool:
        self._log("AddTrack", kind, sub_type)
        self.audio.append((sub_type, []))
        return True

    def SetTrackName(self, kind: str, index: int, name: str) -> bool:
        self._log("SetTrackName", kind, index, name)
        return True


class Folder(Fake):
    def __init__(self, calls: Calls, name: str) -> None:
        super().__init__(calls, f"Folder[{name}]")
        self.name, self.subfolders = name, []

    def GetName(self) -> str:
        return self.name

    def GetSubFolderList(self) -> list:
        self._log("GetSubFolderList")
        return list(self.subfolders)


class MediaPool(Fake):
    def __init__(self, calls: Calls, timeline: Timeline, project_rate: str) -> None:
        super().__init__(calls, "MediaPool")
        self.root, self.timeline, self.project_rate = Folder(calls, "Master"), timeline, project_rate
        self.imported: list[MediaPoolItem] = []

    def GetRootFolder(self) -> Folder:
        self._log("GetRootFolder")
        return self.root

    def AddSubFolder(self, parent: Folder, name: str) -> Folder:
        self._log("AddSubFolder", parent.name, name)
        folder = Folder(self._calls, name)
        parent.subfolders.append(folder)
        return folder

    def SetCurrentFolder(self, folder: Folder) -> bool:
        self._log("SetCurrentFolder", folder.name)
        return True

    def ImportMedia(self, paths: list[str]) -> list[MediaPoolItem]:
        self._log("ImportMedia", list(paths))
        items = [MediaPoolItem(self._calls, p, self.project_rate) for p in paths if Path(p).is_file()]
        self.imported += items
        return items

    def AppendToTimeline(self, infos: list[dict]) -> list[TimelineItem]:
        self._log("AppendToTimeline", [dict(i) for i in infos])
        placed = []
        for info in infos:
            item = TimelineItem(
                self._calls,
                "ambix",
                start=info["recordFrame"],
                left=info["startFrame"],
                duration=info["endFrame"] - info["startFrame"],
                media=info["mediaPoolItem"],
                track=("audio", info["trackIndex"]),
            )
            lane = self.timeline.audio[info["trackIndex"] - 1][1]
            overlap = any(o.GetStart() < item.GetEnd() and item.GetStart() < o.GetEnd() for o in lane)
            if not (overlap or self.timeline.drop_appends):
                lane.append(item)
            placed.append(item)  # Resolve returns an item even when it dropped the clip
        return placed


class Project(Fake):
    def __init__(self, calls: Calls, timeline: Timeline, rate: str) -> None:
        super().__init__(calls, "Project")
        self.timeline, self.pool = timeline, MediaPool(calls, timeline, rate)

    def GetCurrentTimeline(self) -> Timeline:
        self._log("GetCurrentTimeline")
        return self.timeline

    def GetMediaPool(self) -> MediaPool:
        self._log("GetMediaPool")
        return self.pool

    def GetSetting(self, name: str) -> str:
        return self.pool.project_rate


class ProjectManager(Fake):
    def __init__(self, calls: Calls, project: Project | None) -> None:
        super().__init__(calls, "ProjectManager")
        self.project = project

    def GetCurrentProject(self) -> Project | None:
        self._log("GetCurrentProject")
        return self.project

    def SaveProject(self) -> bool:
        self._log("SaveProject")
        return True


class Resolve(Fake):
    def __init__(
        self, calls: Calls, project: Project | None, product: str = "DaVinci Resolve Studio"
    ) -> None:
        super().__init__(calls, "Resolve")
        self.manager, self.product = ProjectManager(calls, project), product

    def GetProductName(self) -> str:
        self._log("GetProductName")
        return self.product

    def GetProjectManager(self) -> ProjectManager:
        self._log("GetProjectManager")
        return self.manager


# ------------------------------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), fast_engine(seconds=10.0)) as running:
        yield running


@pytest.fixture
def script(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_script()
    address = address_of(daemon)
    monkeypatch.setattr(module, "VISAGE_DAEMON", f"{address.host}:{address.port}")
    monkeypatch.setattr(module.time, "sleep", lambda _: None)  # the poll loop reads the socket itself
    return module


def media(tmp_path: Path, name: str = "shot.mov") -> str:
    path = tmp_path / "media" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypqt  " + bytes(range(256)) * 4)
    return str(path)


def world(
    tmp_path: Path,
    *,
    item_kwargs: dict | None = None,
    audio: list | None = None,
    selected: bool = True,
    drop_appends: bool = False,
    rate: str = "23.976",
) -> tuple[Calls, Resolve, Timeline, TimelineItem]:
    calls = Calls()
    clip = MediaPoolItem(calls, media(tmp_path), rate)
    values: dict[str, Any] = {"start": TIMELINE_START + 100, "duration": 48, "left": 24, "media": clip}
    values.update(item_kwargs or {})
    item = TimelineItem(calls, "shot", **values)
    timeline = Timeline(
        calls,
        rate,
        selected=[item] if selected else None,
        current=item,
        audio=audio if audio is not None else [],
        drop_appends=drop_appends,
    )
    return calls, Resolve(calls, Project(calls, timeline, rate)), timeline, item


def sidecar(output: str) -> dict:
    return json.loads(Path(output + ".json").read_text())  # the sidecar: OUT.wav -> OUT.wav.json


def test_places_the_result_on_a_new_adaptive4_track(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markers = {
        0.0: {"name": "yaw=30 pitch=0", "note": "", "color": "Blue", "duration": 1.0, "customData": ""},
        24.0: {
            "name": "Marker 2",
            "note": "yaw=-20 pitch=10",
            "color": "Blue",
            "duration": 1.0,
            "customData": "",
        },
    }
    stereo = [
        TimelineItem(
            Calls(), "dialogue", start=TIMELINE_START, duration=1000, left=0, media=None, track=("audio", 1)
        )
    ]
    calls, resolve, timeline, item = world(
        tmp_path, item_kwargs={"markers": markers}, audio=[("stereo", stereo)]
    )

    assert script.main(resolve) == 0, capsys.readouterr().out

    (wav_clip,) = resolve.manager.project.pool.imported
    output = wav_clip.path
    # Range: 24 frames in at 23.976 = 1.001 s, 48 frames long; markers (item offsets) make a curve.
    assert sidecar(output)["start"] == pytest.approx(1.001) and sidecar(output)["end"] == pytest.approx(3.003)
    curve = load_direction_curve(Path(output).with_suffix(".direction.json"))
    assert curve.times_s == pytest.approx((1.001, 2.002)) and curve.yaws_deg == (30.0, -20.0)
    assert Path(output).parent == Path(item.media.path).parent / "visage_ambisonics"
    placing = calls[calls.names().index("MediaPool.GetRootFolder") :]
    assert placing == [
        ("MediaPool.GetRootFolder", ()),
        ("Folder[Master].GetSubFolderList", ()),
        ("MediaPool.AddSubFolder", ("Master", "ViSAGe Ambisonics")),
        ("MediaPool.SetCurrentFolder", ("ViSAGe Ambisonics",)),
        ("MediaPool.ImportMedia", ([output],)),
        ("MediaPoolItem.GetClipProperty", ("FPS",)),
        ("Timeline.GetTrackCount", ("audio",)),
        ("Timeline.GetItemListInTrack", ("audio", 1)),
        ("Timeline.GetTrackSubType", ("audio", 1)),
        ("Timeline.AddTrack", ("audio", "adaptive4")),
        ("Timeline.GetTrackCount", ("audio",)),
        ("Timeline.SetTrackName", ("audio", 2, "FOA AmbiX (ACN/SN3D)")),
        (
            "MediaPool.AppendToTimeline",
            (
                [
                    {
                        "mediaPoolItem": wav_clip,
                        "startFrame": 0,
                        "endFrame": 48,
                        "recordFrame": TIMELINE_START + 100,
                        "trackIndex": 2,
                        "mediaType": 2,
                    }
                ],
            ),
        ),
        ("ProjectManager.SaveProject", ()),
        ("Timeline.GetItemListInTrack", ("audio", 2)),
    ]
    assert [i.GetStart() for i in timeline.audio[1][1]] == [TIMELINE_START + 100]
    assert "placed on audio track A2 (adaptive4)" in capsys.readouterr().out


def test_reuses_a_free_adaptive4_track_and_reads_metadata(script: Any, tmp_path: Path) -> None:
    busy = TimelineItem(
        Calls(), "x", start=TIMELINE_START, duration=50, left=0, media=None, track=("audio", 1)
    )
    calls, resolve, timeline, item = world(
        tmp_path, audio=[("adaptive4", [busy]), ("adaptive4", [])], selected=False
    )
    item.media.metadata = {"Comments": "shot on the rig, yaw=45 pitch=-5"}  # type: ignore[union-attr]
    assert script.main(resolve) == 0
    assert "Timeline.AddTrack" not in calls.names()
    assert calls.names().index("Timeline.GetSelectedClips") < calls.names().index(
        "Timeline.GetCurrentVideoItem"
    )
    append = next(args for name, args in calls if name == "MediaPool.AppendToTimeline")
    assert append[0][0]["trackIndex"] == 1  # track 1's clip ends at frame 86450, before the item starts
    output = resolve.manager.project.pool.imported[0].path
    assert (sidecar(output)["yaw"], sidecar(output)["pitch"]) == (45.0, -5.0)
    assert not Path(output).with_suffix(".direction.json").exists()  # one direction: no curve file


def test_a_dropped_append_is_detected(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls, resolve, timeline, _ = world(tmp_path, drop_appends=True)
    assert script.main(resolve) == 1
    out = capsys.readouterr().out
    assert "did not place the result on audio track 1" in out and "ViSAGe Ambisonics" in out
    assert calls.names()[-2:] == ["ProjectManager.SaveProject", "Timeline.GetItemListInTrack"]


def test_free_edition_points_to_the_otio_round_trip(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = Calls()
    assert script.main(Resolve(calls, None, product="DaVinci Resolve")) == 2
    assert "visage fill" in capsys.readouterr().out
    assert calls == [("Resolve.GetProductName", ())]
    assert script.get_resolve({}) is None  # outside Resolve and no DaVinciResolveScript module
    assert script.main(None) == 2
    assert "visage fill" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("item_kwargs", "message"),
    [
        ({"media": None}, "has no media pool clip"),
        ({"source_span": 96}, "is retimed"),
    ],
)
def test_items_that_cannot_be_sent(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], item_kwargs: dict, message: str
) -> None:
    calls, resolve, _, _ = world(tmp_path, item_kwargs=item_kwargs)
    assert script.main(resolve) == 1
    assert message in capsys.readouterr().out
    assert "MediaPool.ImportMedia" not in calls.names()


@pytest.mark.parametrize(
    "error", [ValueError("range starts before the media does"), PermissionError("read-only")]
)
def test_an_item_whose_request_cannot_be_built_fails_alone(
    script: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    def refuse(*args: Any) -> None:
        raise error

    monkeypatch.setattr(script, "build_request", refuse)
    calls, resolve, _, _ = world(tmp_path)
    assert script.main(resolve) == 1  # reported, not a traceback that stops the run
    assert str(error) in capsys.readouterr().out
    assert "MediaPool.ImportMedia" not in calls.names()


def test_item_without_a_file_and_media_outside_the_allowed_folders(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, resolve, _, item = world(tmp_path)
    item.media.path = ""  # type: ignore[union-attr]
    assert script.main(resolve) == 1
    assert "has no media file" in capsys.readouterr().out
    outside = Path(sys.prefix) / "pyvenv.cfg"  # exists, outside the daemon's --allow-dir
    item.media.path = str(outside)  # type: ignore[union-attr]
    assert script.main(resolve) == 1
    assert "--allow-dir" in capsys.readouterr().out


def test_no_daemon(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(script, "VISAGE_DAEMON", "127.0.0.1:9")
    monkeypatch.setattr("visage.host_plugins.common.host_client.SUBMIT_TIMEOUT_S", 0.3)
    calls, resolve, _, _ = world(tmp_path)
    assert script.main(resolve) == 1
    assert "No ViSAGe daemon is answering at 127.0.0.1:9" in capsys.readouterr().out
    assert "MediaPool.ImportMedia" not in calls.names()
