"""ViSAGe: generate first-order ambisonics for the selected media items (REAPER ReaScript, Python).

visage-host-script (installed by `visage hosts install reaper` into <REAPER resource>/Scripts/ViSAGe;
load it once with Actions > New action > Load ReaScript..., Python enabled in Preferences > Plug-ins >
ReaScript; the ViSAGe daemon must be running: `visage serve`).

For each selected item it sends the take's source file and the range the item plays (take start
offset ``D_STARTOFFS``, item length ``D_LENGTH`` times the take's ``D_PLAYRATE``) to the daemon, then
polls with ``defer`` (REAPER stays responsive) and inserts each 4-channel AmbiX result at the item's
position, at the item's play rate, on a track named "FOA AmbiX (ACN/SN3D)" with 4 channels: an
existing one that is free there (rename a track to that name to choose it), else a new track below the
item's track. Monitor it with an ambisonic binaural decoder (e.g. IEM BinauralDecoder).

Direction: ``yaw=30 pitch=-5`` in the item's notes, else the values asked once per run (remembered).
To cancel running jobs, run the action again and choose "Terminate instances": the daemon is told to
stop them. ``visage_reaper.ReaperMenu`` ships with a placeholder for this action's command id, which
REAPER assigns when the script is loaded as an action; the first run writes it in (``AddRemoveReaScript``
returns the id of the loaded script), after which Options > Customize menus/toolbars > Media item
context > Import adds the action to the item's context menu.

REAPER runs the script in its own Python (Preferences > Plug-ins > ReaScript); `visage hosts install`
records the Python version of the environment it points the script at. With another version the script
says so in the console, and what does not import there is skipped (ZeroConf discovery) or reported.
"""

from __future__ import annotations

import os
import re
import site
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

# --- visage configuration (written by `visage hosts install`) ---
VISAGE_SITE_DIRS: list[str] = []
VISAGE_DAEMON = "auto"
VISAGE_PYTHON = ""  # major.minor of the Python that environment was installed for
# --- end of visage configuration ---

EXT_SECTION = "visage"  # REAPER ExtState section (remembered prompt values)
# RPR_defer/RPR_atexit take code strings that REAPER runs in __main__ (the script itself when REAPER runs
# it); naming this module through sys.modules also works when it was imported under another name.
DEFER_CODE = f"import sys; sys.modules[{__name__!r}].visage_reaper_poll()"
ATEXIT_CODE = f"import sys; sys.modules[{__name__!r}].visage_reaper_atexit()"
OUTPUT_SUBFOLDER = "visage_ambisonics"  # in the project's media folder
MENU_FILE = "visage_reaper.ReaperMenu"
MENU_PLACEHOLDER = "_VISAGE_COMMAND_ID"  # in the shipped menu file, until the first run writes the id
INSTALL_FOLDER = ("Scripts", "ViSAGe")  # in REAPER's resource folder (`visage hosts install reaper`)
SCRIPT_FILE = "visage_reaper.py"
SOURCE_NAME_BYTES = 4096
UNDO_ALL = -1
_NULL = re.compile(r"0x0+$")


def _add_site_dirs() -> None:
    for folder in VISAGE_SITE_DIRS:
        if folder not in sys.path and os.path.isdir(folder):
            site.addsitedir(folder)  # processes .pth files: an editable visage install works too


_add_site_dirs()
try:
    if TYPE_CHECKING:  # mypy reads this checkout's modules (an editable install hides visage.* from it)
        from host_plugins.common import (
            direction_curve,
            host_client,
            media_range,
            placement,
            result_files,
            wav_info,
        )
    else:
        from visage.host_plugins.common import (
            direction_curve,
            host_client,
            media_range,
            placement,
            result_files,
            wav_info,
        )
    from visage.bridge.client import DaemonUnavailable, JobFailed
except ImportError as error:  # e.g. a package compiled for another Python than REAPER's
    IMPORT_PROBLEM: ImportError | None = error
else:
    IMPORT_PROBLEM = None


def _api() -> Any:
    import reaper_python  # type: ignore[import-not-found]  # REAPER's own module

    return reaper_python


def _main_module() -> ModuleType:
    """Where REAPER puts ``RPR_defer`` and ``RPR_atexit``: the script's ``__main__``, not reaper_python.

    (The generated reaper_python module defines neither; python-reapy calls them on
    ``sys.modules["__main__"]``.)
    """
    return sys.modules["__main__"]


def is_null(pointer: Any) -> bool:
    """REAPER's Python API returns null pointers as strings such as ``(MediaItem*)0x0000000000000000``."""
    return not pointer or bool(_NULL.search(str(pointer)))


def _console(text: str) -> None:
    _api().RPR_ShowConsoleMsg(f"ViSAGe: {text}\n")


