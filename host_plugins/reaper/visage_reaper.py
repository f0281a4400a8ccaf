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
stop them. ``visage_reaper.ReaperMenu`` (completed with this action's id on the first run) adds the
action to the media item context menu: Options > Customize menus/toolbars > Media item context > Import.
"""

from __future__ import annotations

import os
import re
import site
import sys
from dataclasses import dataclass
from typing import Any

# --- visage configuration (written by `visage hosts install`) ---
VISAGE_SITE_DIRS: list[str] = []
VISAGE_DAEMON = "auto"
# --- end of visage configuration ---

EXT_SECTION = "visage"  # REAPER ExtState section (remembered prompt values)
DEFER_CODE = "visage_reaper_poll()"  # REAPER's Python defer/atexit take code strings run in __main__
ATEXIT_CODE = "visage_reaper_atexit()"
OUTPUT_SUBFOLDER = "visage_ambisonics"  # in the project's media folder
MENU_FILE = "visage_reaper.ReaperMenu"
MENU_PLACEHOLDER = "_VISAGE_COMMAND_ID"
SOURCE_NAME_BYTES = 4096
UNDO_ALL = -1
_NULL = re.compile(r"0x0+$")


def _api() -> Any:
    import reaper_python  # type: ignore[import-not-found]  (REAPER's own module)

    return reaper_python


def is_null(pointer: Any) -> bool:
    """REAPER's Python API returns null pointers as strings such as ``(MediaItem*)0x0000000000000000``."""
    return not pointer or bool(_NULL.search(str(pointer)))


def _console(text: str) -> None:
    _api().RPR_ShowConsoleMsg(f"ViSAGe: {text}\n")


def _add_site_dirs() -> None:
    for folder in VISAGE_SITE_DIRS:
        if folder not in sys.path and os.path.isdir(folder):
            site.addsitedir(folder)


def _common() -> Any:
    _add_site_dirs()
    import importlib

    for name in ("direction_curve", "host_client", "media_range", "placement", "result_files", "wav_info"):
        importlib.import_module(f"visage.host_plugins.common.{name}")
    return sys.modules["visage.host_plugins.common"]


@dataclass
class Pending:
    """A submitted item and where its result goes."""

    job: Any
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
    rpr: Any, item: Any, default: tuple[float, float], common: Any, job_id: str
) -> tuple[Any, Any]:
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
    span = common.media_range.reaper_item_range(
        start_offset_s=rpr.RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
        length_s=rpr.RPR_GetMediaItemInfo_Value(item, "D_LENGTH"),
        play_rate=rpr.RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
        source_length_s=source_length,
        section_offset_s=section_offset,
    )
    yaw, pitch = common.direction_curve.parse_direction_text(item_notes(rpr, item)) or default
    folder = output_folder(rpr)
    output = str(common.result_files.result_paths(folder, label, job_id).wav) if folder else None
    request = common.host_client.JobRequest(
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


def track_lanes(rpr: Any, common: Any) -> list[Any]:
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
        lanes.append(common.placement.Lane(index, tuple(spans), channels=channels, name=name))
    return lanes


def source_track_index(rpr: Any, pending: Pending) -> int:
    """The item's track's index now (earlier results may have inserted tracks above it)."""
    track = pending.source_track
    if track is not None and rpr.RPR_ValidatePtr2(0, track, "MediaTrack*"):
        number = int(rpr.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER"))
        if number > 0:
            return number - 1
    return pending.source_track_index


def ambix_track(rpr: Any, pending: Pending, common: Any) -> tuple[Any, str]:
    """An AmbiX track free over the result (existing, else inserted below the item's track)."""
    end = pending.position_s + pending.length_s
    index = common.placement.reaper_ambix_track(track_lanes(rpr, common), pending.position_s, end)
    if index is not None:
        return rpr.RPR_GetTrack(0, index), f"track {index + 1}"
    index = source_track_index(rpr, pending) + 1
    rpr.RPR_InsertTrackAtIndex(index, True)
    track = rpr.RPR_GetTrack(0, index)
    rpr.RPR_SetMediaTrackInfo_Value(track, "I_NCHAN", common.placement.AMBIX_CHANNELS)
    rpr.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", common.placement.AMBIX_TRACK_NAME, True)
    return track, f"new track {index + 1}"


def insert_result(rpr: Any, pending: Pending, path: str, common: Any) -> str:
    """Add the AmbiX file as an item at the source item's position and play rate."""
    channels = common.wav_info.read_wav_info(path).channels
    rpr.RPR_Undo_BeginBlock2(0)
    rpr.RPR_PreventUIRefresh(1)
    try:
        track, where = ambix_track(rpr, pending, common)
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


def complete_menu_file(rpr: Any, script_path: str | None) -> None:
    """Write this action's command id into the .ReaperMenu next to the script (first run only)."""
    if not script_path:
        return
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
    try:
        common = _common()
    except ImportError as error:
        rpr.RPR_ShowMessageBox(
            f"Cannot import the visage client ({error}). Reinstall with `visage hosts install reaper`.",
            "ViSAGe",
            0,
        )
        return 0
    complete_menu_file(rpr, script_path if script_path is not None else globals().get("__file__"))
    items = [rpr.RPR_GetSelectedMediaItem(0, i) for i in range(rpr.RPR_CountSelectedMediaItems(0))]
    items = [item for item in items if not is_null(item)]
    if not items:
        rpr.RPR_ShowMessageBox("Select one or more media items (video, or audio with video).", "ViSAGe", 0)
        return 0
    default = (0.0, 0.0)
    if any(common.direction_curve.parse_direction_text(item_notes(rpr, item)) is None for item in items):
        asked = ask_direction(rpr)
        if asked is None:
            return 0
        default = asked
    host_client = common.host_client
    client = host_client.bridge()
    try:
        address = host_client.locate_daemon(VISAGE_DAEMON)
    except ValueError as error:
        rpr.RPR_ShowMessageBox(f"Bad daemon address {VISAGE_DAEMON!r}: {error}", "ViSAGe", 0)
        return 0
    submitted = 0
    for item in items:
        job_id = host_client.new_job_id("reaper")
        try:
            request, span = build_request(rpr, item, default, common, job_id)
            job = host_client.HostJob(request, address, job_id=job_id).start(threaded=False)
        except (ValueError, common.media_range.RangeError) as problem:
            _console(str(problem))
            continue
        except (client.JobFailed, client.DaemonUnavailable) as error:
            message = host_client.describe_error(error, address)
            if isinstance(error, client.DaemonUnavailable):
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
        rpr.RPR_atexit(ATEXIT_CODE)
        rpr.RPR_defer(DEFER_CODE)
    return submitted


def visage_reaper_poll() -> None:
    """Deferred: apply job events (a few ms of socket reads each), insert finished results."""
    rpr = _api()
    common = _common()
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
            text = common.host_client.describe_failure(error.code, error.message) if error else "failed"
            _console(f"{pending.label}: {text}")
            continue
        try:
            _console(insert_result(rpr, pending, tracker.result.output, common))
        except (ValueError, OSError) as problem:
            _console(f"{pending.label}: {problem}")
    if _pending:
        rpr.RPR_defer(DEFER_CODE)


def visage_reaper_atexit() -> None:
    """The action was terminated (or REAPER quits): ask the daemon to cancel what is still running."""
    for pending in list(_pending):
        pending.job.cancel()
        pending.job.poll()  # sends the cancel
        pending.job.close()
    _pending.clear()


if __name__ == "__main__":
    main()
