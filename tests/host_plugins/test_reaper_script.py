"""The REAPER ReaScript against a fake built from REAPER's published Python API, and a live daemon.

REAPER cannot run here. The fake is built from REAPER's own generated module ``reaper_python`` (the
``Plugins/reaper_python.py`` REAPER writes from its API; a public copy: 0xf0f/reaper-api), not from what
the script calls: `PUBLISHED` lists each function's parameter types and result as that module packs and
returns them, and the fake module has only those names, refuses another argument count, and refuses a
pointer of another type (which REAPER's ``rpr_packp`` would silently turn into NULL). Conventions from
the same text: pointers are strings ``(Type*)0x%016X``; a null pointer is ``(Type*)0x0000000000000000``
(truthy!); functions with output buffers return a tuple of the return value (if any) followed by every
argument, buffers filled in. ``RPR_defer``/``RPR_atexit`` are not in that module: REAPER defines them in
the script's ``__main__`` (python-reapy's ``reapy/core/reaper/defer.py`` calls
``sys.modules["__main__"].RPR_defer``), and runs the code strings they take there. The fake does the
same. Every call is recorded.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine

from visage.bridge import const as bridge_const
from visage.bridge.daemon import Daemon
from visage.host_plugins import install

if TYPE_CHECKING:
    from conftest import BrokenZeroconf  # tests/host_plugins/conftest.py

SCRIPT = Path(__file__).resolve().parents[2] / "host_plugins" / "reaper" / "visage_reaper.py"
MENU = SCRIPT.with_name("visage_reaper.ReaperMenu")

# Parameter and result types of the published functions, as the generated reaper_python packs them:
# a pointer type ("MediaItem*"), "int" (c_int), "float" (c_double), "bool" (c_byte), "str" (a C string),
# "buf" (an output string buffer, passed in and returned filled). A result is one type, None, or the
# tuple the function returns. "ReaProject*" parameters also take 0 (the current project).
PUBLISHED: dict[str, tuple[tuple[str, ...], Any]] = {
    "RPR_AddMediaItemToTrack": (("MediaTrack*",), "MediaItem*"),
    "RPR_AddRemoveReaScript": (("bool", "int", "str", "bool"), "int"),
    "RPR_AddTakeToMediaItem": (("MediaItem*",), "MediaItem_Take*"),
    "RPR_CountSelectedMediaItems": (("ReaProject*",), "int"),
    "RPR_CountTrackMediaItems": (("MediaTrack*",), "int"),
    "RPR_CountTracks": (("ReaProject*",), "int"),
    "RPR_GetActiveTake": (("MediaItem*",), "MediaItem_Take*"),
    "RPR_GetExtState": (("str", "str"), "str"),
    "RPR_GetMediaItemInfo_Value": (("MediaItem*", "str"), "float"),
    "RPR_GetMediaItemTakeInfo_Value": (("MediaItem_Take*", "str"), "float"),
    "RPR_GetMediaItemTake_Source": (("MediaItem_Take*",), "PCM_source*"),
    "RPR_GetMediaItem_Track": (("MediaItem*",), "MediaTrack*"),
    "RPR_GetMediaSourceFileName": (("PCM_source*", "buf", "int"), ("PCM_source*", "str", "int")),
    "RPR_GetMediaSourceLength": (("PCM_source*", "bool"), ("float", "PCM_source*", "int")),
    "RPR_GetMediaSourceParent": (("PCM_source*",), "PCM_source*"),
    "RPR_GetMediaTrackInfo_Value": (("MediaTrack*", "str"), "float"),
    "RPR_GetProjectPath": (("buf", "int"), ("str", "int")),
    "RPR_GetResourcePath": ((), "str"),
    "RPR_GetSelectedMediaItem": (("ReaProject*", "int"), "MediaItem*"),
    "RPR_GetSetMediaItemInfo_String": (
        ("MediaItem*", "str", "buf", "bool"),
        ("int", "MediaItem*", "str", "str", "bool"),
    ),
    "RPR_GetSetMediaItemTakeInfo_String": (
        ("MediaItem_Take*", "str", "buf", "bool"),
        ("int", "MediaItem_Take*", "str", "str", "bool"),
    ),
    "RPR_GetSetMediaTrackInfo_String": (
        ("MediaTrack*", "str", "buf", "bool"),
        ("int", "MediaTrack*", "str", "str", "bool"),
    ),
    "RPR_GetTakeName": (("MediaItem_Take*",), "str"),
    "RPR_GetTrack": (("ReaProject*", "int"), "MediaTrack*"),
    "RPR_GetTrackMediaItem": (("MediaTrack*", "int"), "MediaItem*"),
    "RPR_GetUserInputs": (("str", "int", "str", "buf", "int"), ("int", "str", "int", "str", "str", "int")),
    "RPR_InsertTrackAtIndex": (("int", "bool"), None),
    "RPR_PCM_Source_CreateFromFile": (("str",), "PCM_source*"),
    "RPR_PCM_Source_GetSectionInfo": (
        ("PCM_source*", "float", "float", "bool"),
        ("int", "PCM_source*", "float", "float", "int"),
    ),
    "RPR_PreventUIRefresh": (("int",), None),
    "RPR_ReverseNamedCommandLookup": (("int",), "str"),
    "RPR_SetExtState": (("str", "str", "str", "bool"), None),
    "RPR_SetMediaItemInfo_Value": (("MediaItem*", "str", "float"), "bool"),
    "RPR_SetMediaItemTakeInfo_Value": (("MediaItem_Take*", "str", "float"), "bool"),
    "RPR_SetMediaItemTake_Source": (("MediaItem_Take*", "PCM_source*"), "bool"),
    "RPR_SetMediaTrackInfo_Value": (("MediaTrack*", "str", "float"), "bool"),
    "RPR_ShowConsoleMsg": (("str",), None),
    "RPR_ShowMessageBox": (("str", "str", "int"), "int"),
    "RPR_Undo_BeginBlock2": (("ReaProject*",), None),
    "RPR_Undo_EndBlock2": (("ReaProject*", "str", "int"), None),
    "RPR_UpdateArrange": ((), None),
    "RPR_ValidatePtr2": (("ReaProject*", "void*", "str"), "bool"),
}
# What REAPER defines in the script's __main__ rather than in reaper_python (code strings, run there).
MAIN_NAMESPACE_FUNCTIONS = ("RPR_defer", "RPR_atexit")
_POINTER = re.compile(r"^\((\w+\*)\)0x([0-9A-F]{16})$")  # rpr_unpackp's '(%s)0x%08X%08X'


def pointer(kind: str, number: int) -> str:
    return f"({kind}*)0x{number:016X}"


def _check_value(name: str, where: str, kind: str, value: Any) -> None:
    """Fail the way the published packing would (ctypes TypeError) or would hide (a pointer turned NULL)."""
    if kind.endswith("*"):
        if kind == "ReaProject*" and value == 0:
            return
        match = _POINTER.match(str(value))
        assert match and kind in (match.group(1), "void*"), f"{name}: {where} is not a {kind}: {value!r}"
    elif kind in ("int", "bool"):
        assert isinstance(value, int), f"{name}: {where} must be an int ({kind}), got {value!r}"
    elif kind == "float":
        assert isinstance(value, int | float), f"{name}: {where} must be a number, got {value!r}"
    else:  # str / buf: packed with str(value)
        assert value is not None, f"{name}: {where} must be a string, got None"


def published(name: str, implementation: Callable[..., Any]) -> Callable[..., Any]:
    """``implementation`` behind the published signature of ``name``: argument count, types, result."""
    params, result = PUBLISHED[name]

    def call(*args: Any) -> Any:
        assert len(args) == len(params), f"{name} takes {len(params)} arguments, got {len(args)}: {args!r}"
        for i, (kind, value) in enumerate(zip(params, args, strict=True)):
            _check_value(name, f"argument {i}", kind, value)
        value = implementation(*args)
        if result is None:
            assert value is None, f"{name} returns nothing"
        elif isinstance(result, tuple):
            assert isinstance(value, tuple) and len(value) == len(result), (
                f"{name} returns {len(result)}-tuples"
            )
            for i, (kind, item) in enumerate(zip(result, value, strict=True)):
                _check_value(name, f"result {i}", kind, item)
        else:
            _check_value(name, "the result", result, value)
        return value

    return call


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
        self.resource_path = project_path.parent / "reaper-resources"
        self.loaded_scripts: dict[str, int] = {}  # script path -> command id (Actions > Load ReaScript)
        self.command_names: dict[int, str] = {}  # command id -> "RS" + 40 hex digits
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
        """``reaper_python``: the published functions only, each behind its published signature."""
        implemented = {name for name in dir(self) if name.startswith("RPR_")}
        assert implemented == set(PUBLISHED), implemented ^ set(PUBLISHED)  # the fake invents nothing
        fake = types.ModuleType("reaper_python")
        for name in PUBLISHED:
            setattr(fake, name, self._recorded(name, published(name, getattr(self, name))))
        return fake

    def main_module(self) -> types.ModuleType:
        """The script's ``__main__`` as REAPER prepares it: where RPR_defer and RPR_atexit live."""
        main = types.ModuleType("__main__")
        main.RPR_defer = self._recorded("RPR_defer", self.deferred.append)  # type: ignore[attr-defined]
        main.RPR_atexit = self._recorded("RPR_atexit", self.atexit.append)  # type: ignore[attr-defined]
        return main

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

    def RPR_GetResourcePath(self) -> str:
        return str(self.resource_path)

    def RPR_AddRemoveReaScript(self, add: bool, section: int, path: str, commit: bool) -> int:
        """Load a script as an action: a new command id, or the one it has already."""
        assert add and section == 0
        if path not in self.loaded_scripts:
            command = 50000 + len(self.loaded_scripts)
            self.loaded_scripts[path] = command
            self.command_names[command] = "RS" + secrets.token_hex(20)  # as REAPER names script actions
        return self.loaded_scripts[path]

    def RPR_ReverseNamedCommandLookup(self, command: int) -> str:
        return self.command_names[command]