def python_mismatch() -> str | None:
    """Why imports from the recorded environment may fail: REAPER runs another Python version."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not VISAGE_PYTHON or VISAGE_PYTHON == running:
        return None
    return (
        f"REAPER runs Python {running}, but `visage hosts install` recorded Python {VISAGE_PYTHON} for "
        f"{', '.join(VISAGE_SITE_DIRS) or 'its environment'}: packages compiled for {VISAGE_PYTHON} do not "
        f"load here. Point Preferences > Plug-ins > ReaScript at Python {VISAGE_PYTHON}, or run `visage "
        f"hosts install reaper` from an environment with Python {running}."
    )


@dataclass
class Pending:
    """A submitted item and where its result goes."""

    job: host_client.HostJob
    label: str
    position_s: float  # where the audio starts in the project (item position + lead-in)
    length_s: float  # project seconds it lasts
    play_rate: float
    source_track_index: int  # 0-based index of the item's track when it was submitted
    source_track: Any = None  # the item's track (its index changes when tracks are inserted above it)
    shown_tenth: int = -1


_pending: list[Pending] = []


# -----------------------------------------------------------------------------------------------------
# reading the selection


def ask_direction(rpr: Any) -> tuple[float, float] | None:
    """Ask once for the direction of items whose notes name none; None when the user cancels."""
    last = rpr.RPR_GetExtState(EXT_SECTION, "direction") or "0,0"
    answer = rpr.RPR_GetUserInputs("ViSAGe direction", 2, "Yaw (deg, + left),Pitch (deg, + up)", last, 64)
    if not answer[0]:
        return None
    try:
        yaw, pitch = (float(v) for v in answer[4].split(","))
    except ValueError:
        rpr.RPR_ShowMessageBox(f"Not two numbers: {answer[4]!r}", "ViSAGe", 0)
        return None
    if not -90.0 <= pitch <= 90.0:
        rpr.RPR_ShowMessageBox("Pitch must lie in [-90, 90] degrees", "ViSAGe", 0)
        return None
    rpr.RPR_SetExtState(EXT_SECTION, "direction", f"{yaw:g},{pitch:g}", True)
    return yaw, pitch


def item_notes(rpr: Any, item: Any) -> str:
    return rpr.RPR_GetSetMediaItemInfo_String(item, "P_NOTES", "", False)[3]


def source_of(rpr: Any, take: Any) -> tuple[Any, str, tuple[float, float, bool] | None]:
    """(source, file name, section) of a take, unwrapping section/reverse wrappers.

    ``section`` is (offset in the file, length, reversed) in seconds when the take plays a section of
    the file (its ``D_STARTOFFS`` then counts from the section's start), else None.
    """
    source = rpr.RPR_GetMediaItemTake_Source(take)
    section = None
    parent = rpr.RPR_GetMediaSourceParent(source)
    if not is_null(parent):
        found, _, offset, length, reverse = rpr.RPR_PCM_Source_GetSectionInfo(source, 0.0, 0.0, False)
        if found:
            section = (float(offset), float(length), bool(reverse))
        source = parent
    return source, rpr.RPR_GetMediaSourceFileName(source, "", SOURCE_NAME_BYTES)[1], section


def output_folder(rpr: Any) -> str:
    project_path = rpr.RPR_GetProjectPath("", SOURCE_NAME_BYTES)[0]
    if not project_path:
        return ""
    folder = os.path.join(project_path, OUTPUT_SUBFOLDER)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return ""  # the daemon's own outputs folder
    return folder


def build_request(
    rpr: Any, item: Any, default: tuple[float, float], job_id: str
) -> tuple[host_client.JobRequest, media_range.ItemRange]:
    """(JobRequest, ItemRange) for one item; raises ValueError with a message for the user."""
    take = rpr.RPR_GetActiveTake(item)
    if is_null(take):
        raise ValueError("an empty item (no take) was skipped")
    label = rpr.RPR_GetTakeName(take) or "item"
    source, path, section = source_of(rpr, take)
    if not path:
        raise ValueError(f"{label}: the take has no media file")
    length_s, _, is_qn = rpr.RPR_GetMediaSourceLength(source, False)
    source_length, section_offset = (None if is_qn else length_s), 0.0
    if section is not None:
        section_offset, source_length, reverse = section
        if reverse:
            raise ValueError(f"{label}: the take plays its source reversed; skipped")
    span = media_range.reaper_item_range(
        start_offset_s=rpr.RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
        length_s=rpr.RPR_GetMediaItemInfo_Value(item, "D_LENGTH"),
        play_rate=rpr.RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
        source_length_s=source_length,
        section_offset_s=section_offset,
    )
    yaw, pitch = direction_curve.parse_direction_text(item_notes(rpr, item)) or default
    folder = output_folder(rpr)
    output = str(result_files.result_paths(folder, label, job_id).wav) if folder else None
    request = host_client.JobRequest(
        media=path,
        start_s=span.media_range.start,
        end_s=span.media_range.end,
        yaw_deg=yaw,
        pitch_deg=pitch,
        output=output,
        label=label,
    )
    return request, span


# -----------------------------------------------------------------------------------------------------
# inserting the result


def track_lanes(rpr: Any) -> list[placement.Lane]:
    lanes = []
    for index in range(rpr.RPR_CountTracks(0)):
        track = rpr.RPR_GetTrack(0, index)
        spans = []
        for n in range(rpr.RPR_CountTrackMediaItems(track)):
            other = rpr.RPR_GetTrackMediaItem(track, n)
            start = rpr.RPR_GetMediaItemInfo_Value(other, "D_POSITION")
            spans.append((start, start + rpr.RPR_GetMediaItemInfo_Value(other, "D_LENGTH")))
        name = rpr.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3]
        channels = int(rpr.RPR_GetMediaTrackInfo_Value(track, "I_NCHAN"))
        lanes.append(placement.Lane(index, tuple(spans), channels=channels, name=name))
    return lanes


def source_track_index(rpr: Any, pending: Pending) -> int:
    """The item's track's index now (earlier results may have inserted tracks above it)."""
    track = pending.source_track
    if track is not None and rpr.RPR_ValidatePtr2(0, track, "MediaTrack*"):
        number = int(rpr.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER"))
        if number > 0:
            return number - 1
    return pending.source_track_index


def ambix_track(rpr: Any, pending: Pending) -> tuple[Any, str]:
    """An AmbiX track free over the result (existing, else inserted below the item's track)."""
    end = pending.position_s + pending.length_s
    index = placement.reaper_ambix_track(track_lanes(rpr), pending.position_s, end)
    if index is not None:
        return rpr.RPR_GetTrack(0, index), f"track {index + 1}"
    index = source_track_index(rpr, pending) + 1
    rpr.RPR_InsertTrackAtIndex(index, True)
    track = rpr.RPR_GetTrack(0, index)
    rpr.RPR_SetMediaTrackInfo_Value(track, "I_NCHAN", placement.AMBIX_CHANNELS)
    rpr.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", placement.AMBIX_TRACK_NAME, True)
    return track, f"new track {index + 1}"


def insert_result(rpr: Any, pending: Pending, path: str) -> str:
    """Add the AmbiX file as an item at the source item's position and play rate."""
    channels = wav_info.read_wav_info(path).channels
    rpr.RPR_Undo_BeginBlock2(0)
    rpr.RPR_PreventUIRefresh(1)
    try:
        track, where = ambix_track(rpr, pending)
        item = rpr.RPR_AddMediaItemToTrack(track)
        take = rpr.RPR_AddTakeToMediaItem(item)
        source = rpr.RPR_PCM_Source_CreateFromFile(path)
        if is_null(item) or is_null(take) or is_null(source):
            raise ValueError(f"REAPER could not create an item for {path}")
        rpr.RPR_SetMediaItemTake_Source(take, source)
        rpr.RPR_SetMediaItemInfo_Value(item, "D_POSITION", pending.position_s)
        rpr.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", pending.length_s)
        rpr.RPR_SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0.0)
        rpr.RPR_SetMediaItemTakeInfo_Value(take, "D_PLAYRATE", pending.play_rate)
        rpr.RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", f"{pending.label} AmbiX", True)
    finally:
        rpr.RPR_PreventUIRefresh(-1)
        rpr.RPR_Undo_EndBlock2(0, "ViSAGe: insert ambisonics", UNDO_ALL)
    rpr.RPR_UpdateArrange()
    warning = "" if channels == 4 else f" (the file has {channels} channels, not 4)"
    return f"{pending.label}: inserted on {where} at {pending.position_s:.3f} s{warning}"


# -----------------------------------------------------------------------------------------------------
# the action and its deferred poll


def installed_path(rpr: Any) -> str:
    """Where `visage hosts install reaper` puts this script: ``<resource>/Scripts/ViSAGe``."""
    return os.path.join(rpr.RPR_GetResourcePath(), *INSTALL_FOLDER, SCRIPT_FILE)


def complete_menu_file(rpr: Any, script_path: str) -> None:
    """Write this action's command id into the .ReaperMenu next to the script (first run only).

    The shipped menu holds `MENU_PLACEHOLDER`: REAPER gives a script its id when it is loaded as an
    action, so no installer can know it. ``AddRemoveReaScript`` returns it (the existing action's id when
    the script is loaded already); ``ReverseNamedCommandLookup`` turns it into the ``RS...`` name a menu
    file uses (with a leading underscore there).
    """
    menu = os.path.join(os.path.dirname(script_path), MENU_FILE)
    try:
        with open(menu, encoding="utf-8") as handle:
            text = handle.read()
        if MENU_PLACEHOLDER not in text:
            return
        command = rpr.RPR_AddRemoveReaScript(True, 0, script_path, True)
        named = rpr.RPR_ReverseNamedCommandLookup(command) if command else ""
        if not named:
            return
        with open(menu, "w", encoding="utf-8") as handle:
            handle.write(text.replace(MENU_PLACEHOLDER, f"_{named.lstrip('_')}"))
    except OSError:
        return


def main(script_path: str | None = None) -> int:
    """The action: submit every selected item, then poll with defer. Returns how many were submitted."""
    rpr = _api()
    mismatch = python_mismatch()
    if mismatch:
        _console(mismatch)
    if IMPORT_PROBLEM is not None:
        message = f"Cannot import the visage client ({IMPORT_PROBLEM})."
        _console(message)
        rpr.RPR_ShowMessageBox(
            f"{message} {mismatch or 'Reinstall with `visage hosts install reaper`.'}", "ViSAGe", 0
        )
        return 0
    # The script's own path; REAPER may run it without setting __file__: then where the installer puts it.
    complete_menu_file(rpr, script_path or globals().get("__file__") or installed_path(rpr))
    items = [rpr.RPR_GetSelectedMediaItem(0, i) for i in range(rpr.RPR_CountSelectedMediaItems(0))]
    items = [item for item in items if not is_null(item)]
    if not items:
        rpr.RPR_ShowMessageBox("Select one or more media items (video, or audio with video).", "ViSAGe", 0)
        return 0
    default = (0.0, 0.0)
    if any(direction_curve.parse_direction_text(item_notes(rpr, item)) is None for item in items):
        asked = ask_direction(rpr)
        if asked is None:
            return 0
        default = asked
    try:
        address = host_client.locate_daemon(VISAGE_DAEMON, warn=_console)
    except ValueError as error:
        rpr.RPR_ShowMessageBox(f"Bad daemon address {VISAGE_DAEMON!r}: {error}", "ViSAGe", 0)
        return 0
    submitted = 0
    for item in items:
        job_id = host_client.new_job_id("reaper")
        try:
            request, span = build_request(rpr, item, default, job_id)
            job = host_client.HostJob(request, address, job_id=job_id).start(threaded=False)
        except ValueError as problem:  # media_range.RangeError too
            _console(str(problem))
            continue
        except (JobFailed, DaemonUnavailable) as error:
            message = host_client.describe_error(error, address)
            if isinstance(error, DaemonUnavailable):
                rpr.RPR_ShowMessageBox(message, "ViSAGe", 0)
                break
            _console(f"{request.label}: {message}")
            continue
        rate = float(rpr.RPR_GetMediaItemTakeInfo_Value(rpr.RPR_GetActiveTake(item), "D_PLAYRATE"))
        track = rpr.RPR_GetMediaItem_Track(item)
        track_number = int(rpr.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER"))
        _pending.append(
            Pending(
                job=job,
                label=request.label,
                position_s=rpr.RPR_GetMediaItemInfo_Value(item, "D_POSITION") + float(span.lead_in_s),
                length_s=float(span.media_range.duration_s) / rate,
                play_rate=rate,
                source_track_index=max(0, track_number - 1),
                source_track=track,
            )
        )
        if span.clamped:
            _console(f"{request.label}: the item runs past its source; generating up to the source's end")
        submitted += 1
    if submitted:
        _console(f"generating ambisonics for {submitted} item(s)")
        main_module = _main_module()
        main_module.RPR_atexit(ATEXIT_CODE)
        main_module.RPR_defer(DEFER_CODE)
    return submitted


def visage_reaper_poll() -> None:
    """Deferred: apply job events (a few ms of socket reads each), insert finished results."""
    rpr = _api()
    for pending in list(_pending):
        tracker = pending.job.poll()
        tenth = int(tracker.fraction * 10)
        if tenth != pending.shown_tenth and not tracker.finished:
            pending.shown_tenth = tenth
            _console(tracker.status_text)
        if not tracker.finished:
            continue
        _pending.remove(pending)
        pending.job.close()
        if tracker.result is None:
            error = tracker.error
            text = host_client.describe_failure(error.code, error.message) if error else "failed"
            _console(f"{pending.label}: {text}")
            continue
        try:
            _console(insert_result(rpr, pending, tracker.result.output))
        except (ValueError, OSError) as problem:
            _console(f"{pending.label}: {problem}")
    if _pending:
        _main_module().RPR_defer(DEFER_CODE)


def visage_reaper_atexit() -> None:
    """The action was terminated (or REAPER quits): ask the daemon to cancel what is still running."""
    for pending in list(_pending):
        pending.job.cancel()
        pending.job.poll()  # sends the cancel
        pending.job.close()
    _pending.clear()


if __name__ == "__main__":
    main()
