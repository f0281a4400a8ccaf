"""The DaVinci Resolve script against a fake built from Resolve's published scripting API, and a live daemon.

Resolve cannot run here. Each fake object has the methods Blackmagic's scripting README lists for its
class, with the argument counts given there (`README_METHODS`, from the README "Last Updated: 24 Jul
2026"; public copy: samuelgursky/davinci-resolve-mcp ``docs/reference/resolve_scripting_api.txt``),
not the methods the script happens to call; like a real Resolve object, any other attribute is ``None``
(``hasattr`` is always true, calling it fails: measured in that project's
``docs/reference/api-limitations.md``). Measured failure modes kept: ``None`` for missing objects, no
``Timeline.GetSelectedClips`` before 21.0.4, WAV clips adopting the project's frame rate, and
``AppendToTimeline`` silently dropping a clip (returning a phantom item) when it would overlap. Every
call is recorded so the tests check the exact sequence and arguments.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine

from visage.bridge import const as bridge_const
from visage.bridge.daemon import Daemon
from visage.model.features.direction import load_direction_curve

if TYPE_CHECKING:
    from conftest import BrokenZeroconf  # tests/host_plugins/conftest.py

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


# (fewest, most) positional arguments of the methods the README lists, per object; only the objects
# and methods that the fakes below implement (a fake method not listed here fails `test_the_fakes_...`).
MANY = 1_000  # AppendToTimeline(clip1, clip2, ...)
README_METHODS: dict[str, dict[str, tuple[int, int]]] = {
    "Resolve": {"GetProductName": (0, 0), "GetProjectManager": (0, 0)},
    "ProjectManager": {"GetCurrentProject": (0, 0), "SaveProject": (0, 0)},
    "Project": {"GetCurrentTimeline": (0, 0), "GetMediaPool": (0, 0), "GetSetting": (0, 1)},
    "MediaPool": {
        "GetRootFolder": (0, 0),
        "AddSubFolder": (2, 2),  # (folder, name)
        "SetCurrentFolder": (1, 1),
        "ImportMedia": (1, 1),  # ([items...]) or ([{clipInfo}])
        "AppendToTimeline": (1, MANY),
    },
    "Folder": {"GetName": (0, 0), "GetSubFolderList": (0, 0)},
    "MediaPoolItem": {
        "GetName": (0, 0),
        "GetMetadata": (0, 1),  # (metadataType=None)
        "GetMediaId": (0, 0),
        "GetMarkers": (0, 0),
        "GetClipProperty": (0, 1),  # (propertyName=None)
    },
    "Timeline": {
        "GetSetting": (0, 1),
        "GetSelectedClips": (0, 0),  # Resolve 21.0.4 and later
        "GetCurrentVideoItem": (0, 0),
        "GetTrackCount": (1, 1),  # (trackType)
        "GetItemListInTrack": (2, 2),  # (trackType, index)
        "GetTrackSubType": (2, 2),  # (trackType, trackIndex)
        "AddTrack": (1, 2),  # (trackType, subTrackType | newTrackOptions)
        "SetTrackName": (3, 3),  # (trackType, trackIndex, name)
    },
    "TimelineItem": {
        "GetName": (0, 0),
        "GetStart": (0, 1),  # (subframe_precision)
        "GetEnd": (0, 1),
        "GetDuration": (0, 1),
        "GetLeftOffset": (0, 1),
        "GetSourceStartFrame": (0, 0),
        "GetSourceEndFrame": (0, 0),
        "GetMediaPoolItem": (0, 0),
        "GetMarkers": (0, 0),
        "GetTrackTypeAndIndex": (0, 0),
    },
}
TRACK_TYPES = ("audio", "video", "subtitle")
AUDIO_TRACK_TYPES = (
    "mono stereo lrc lcr lrcs lcrs quad 5.0 5.0film 5.1 5.1film 7.0 7.0film 7.1 7.1film".split()
    + [f"adaptive{n}" for n in range(1, 37)]
)
CLIP_INFO_KEYS = {"mediaPoolItem", "startFrame", "endFrame", "mediaType", "trackIndex", "recordFrame"}


class Fake:
    """A Resolve object: the README's methods for `api` (argument counts checked), ``None`` for the rest.

    Calls are recorded into the shared log as ``Label.Method``.
    """

    api = ""
    _ids = itertools.count(1)

    def __init__(self, calls: Calls, label: str, *, missing: tuple[str, ...] = ()) -> None:
        self._calls, self._label, self._missing = calls, label, missing

    def __getattribute__(self, name: str) -> Any:
        if not name[:1].isupper():
            return object.__getattribute__(self, name)
        published = README_METHODS[type(self).api].get(name)
        if published is None or name in object.__getattribute__(self, "_missing"):
            return None  # what Resolve answers for a method it does not have
        method = object.__getattribute__(self, name)
        fewest, most = published

        def call(*args: Any, **kwargs: Any) -> Any:
            label = f"{type(self).api}.{name}"
            assert not kwargs, f"{label}: the README documents positional arguments only"
            assert fewest <= len(args) <= most, f"{label} takes {fewest}..{most} arguments, got {args!r}"
            return method(*args)

        return call

    def _log(self, method: str, *args: Any) -> None:
        self._calls.append((f"{self._label}.{method}", args))


class MediaPoolItem(Fake):
    api = "MediaPoolItem"

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
    api = "TimelineItem"

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
    api = "Timeline"

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
        # before Resolve 21.0.4 (``selected`` None) there is no GetSelectedClips
        super().__init__(calls, "Timeline", missing=("GetSelectedClips",) if selected is None else ())
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

    def _track(self, kind: str, index: int | None = None) -> None:
        assert kind in TRACK_TYPES, f"Timeline: track type {kind!r} is not one of {TRACK_TYPES}"
        count = len(self.audio) if kind == "audio" else 1
        if index is not None:
            assert 1 <= index <= count, f"Timeline: no {kind} track {index}"

    def GetCurrentVideoItem(self) -> TimelineItem | None:
        self._log("GetCurrentVideoItem")
        return self.current

    def GetTrackCount(self, kind: str) -> int:
        self._log("GetTrackCount", kind)
        self._track(kind)
        return len(self.audio) if kind == "audio" else 1

    def GetItemListInTrack(self, kind: str, index: int) -> list:
        self._log("GetItemListInTrack", kind, index)
        self._track(kind, index)
        return list(self.audio[index - 1][1]) if kind == "audio" else []

    def GetTrackSubType(self, kind: str, index: int) -> str:
        self._log("GetTrackSubType", kind, index)
        self._track(kind, index)
        return self.audio[index - 1][0]

    def AddTrack(self, kind: str, sub_type: str) -> bool:
        self._log("AddTrack", kind, sub_type)
        assert kind == "audio" and sub_type in AUDIO_TRACK_TYPES, (kind, sub_type)
        self.audio.append((sub_type, []))
        return True

    def SetTrackName(self, kind: str, index: int, name: str) -> bool:
        self._log("SetTrackName", kind, index, name)
        self._track(kind, index)
        return True


class Folder(Fake):
    api = "Folder"

    def __init__(self, calls: Calls, name: str) -> None:
        super().__init__(calls, f"Folder[{name}]")
        self.name, self.subfolders = name, []

    def GetName(self) -> str:
        return self.name

    def GetSubFolderList(self) -> list:
        self._log("GetSubFolderList")
        return list(self.subfolders)


class MediaPool(Fake):
    api = "MediaPool"

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
            assert set(info) <= CLIP_INFO_KEYS and "mediaPoolItem" in info, sorted(info)
            assert info.get("mediaType", 1) in (1, 2), info["mediaType"]
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
    api = "Project"

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
    api = "ProjectManager"

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
    api = "Resolve"

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
    selected: bool | None = True,  # None: Resolve before 21.0.4 (no GetSelectedClips)
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
        selected=None if selected is None else [item] if selected else [],
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


def test_the_fakes_are_the_published_api() -> None:
    """Every fake method is one the README lists; anything else is None, as on a real Resolve object."""
    fakes = [Resolve, ProjectManager, Project, MediaPool, Folder, MediaPoolItem, Timeline, TimelineItem]
    for fake in fakes:
        methods = {name for name in vars(fake) if name[:1].isupper()}
        assert methods <= set(README_METHODS[fake.api]), (fake.api, methods - set(README_METHODS[fake.api]))
    calls = Calls()
    timeline = Timeline(calls, "24", selected=None, current=None, audio=[])
    assert timeline.GetSelectedClips is None  # before 21.0.4
    assert timeline.GetItemsInTrack is None  # not a Resolve method: hasattr is True, calling it fails
    with pytest.raises(AssertionError, match="takes 1..1 arguments"):
        timeline.GetTrackCount()
    with pytest.raises(AssertionError, match="track type 'Audio'"):
        timeline.GetTrackCount("Audio")
    with pytest.raises(AssertionError, match="positional arguments only"):
        timeline.GetItemListInTrack(trackType="audio", index=1)


@pytest.fixture
def auto_script(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The script as installed for "auto" discovery (the default), polling without sleeping."""
    module = load_script()
    assert module.VISAGE_DAEMON == "auto"
    monkeypatch.setattr(module.time, "sleep", lambda _: None)
    return module