# ------------------------------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), fast_engine(seconds=10.0)) as running:
        yield running


@pytest.fixture
def reaper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReaper]:
    fake = FakeReaper(tmp_path / "project")
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    monkeypatch.setitem(sys.modules, "__main__", fake.main_module())
    yield fake
    main = vars(sys.modules["__main__"])
    for code in fake.atexit:  # as REAPER does when the script ends: nothing may keep running
        exec(code, main)


def install_into(reaper: FakeReaper, daemon: str) -> Path:
    """The shipped script and menu, installed by `visage hosts install reaper` in REAPER's resource folder."""
    folder = reaper.resource_path.joinpath("Scripts", "ViSAGe")
    script, menu = install.install_script("reaper", target=folder, daemon=daemon, log=lambda _: None)
    assert menu.name == MENU.name
    return script


def load(path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The installed script as a module (its ``__file__`` is the installed path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script(daemon: Daemon, reaper: FakeReaper, monkeypatch: pytest.MonkeyPatch) -> Any:
    address = address_of(daemon)
    return load(
        install_into(reaper, f"{address.host}:{address.port}"), "visage_reaper_under_test", monkeypatch
    )


def run_action(path: Path) -> dict[str, Any]:
    """Run the installed script as REAPER runs an action: its code executed in ``__main__``.

    No ``__file__``: whether REAPER sets it is not published, so the script must not depend on it.
    """
    main = vars(sys.modules["__main__"])
    main.pop("__file__", None)
    main["__name__"] = "__main__"
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), main)
    return main


