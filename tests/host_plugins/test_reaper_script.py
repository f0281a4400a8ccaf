"""The REAPER ReaScript against a recorded fake of ``reaper_python`` and a live daemon.

REAPER cannot run here. The fake follows the Python ReaScript conventions of the generated
``reaper_python`` module: pointers are strings such as ``(MediaItem*)0x...``, a null pointer is
``(...)0x0000000000000000`` (truthy!), functions with output buffers return a tuple of the return value
(if any) followed by every argument with the buffers filled in, and ``RPR_defer``/``RPR_atexit`` take
code strings that REAPER runs in the script's namespace. Every call is recorded.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine, quick_timing, verify_no_leaks  # noqa: F401

from visage.bridge.daemon import Daemon

SCRIPT = Path(__file__).resolve().parents[2] / "host_plugins" / "reaper" / "visage_reaper.py"
MENU = SCRIPT.with_name("visage_reaper.ReaperMenu")


def pointer(kind: str, number: int) -> str:
    return f"({kind}*)0x{number:016X}"


@dataclass
class Item:
    position: float
    length: float
    take: str  # pointer (null for an empty item)
    track: int
    notes: str = ""


@dataclass
class Take:
    source: str
    name: str
    start_offset: float = 0.0
    play_rate: float = 1.0


@dataclass
class Track:
    name: str = ""
    channels: int = 2
    items: list[str] = field(default_factory=list)


class FakeReaper:
    """State of a REAPER project plus the call log; `module()` exposes it as ``reaper_python``."""

    def __init__(self, project_path: Path) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.project_path = project_path
        self.items: dict[str, Item] = {}
        self.takes: dict[str, Take] = {}
        self.sources: dict[str, tuple[str, float]] = {}  # pointer -> (file, length s)
        # section/reverse wrappers: pointer -> (parent pointer, offset s, length s, reversed)
        self.sections: dict[str, tuple[str, float, float, bool]] = {}
        self.tracks: list[str] = []
        self.track_data: dict[str, Track] = {}
        self.selected: list[str] = []
        self.ext: dict[tuple[str, str], str] = {}
        self.user_input: tuple[int, str] = (1, "-45,10")
        self.deferred: list[str] = []
        self.atexit: list[str] = []
        self.fail_source = False
        self._next = 0x1000

    def _ptr(self, kind: str) -> str:
        self._next += 1
        return pointer(kind, self._next)

    def add_track(self, name: str = "", channels: int = 2, index: int | None = None) -> str:
        ptr = self._ptr("MediaTrack")
        self.tracks.insert(len(self.tracks) if index is None else index, ptr)
        self.track_data[ptr] = Track(name, channels)
        return ptr

    def add_item(
        self,
        track: str,
        file: str | None,
        *,
        position: float,
        length: float,
        offset: float = 0.0,
        rate: float = 1.0,
        notes: str = "",
        source_length: float = 60.0,
        name: str = "clip",
        section: tuple[float, float, bool] | None = None,
    ) -> str:
        take = pointer("MediaItem_Take", 0)
        if file is not None:
            source = self._ptr("PCM_source")
            self.sources[source] = (file, source_length)
            if section is not None:  # the take plays a section of the file (or the file reversed)
                wrapper = self._ptr("PCM_source")
                self.sections[wrapper] = (source, *section)
                source = wrapper
            take = self._ptr("MediaItem_Take")
            self.takes[take] = Take(source, name, offset, rate)
        item = self._ptr("MediaItem")
        self.items[item] = Item(position, length, take, self.tracks.index(track), notes)
        self.track_data[track].items.append(item)
        return item

    def module(self) -> types.ModuleType:
        fake = types.ModuleType("reaper_python")
        for name in dir(self):
            if name.startswith("RPR_"):
                setattr(fake, name, self._recorded(name, getattr(self, name)))
        return fake

    def _recorded(self, name: str, function: Any) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            return function(*args)

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # -- the API (signatures as in reaper_python) -----------------------------------------------------

    def RPR_ShowConsoleMsg(self, text: str) -> None:
        pass

    def RPR_ShowMessageBox(self, text: str, title: str, kind: int) -> int:
        return 1

    def RPR_GetExtState(self, section: str, key: str) -> str:
        return self.ext.get((section, key), "")

    def RPR_SetExtState(self, section: str, key: str, value: str, persist: bool) -> None:
        self.ext[(section, key)] = value

    def RPR_GetUserInputs(self, title: str, n: int, captions: str, values: str, size: int) -> tuple:
        ok, answer = self.user_input
        return (ok, title, n, captions, answer if ok else values, size)

    def RPR_CountSelectedMediaItems(self, project: int) -> int:
        return len(self.selected)

    def RPR_GetSelectedMediaItem(self, project: int, index: int) -> str:
        return self.selected[index]

    def RPR_GetSetMediaItemInfo_String(self, item: str, parm: str, value: str, set_new: bool) -> tuple:
        assert parm == "P_NOTES" and not set_new
        return (True, item, parm, self.items[item].notes, set_new)

    def RPR_GetActiveTake(self, item: str) -> str:
        return self.items[item].take

    def RPR_GetTakeName(self, take: str) -> str:
        return self.takes[take].name

    def RPR_GetMediaItemTake_Source(self, take: str) -> str:
        return self.takes[take].source

    def RPR_GetMediaSourceParent(self, source: str) -> str:
        return self.sections[source][0] if source in self.sections else pointer("PCM_source", 0)

    def RPR_PCM_Source_GetSectionInfo(
        self, source: str, offset: float, length: float, reverse: bool
    ) -> tuple:
        if source not in self.sections:
            return (False, source, offset, length, reverse)
        return (True, source, *self.sections[source][1:])

    def RPR_GetMediaSourceFileName(self, source: str, buffer: str, size: int) -> tuple:
        return (source, self.sources[source][0] if source in self.sources else "", size)

    def RPR_GetMediaSourceLength(self, source: str, is_qn: bool) -> tuple:
        if source in self.sections:
            return (self.sections[source][2], source, False)
        return (self.sources[source][1], source, False)

    def RPR_ValidatePtr2(self, project: int, candidate: str, kind: str) -> bool:
        return kind == "MediaTrack*" and candidate in self.tracks

    def RPR_GetMediaItemTakeInfo_Value(self, take: str, parm: str) -> float:
        data = self.takes[take]
        return {"D_STARTOFFS": data.start_offset, "D_PLAYRATE": data.play_rate}[parm]

    def RPR_GetMediaItemInfo_Value(self, item: str, parm: str) -> float:
        data = self.items[item]
        return {"D_POSITION": data.position, "D_LENGTH": data.length}[parm]

    def RPR_GetProjectPath(self, buffer: str, size: int) -> tuple:
        return (str(self.project_path), size)

    def RPR_GetMediaItem_Track(self, item: str) -> str:
        return self.tracks[self.items[item].track]

    def RPR_GetMediaTrackInfo_Value(self, track: str, parm: str) -> float:
        if parm == "IP_TRACKNUMBER":
            return float(self.tracks.index(track) + 1)
        return float(self.track_data[track].channels)

    def RPR_CountTracks(self, project: int) -> int:
        return len(self.tracks)

    def RPR_GetTrack(self, project: int, index: int) -> str:
        return self.tracks[index] if index < len(self.tracks) else pointer("MediaTrack", 0)

    def RPR_CountTrackMediaItems(self, track: str) -> int:
        return len(self.track_data[track].items)

    def RPR_GetTrackMediaItem(self, track: str, index: int) -> str:
        return self.track_data[track].items[index]

    def RPR_GetSetMediaTrackInfo_String(self, track: str, parm: str, value: str, set_new: bool) -> tuple:
        if set_new:
            self.track_data[track].name = value
        return (True, track, parm, self.track_data[track].name, set_new)

    def RPR_InsertTrackAtIndex(self, index: int, defaults: bool) -> None:
        self.add_track(index=index)
        for item in self.items.values():
            if item.track >= index:
                item.track += 1

    def RPR_SetMediaTrackInfo_Value(self, track: str, parm: str, value: float) -> bool:
        assert parm == "I_NCHAN"
        self.track_data[track].channels = int(value)
        return True

    def RPR_Undo_BeginBlock2(self, project: int) -> None:
        pass

    def RPR_Undo_EndBlock2(self, project: int, description: str, flags: int) -> None:
        pass

    def RPR_PreventUIRefresh(self, count: int) -> None:
        pass

    def RPR_UpdateArrange(self) -> None:
        pass

    def RPR_AddMediaItemToTrack(self, track: str) -> str:
        item = self._ptr("MediaItem")
        self.items[item] = Item(0.0, 0.0, pointer("MediaItem_Take", 0), self.tracks.index(track))
        self.track_data[track].items.append(item)
        return item

    def RPR_AddTakeToMediaItem(self, item: str) -> str:
        take = self._ptr("MediaItem_Take")
        self.takes[take] = Take("", "")
        self.items[item].take = take
        return take

    def RPR_PCM_Source_CreateFromFile(self, path: str) -> str:
        if self.fail_source:
            return pointer("PCM_source", 0)
        source = self._ptr("PCM_source")
        self.sources[source] = (path, 0.0)
        return source

    def RPR_SetMediaItemTake_Source(self, take: str, source: str) -> bool:
        self.takes[take].source = source
        return True

    def RPR_SetMediaItemInfo_Value(self, item: str, parm: str, value: float) -> bool:
        setattr(self.items[item], {"D_POSITION": "position", "D_LENGTH": "length"}[parm], value)
        return True

    def RPR_SetMediaItemTakeInfo_Value(self, take: str, parm: str, value: float) -> bool:
        setattr(self.takes[take], {"D_STARTOFFS": "start_offset", "D_PLAYRATE": "play_rate"}[parm], value)
        return True

    def RPR_GetSetMediaItemTakeInfo_String(self, take: str, parm: str, value: str, set_new: bool) -> tuple:
        if set_new:
            self.takes[take].name = value
        return (True, take, parm, self.takes[take].name, set_new)

    def RPR_defer(self, code: str) -> None:
        self.deferred.append(code)

    def RPR_atexit(self, code: str) -> None:
        self.atexit.append(code)

    def RPR_AddRemoveReaScript(self, add: bool, section: int, path: str, commit: bool) -> int:
        return 54321

    def RPR_ReverseNamedCommandLookup(self, command: int) -> str:
        return "RS0123456789abcdef" if command == 54321 else ""


# ------------------------------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), fast_engine(seconds=10.0)) as running:
        yield running


@pytest.fixture
def reaper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeReaper:
    fake = FakeReaper(tmp_path / "project")
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    return fake


@pytest.fixture
def script(daemon: Daemon, reaper: FakeReaper, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("visage_reaper_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    address = address_of(daemon)
    monkeypatch.setattr(module, "VISAGE_DAEMON", f"{address.host}:{address.port}")
    yield module
    module.visage_reaper_atexit()  # as REAPER does when the script ends: nothing may keep running


def media(tmp_path: Path, name: str) -> str:
    path = tmp_path / "media" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(name.encode() * 64)
    return str(path)


def run_deferred(script: Any, reaper: FakeReaper, timeout_s: float = 10.0) -> int:
    """Run deferred code as REAPER does (in the script's namespace) until it stops re-deferring."""
    rounds, deadline = 0, time.monotonic() + timeout_s
    while reaper.deferred:
        code = reaper.deferred.pop(0)
        assert code == script.DEFER_CODE
        exec(code, vars(script))
        rounds += 1
        assert time.monotonic() < deadline
    return rounds


def sidecar(path: str) -> dict:
    return json.loads(Path(path + ".json").read_text())  # the sidecar: OUT.wav -> OUT.wav.json


def test_items_are_generated_and_inserted_on_an_ambix_track(
    script: Any, reaper: FakeReaper, tmp_path: Path
) -> None:
    video = reaper.add_track("Video")
    a = reaper.add_item(
        video,
        media(tmp_path, "a.mp4"),
        position=10.0,
        length=1.0,
        offset=2.0,
        rate=1.5,
        notes="rig: yaw=30 pitch=5",
        name="A",
    )
    b = reaper.add_item(video, media(tmp_path, "b.mp4"), position=20.0, length=1.0, offset=-0.5, name="B")
    empty = reaper.add_item(video, None, position=30.0, length=1.0)
    reaper.selected = [a, b, empty]
    installed = tmp_path / "scripts" / SCRIPT.name
    installed.parent.mkdir()
    installed.with_name(MENU.name).write_text(MENU.read_text())

    assert script.main(str(installed)) == 2
    assert reaper.atexit == [script.ATEXIT_CODE] and reaper.deferred == [script.DEFER_CODE]
    assert reaper.ext[("visage", "direction")] == "-45,10"  # asked once (B has no direction in its notes)
    assert "_RS0123456789abcdef ViSAGe: Generate ambisonics" in installed.with_name(MENU.name).read_text()
    assert run_deferred(script, reaper) >= 1

    ambix = reaper.tracks[1]  # inserted below the video track
    assert reaper.track_data[ambix].name == "FOA AmbiX (ACN/SN3D)" and reaper.track_data[ambix].channels == 4
    assert len(reaper.tracks) == 2  # the second result reused the AmbiX track (free there)
    placed = {
        reaper.takes[reaper.items[i].take].name: reaper.items[i] for i in reaper.track_data[ambix].items
    }
    take_a = reaper.takes[placed["A AmbiX"].take]
    # A plays source [2.0, 3.5] at rate 1.5: 1.0 s long at position 10; B starts 0.5 s late (lead-in).
    assert (placed["A AmbiX"].position, placed["A AmbiX"].length) == (10.0, 1.0)
    assert (take_a.play_rate, take_a.start_offset) == (1.5, 0.0)
    assert (placed["B AmbiX"].position, placed["B AmbiX"].length) == (20.5, 0.5)
    out_a, out_b = (
        reaper.sources[take_a.source][0],
        reaper.sources[reaper.takes[placed["B AmbiX"].take].source][0],
    )
    assert Path(out_a).parent == tmp_path / "project" / "visage_ambisonics"
    fields = ("start", "end", "yaw", "pitch")
    assert [sidecar(out_a)[k] for k in fields] == [2.0, 3.5, 30.0, 5.0]
    assert [sidecar(out_b)[k] for k in fields] == [0.0, 0.5, -45.0, 10.0]
    # The exact insert sequence for A (the first result): one undo block around the changes.
    start = reaper.calls.index(("RPR_Undo_BeginBlock2", (0,)))
    names = [
        n
        for n in reaper.names()[start:]
        if not n.startswith(("RPR_Count", "RPR_GetTrack", "RPR_GetMedia", "RPR_GetSetMediaTrackInfo_String"))
    ]
    assert names[: names.index("RPR_UpdateArrange") + 1] == [
        "RPR_Undo_BeginBlock2",
        "RPR_PreventUIRefresh",
        "RPR_ValidatePtr2",  # the item's track, still there: its index now
        "RPR_InsertTrackAtIndex",
        "RPR_SetMediaTrackInfo_Value",
        "RPR_AddMediaItemToTrack",
        "RPR_AddTakeToMediaItem",
        "RPR_PCM_Source_CreateFromFile",
        "RPR_SetMediaItemTake_Source",
        "RPR_SetMediaItemInfo_Value",
        "RPR_SetMediaItemInfo_Value",
        "RPR_SetMediaItemTakeInfo_Value",
        "RPR_SetMediaItemTakeInfo_Value",
        "RPR_GetSetMediaItemTakeInfo_String",
        "RPR_PreventUIRefresh",
        "RPR_Undo_EndBlock2",
        "RPR_UpdateArrange",
    ]
    args: dict[str, tuple[Any, ...]] = {}
    for name, values in reaper.calls[start:]:
        args.setdefault(name, values)  # the first call of each kind: A's insert
    assert args["RPR_InsertTrackAtIndex"] == (1, True)
    assert args["RPR_SetMediaTrackInfo_Value"] == (ambix, "I_NCHAN", 4)
    assert args["RPR_PCM_Source_CreateFromFile"] == (out_a,)
    assert args["RPR_Undo_EndBlock2"] == (0, "ViSAGe: insert ambisonics", -1)


def test_nothing_selected_and_prompt_cancelled(script: Any, reaper: FakeReaper, tmp_path: Path) -> None:
    assert script.main() == 0
    assert "RPR_ShowMessageBox" in reaper.names() and not reaper.deferred
    track = reaper.add_track()
    reaper.selected = [reaper.add_item(track, media(tmp_path, "c.mp4"), position=0.0, length=1.0)]
    reaper.user_input = (0, "")
    assert script.main() == 0
    assert not reaper.deferred and "RPR_GetMediaItemTake_Source" not in reaper.names()


def test_no_daemon(script: Any, reaper: FakeReaper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(script, "VISAGE_DAEMON", "127.0.0.1:9")
    monkeypatch.setattr("visage.host_plugins.common.host_client.SUBMIT_TIMEOUT_S", 0.3)
    track = reaper.add_track()
    reaper.selected = [
        reaper.add_item(track, media(tmp_path, "d.mp4"), position=0.0, length=1.0, notes="yaw=0")
    ]
    assert script.main() == 0
    (box,) = [args for name, args in reaper.calls if name == "RPR_ShowMessageBox"]
    assert "No ViSAGe daemon is answering at 127.0.0.1:9" in box[0] and not reaper.deferred


def test_refused_source_and_failed_insert_are_reported(
    script: Any, reaper: FakeReaper, tmp_path: Path
) -> None:
    track = reaper.add_track()
    outside = str(Path(sys.prefix) / "pyvenv.cfg")  # exists, outside the daemon's --allow-dir
    reaper.selected = [
        reaper.add_item(track, outside, position=0.0, length=1.0, notes="yaw=0", name="far"),
        reaper.add_item(track, media(tmp_path, "e.mp4"), position=5.0, length=1.0, notes="yaw=0", name="E"),
    ]
    reaper.fail_source = True
    assert script.main() == 1
    run_deferred(script, reaper)
    messages = [args[0] for name, args in reaper.calls if name == "RPR_ShowConsoleMsg"]
    assert any("far: " in m and "--allow-dir" in m for m in messages)
    assert any("could not create an item" in m for m in messages)
    assert reaper.names().count("RPR_Undo_BeginBlock2") == reaper.names().count("RPR_Undo_EndBlock2") == 1


def test_terminating_the_script_cancels_running_jobs(
    reaper: FakeReaper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("visage_reaper_slow", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    with Daemon(fake_settings(tmp_path), fast_engine(delay_s=5.0, steps=50)) as slow:
        address = address_of(slow)
        monkeypatch.setattr(module, "VISAGE_DAEMON", f"{address.host}:{address.port}")
        track = reaper.add_track()
        reaper.selected = [
            reaper.add_item(track, media(tmp_path, "f.mp4"), position=0.0, length=1.0, notes="yaw=0")
        ]
        assert module.main() == 1
        (pending,) = module._pending
        exec(reaper.deferred.pop(0), vars(module))
        exec(reaper.atexit[0], vars(module))
        assert not module._pending
        assert slow.queue is not None
        deadline = time.monotonic() + 5
        while slow.queue.get(pending.job.job_id).state.value != "cancelled":
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_section_sources_count_from_the_section_start(
    script: Any, reaper: FakeReaper, tmp_path: Path
) -> None:
    """A take playing a section of a file: D_STARTOFFS and looping are relative to the section."""
    track = reaper.add_track("Video")
    clip = media(tmp_path, "g.mp4")
    reaper.selected = [
        reaper.add_item(
            track,
            clip,
            position=0.0,
            length=1.0,
            offset=0.5,
            notes="yaw=0",
            name="S",
            section=(4.0, 3.0, False),
        ),
        reaper.add_item(
            track,
            clip,
            position=5.0,
            length=1.0,
            offset=2.5,
            notes="yaw=0",
            name="L",
            section=(4.0, 3.0, False),
        ),
        reaper.add_item(
            track, clip, position=9.0, length=1.0, notes="yaw=0", name="R", section=(0.0, 60.0, True)
        ),
    ]
    assert script.main() == 2
    run_deferred(script, reaper)
    placed = {
        reaper.takes[reaper.items[i].take].name: reaper.items[i]
        for i in reaper.track_data[reaper.tracks[1]].items
    }
    assert set(placed) == {"S AmbiX", "L AmbiX"}
    out_s, out_l = (reaper.sources[reaper.takes[placed[n].take].source][0] for n in ("S AmbiX", "L AmbiX"))
    assert (sidecar(out_s)["start"], sidecar(out_s)["end"]) == (4.5, 5.5)
    assert (sidecar(out_l)["start"], sidecar(out_l)["end"]) == (6.5, 7.0)  # looped: up to the section's end
    assert placed["L AmbiX"].length == 0.5
    messages = [args[0] for name, args in reaper.calls if name == "RPR_ShowConsoleMsg"]
    assert any("R: " in m and "reversed" in m for m in messages)


def test_results_go_below_their_own_track_after_earlier_inserts(
    script: Any, reaper: FakeReaper, tmp_path: Path
) -> None:
    """The first result inserts a track above the second item's track: its index must be re-read."""
    first, second = reaper.add_track("V1"), reaper.add_track("V2")
    reaper.selected = [
        reaper.add_item(first, media(tmp_path, "h.mp4"), position=0.0, length=1.0, notes="yaw=0", name="A"),
        reaper.add_item(second, media(tmp_path, "i.mp4"), position=0.0, length=1.0, notes="yaw=0", name="B"),
    ]
    assert script.main() == 2
    run_deferred(script, reaper)
    layout = [
        (
            reaper.track_data[t].name,
            [reaper.takes[reaper.items[i].take].name for i in reaper.track_data[t].items],
        )
        for t in reaper.tracks
    ]
    ambix = "FOA AmbiX (ACN/SN3D)"
    assert layout == [
        ("V1", ["A"]),
        (ambix, ["A AmbiX"]),
        ("V2", ["B"]),
        (ambix, ["B AmbiX"]),
    ]