def test_a_zeroconf_that_does_not_import_is_reported_and_the_default_address_used(
    auto_script: Any,
    daemon: Daemon,
    broken_zeroconf: BrokenZeroconf,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Item 16: Resolve's Python finds the environment's zeroconf but cannot import it."""
    monkeypatch.setattr(bridge_const, "DEFAULT_UDP_PORT", address_of(daemon).port)  # the fallback's port
    _, resolve, _, _ = world(tmp_path, selected=None)  # a Resolve before 21.0.4: the item under the playhead
    assert auto_script.main(resolve) == 0
    out = capsys.readouterr().out
    assert "ZeroConf" in out and broken_zeroconf.error in out and "placed on audio track" in out


def test_another_python_than_the_recorded_one_is_reported(
    script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.setattr(script, "VISAGE_PYTHON", "3.99")
    _, resolve, _, _ = world(tmp_path)
    assert script.main(resolve) == 0  # what imported still works
    assert f"Resolve runs Python {running}, but `visage hosts install` recorded Python 3.99" in (
        capsys.readouterr().out
    )


def test_a_client_that_does_not_import_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "visage.bridge.client", None)  # importing it raises ImportError
    calls, resolve, _, _ = world(tmp_path)
    assert load_script().main(resolve) == 2
    assert "cannot import the visage client" in capsys.readouterr().out
    assert "MediaPool.ImportMedia" not in calls.names()