def media(tmp_path: Path, name: str) -> str:
    path = tmp_path / "media" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(name.encode() * 64)
    return str(path)


def run_deferred(reaper: FakeReaper, timeout_s: float = 10.0) -> int:
    """Run deferred code as REAPER does (in the script's ``__main__``) until it stops re-deferring."""
    rounds, deadline = 0, time.monotonic() + timeout_s
    main = vars(sys.modules["__main__"])
    while reaper.deferred:
        exec(reaper.deferred.pop(0), main)
        rounds += 1
        assert time.monotonic() < deadline
    return rounds


def console(reaper: FakeReaper) -> list[str]:
    return [args[0] for name, args in reaper.calls if name == "RPR_ShowConsoleMsg"]


def sidecar(path: str) -> dict:
    return json.loads(Path(path + ".json").read_text())  # the sidecar: OUT.wav -> OUT.wav.json


def test_the_fake_is_the_published_api(reaper: FakeReaper) -> None:
    """What the fake refuses, REAPER's generated module does not have (or would pack as NULL)."""
    rpr = sys.modules["reaper_python"]
    assert not any(hasattr(rpr, name) for name in MAIN_NAMESPACE_FUNCTIONS)
    assert all(callable(getattr(sys.modules["__main__"], name)) for name in MAIN_NAMESPACE_FUNCTIONS)
    with pytest.raises(AttributeError):
        rpr.RPR_GetItemName  # noqa: B018  (no such function)
    with pytest.raises(AssertionError, match="takes 2 arguments"):
        rpr.RPR_GetTrack(0)
    with pytest.raises(AssertionError, match="must be an int"):
        rpr.RPR_GetTrack(0, 1.0)  # c_int(1.0) is a TypeError
    item = reaper.add_item(reaper.add_track(), "x.mp4", position=0.0, length=1.0)
    with pytest.raises(AssertionError, match="is not a MediaTrack"):
        rpr.RPR_CountTrackMediaItems(item)  # rpr_packp would pass NULL


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

    assert script.main() == 2
    assert reaper.atexit == [script.ATEXIT_CODE] and reaper.deferred == [script.DEFER_CODE]
    assert reaper.ext[("visage", "direction")] == "-45,10"  # asked once (B has no direction in its notes)
    assert run_deferred(reaper) >= 1

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


def test_the_installed_action_completes_its_menu_and_defers_through_main(
    daemon: Daemon, reaper: FakeReaper, tmp_path: Path
) -> None:
    """Items 14 and 15 on the shipped files: the menu's placeholder gets the id REAPER gave the action;
    ``RPR_defer``/``RPR_atexit`` are called on ``__main__`` and their code runs there."""
    shipped = MENU.read_text(encoding="utf-8")
    placeholder = "_VISAGE_COMMAND_ID"
    assert f"{placeholder} ViSAGe: Generate ambisonics" in shipped and not re.search(r"_RS[0-9a-f]", shipped)
    address = address_of(daemon)
    path = install_into(reaper, f"{address.host}:{address.port}")
    assert path.with_name(MENU.name).read_text(encoding="utf-8") == shipped
    track = reaper.add_track("Video")
    reaper.selected = [
        reaper.add_item(track, media(tmp_path, "m.mp4"), position=1.0, length=1.0, notes="yaw=10", name="M")
    ]

    main = run_action(path)  # REAPER runs the action
    assert reaper.loaded_scripts == {str(path): 50000}  # found without __file__: where install put it
    name = reaper.command_names[50000]
    assert path.with_name(MENU.name).read_text(encoding="utf-8") == shipped.replace(placeholder, f"_{name}")
    assert reaper.atexit == [main["ATEXIT_CODE"]] and reaper.deferred == [main["DEFER_CODE"]]
    run_deferred(reaper)
    (placed,) = reaper.track_data[reaper.tracks[1]].items
    assert reaper.takes[reaper.items[placed].take].name == "M AmbiX"
    assert reaper.items[placed].position == 1.0

    reaper.selected = []
    run_action(path)  # the menu is complete: the action is not loaded again
    assert reaper.names().count("RPR_AddRemoveReaScript") == 1


def test_a_zeroconf_that_does_not_import_is_reported_and_the_default_address_used(
    daemon: Daemon,
    reaper: FakeReaper,
    broken_zeroconf: BrokenZeroconf,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Item 16: REAPER's Python finds the environment's zeroconf but cannot import it."""
    monkeypatch.setattr(bridge_const, "DEFAULT_UDP_PORT", address_of(daemon).port)  # the fallback's port
    script = load(install_into(reaper, "auto"), "visage_reaper_auto", monkeypatch)
    track = reaper.add_track()
    reaper.selected = [
        reaper.add_item(track, media(tmp_path, "z.mp4"), position=0.0, length=1.0, notes="yaw=0")
    ]
    assert script.main() == 1
    assert any("ZeroConf" in m and broken_zeroconf.error in m for m in console(reaper))
    run_deferred(reaper)
    assert len(reaper.track_data[reaper.tracks[1]].items) == 1


def test_another_python_than_the_recorded_one_is_reported(
    script: Any, reaper: FakeReaper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert script.VISAGE_PYTHON == running  # recorded at install
    monkeypatch.setattr(script, "VISAGE_PYTHON", "3.99")
    assert script.main() == 0  # nothing selected: the report comes first anyway
    (message,) = [m for m in console(reaper) if "3.99" in m]
    assert f"REAPER runs Python {running}" in message and "Plug-ins > ReaScript" in message


def test_a_client_that_does_not_import_is_a_message_not_a_traceback(
    reaper: FakeReaper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "visage.bridge.client", None)  # importing it raises ImportError
    script = load(install_into(reaper, "auto"), "visage_reaper_no_client", monkeypatch)
    assert script.main() == 0
    (box,) = [args for name, args in reaper.calls if name == "RPR_ShowMessageBox"]
    assert "Cannot import the visage client" in box[0] and "visage.bridge.client" in box[0]
    assert not reaper.deferred


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
    run_deferred(reaper)
    messages = [args[0] for name, args in reaper.calls if name == "RPR_ShowConsoleMsg"]
    assert any("far: " in m and "--allow-dir" in m for m in messages)
    assert any("could not create an item" in m for m in messages)
    assert reaper.names().count("RPR_Undo_BeginBlock2") == reaper.names().count("RPR_Undo_EndBlock2") == 1


def test_terminating_the_script_cancels_running_jobs(
    reaper: FakeReaper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Daemon(fake_settings(tmp_path), fast_engine(delay_s=5.0, steps=50)) as slow:
        address = address_of(slow)
        module = load(
            install_into(reaper, f"{address.host}:{address.port}"), "visage_reaper_slow", monkeypatch
        )
        track = reaper.add_track()
        reaper.selected = [
            reaper.add_item(track, media(tmp_path, "f.mp4"), position=0.0, length=1.0, notes="yaw=0")
        ]
        assert module.main() == 1
        (pending,) = module._pending
        main = vars(sys.modules["__main__"])
        exec(reaper.deferred.pop(0), main)
        exec(reaper.atexit.pop(0), main)  # the user terminates the action
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
    run_deferred(reaper)
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
    run_deferred(reaper)
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
