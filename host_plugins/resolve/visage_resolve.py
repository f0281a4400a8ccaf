"""ViSAGe: generate first-order ambisonics for the selected (or current) clip in DaVinci Resolve Studio.

visage-host-script (installed by `visage hosts install resolve` into Fusion/Scripts/Edit; run it from
Workspace > Scripts on the Edit page, with the ViSAGe daemon running: `visage serve`).

For each selected video item (Resolve 21.0.4+), or the item under the playhead, it sends the item's
media file and source range to the daemon, imports the returned 4-channel AmbiX WAV into the media
pool folder "ViSAGe Ambisonics", and places it on an ``adaptive4`` audio track at the item's record
frame, then re-reads the track to verify that it landed (Resolve silently drops an append that would
overlap another clip).

Direction: markers whose name or note says ``yaw=30 pitch=-5`` on the timeline item or its media pool
clip (several markers make a direction curve over the clip), else the same text in the clip's
"Comments" or "Description" metadata, else ``DEFAULT_YAW``/``DEFAULT_PITCH`` below.

The free edition of Resolve cannot run this flow (no external scripting; since 21.1 no Python menu
scripts): export the timeline as .otio, run `visage fill`, and import the result. The script says so.

Resolve runs the script in the Python it finds on the machine; `visage hosts install` records the
Python version of the environment it points the script at. With another version the script says so in
the Console, and what does not import there is skipped (ZeroConf discovery) or reported.
"""

from __future__ import annotations

import math
import os
import site
import sys
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypedDict, cast

# --- visage configuration (written by `visage hosts install`) ---
VISAGE_SITE_DIRS: list[str] = []
VISAGE_DAEMON = "auto"
VISAGE_PYTHON = ""  # major.minor of the Python that environment was installed for
# --- end of visage configuration ---

DEFAULT_YAW = 0.0  # degrees, positive to the left
DEFAULT_PITCH = 0.0  # degrees, positive up
OUTPUT_SUBFOLDER = "visage_ambisonics"  # next to the source media
MEDIA_POOL_FOLDER = "ViSAGe Ambisonics"
METADATA_FIELDS = ("Comments", "Description", "Keywords")
WAIT_TIMEOUT_S = 6 * 3600.0
RETIME_TOLERANCE_FRAMES = 2  # GetSourceStart/EndFrame are off by one on some items
FREE_EDITION = (
    "ViSAGe: this is the free edition of DaVinci Resolve (or external scripting is off). The scripted "
    "flow needs DaVinci Resolve Studio. With the free edition: File > Export > Timeline... as .otio, run "
    "`visage fill TIMELINE.otio`, then File > Import > Timeline... the filled .otio."
)


class ResolveProblem(Exception):
    """Something about the project or item that stops one clip (reported, the others go on)."""


class MarkerInfo(TypedDict, total=False):
    """A value of ``GetMarkers()`` (Blackmagic's scripting README: frameId -> this dict)."""

    color: str
    duration: float
    note: str
    name: str
    customData: str


class ClipInfo(TypedDict):
    """One element of ``MediaPool.AppendToTimeline([{clipInfo}, ...])`` as the README lists its keys."""

    mediaPoolItem: Any  # a MediaPoolItem (a native Resolve object)
    startFrame: int  # source frames at the clip's rate
    endFrame: int
    recordFrame: int  # absolute timeline frame
    trackIndex: int
    mediaType: int  # 1 video only, 2 audio only


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
            job_state,
            media_range,
            placement,
            result_files,
            wav_info,
        )
    else:
        from visage.host_plugins.common import (
            direction_curve,
            host_client,
            job_state,
            media_range,
            placement,
            result_files,
            wav_info,
        )
    from visage.bridge.client import DaemonUnavailable, JobFailed
except ImportError as error:  # e.g. a package compiled for another Python than Resolve's
    IMPORT_PROBLEM: ImportError | None = error
else:
    IMPORT_PROBLEM = None


def _console(text: str) -> None:
    print(f"ViSAGe: {text}")  # Workspace > Console


def python_mismatch() -> str | None:
    """Why imports from the recorded environment may fail: Resolve runs another Python version."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not VISAGE_PYTHON or VISAGE_PYTHON == running:
        return None
    return (
        f"Resolve runs Python {running}, but `visage hosts install` recorded Python {VISAGE_PYTHON} for "
        f"{', '.join(VISAGE_SITE_DIRS) or 'its environment'}: packages compiled for {VISAGE_PYTHON} do not "
        f"load here. Make Python {VISAGE_PYTHON} the one Resolve finds, or run `visage hosts install "
        f"resolve` from an environment with Python {running}."
    )


def get_resolve(namespace: dict[str, Any] | None = None) -> Any:
    """The ``resolve`` object Resolve gives menu scripts, else ``scriptapp`` (Studio only), else None."""
    app = (namespace if namespace is not None else globals()).get("resolve")
    if app is not None:
        return app
    try:
        import DaVinciResolveScript  # type: ignore[import-not-found]
    except ImportError:
        return None
    return DaVinciResolveScript.scriptapp("Resolve")


def _safe(call: Any, *args: Any) -> Any:
    """Call a Resolve method that may not exist in this version; None when it fails."""
    try:
        return call(*args)
    except Exception:
        return None


def is_free_edition(resolve: Any) -> bool:
    name = _safe(resolve.GetProductName)
    return isinstance(name, str) and bool(name) and "studio" not in name.lower()


def target_items(timeline: Any) -> list[Any]:
    """Selected video items (``GetSelectedClips``, Resolve 21.0.4+), else the current video item."""
    selected = _safe(timeline.GetSelectedClips)
    if isinstance(selected, (list, tuple)) and selected:
        video = []
        for item in selected:
            kind = _safe(item.GetTrackTypeAndIndex)
            if isinstance(kind, (list, tuple)) and kind and kind[0] == "video":
                video.append(item)
        if video:
            return video
    current = timeline.GetCurrentVideoItem()
    return [current] if current else []


def timeline_rate(project: Any, timeline: Any) -> Fraction:
    text = timeline.GetSetting("timelineFrameRate") or project.GetSetting("timelineFrameRate")
    try:
        return media_range.parse_rate(text)
    except media_range.RangeError:
        raise ResolveProblem(f"cannot read the timeline frame rate ({text!r})") from None


def direction_for(
    item: Any, media_item: Any, span: media_range.MediaRange, rate: Fraction
) -> tuple[tuple[direction_curve.CurveSample, ...], str]:
    """(samples, where they came from): markers, else clip metadata, else the defaults."""
    parse = direction_curve.parse_direction_text
    rows: dict[float, tuple[float, float]] = {}
    clip_rate = _clip_rate(media_item) or rate
    for owner, to_media_s in (
        (item, lambda frame: float(span.start_s + Fraction(frame) / rate)),  # offset from the item's start
        (media_item, lambda frame: float(Fraction(frame) / clip_rate)),  # source frame of the clip
    ):
        markers = _safe(owner.GetMarkers)
        if not isinstance(markers, dict):
            continue
        for frame, info in markers.items():
            if not isinstance(info, dict):
                continue
            marker = cast(MarkerInfo, info)  # the README's marker dict
            found = parse(" ".join(str(marker.get(key, "")) for key in ("name", "note", "customData")))
            if found is not None:
                rows[to_media_s(frame)] = found
    if rows:
        ordered = [(t, *rows[t]) for t in sorted(rows)]
        return direction_curve.build_curve(ordered), f"{len(ordered)} marker(s)"
    for field in METADATA_FIELDS:
        found = parse(_safe(media_item.GetMetadata, field))
        if found is not None:
            return direction_curve.build_curve([(span.start, *found)]), f"clip metadata {field!r}"
    return (
        direction_curve.build_curve([(span.start, DEFAULT_YAW, DEFAULT_PITCH)]),
        "the script's default (no yaw=/pitch= marker or metadata)",
    )


def _clip_rate(media_item: Any) -> Fraction | None:
    try:
        return media_range.parse_rate(media_item.GetClipProperty("FPS"))
    except (media_range.RangeError, TypeError):
        return None


def check_not_retimed(item: Any, media_item: Any, rate: Fraction) -> None:
    """Refuse speed-changed items: the source span differs from the record duration."""
    start, end = _safe(item.GetSourceStartFrame), _safe(item.GetSourceEndFrame)
    clip_rate = _clip_rate(media_item)
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)) or clip_rate is None:
        return
    source_s = Fraction(end - start) / clip_rate
    record_s = Fraction(item.GetDuration()) / rate
    if abs(source_s - record_s) > Fraction(RETIME_TOLERANCE_FRAMES) / rate:
        raise ResolveProblem(
            f"item {item.GetName()!r} is retimed (plays {float(source_s):.3f} s of source in "
            f"{float(record_s):.3f} s); remove the speed change or use the .otio round trip"
        )


def build_request(
    item: Any, project: Any, timeline: Any, job_id: str
) -> tuple[host_client.JobRequest, media_range.MediaRange]:
    """(JobRequest, MediaRange) for one timeline item."""
    media_item = item.GetMediaPoolItem()
    if not media_item:
        raise ResolveProblem(f"item {item.GetName()!r} has no media pool clip (title, generator, compound?)")
    path = media_item.GetClipProperty("File Path")
    if not path:
        raise ResolveProblem(f"item {item.GetName()!r} has no media file")
    rate = timeline_rate(project, timeline)
    check_not_retimed(item, media_item, rate)
    span = media_range.resolve_item_range(
        left_offset=item.GetLeftOffset(), duration=item.GetDuration(), timeline_rate=rate
    )
    samples, source = direction_for(item, media_item, span, rate)
    yaw, pitch = direction_curve.mean_direction(samples, span.start, span.end)
    folder = os.path.join(os.path.dirname(path), OUTPUT_SUBFOLDER)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        folder = ""  # read-only media folder: the daemon's own outputs folder
    output = curve = None
    if folder:
        paths = result_files.result_paths(folder, item.GetName() or "clip", job_id)
        output = str(paths.wav)
        if len(samples) > 1:
            curve = str(direction_curve.write_curve(paths.curve, samples))
    _console(f"{item.GetName()}: {path} [{span.start:.3f}, {span.end:.3f}] s, direction from {source}")
    request = host_client.JobRequest(
        media=path,
        start_s=span.start,
        end_s=span.end,
        yaw_deg=yaw,
        pitch_deg=pitch,
        output=output,
        direction_curve=curve,
        label=item.GetName() or "clip",
    )
    return request, span


def wait_for(job: host_client.HostJob) -> job_state.JobTracker:
    """Follow the job, printing progress to the Console; returns the tracker when it ended."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    shown = -1
    while not job.poll().finished:
        tenth = int(job.tracker.fraction * 10)
        if tenth != shown:
            shown = tenth
            _console(job.tracker.status_text)
        if time.monotonic() > deadline:
            job.cancel()
            deadline = math.inf
        time.sleep(0.05)
    return job.tracker


def media_pool_folder(media_pool: Any) -> Any:
    root = media_pool.GetRootFolder()
    for folder in root.GetSubFolderList() or []:
        if folder.GetName() == MEDIA_POOL_FOLDER:
            return folder
    return media_pool.AddSubFolder(root, MEDIA_POOL_FOLDER) or root


def audio_lanes(timeline: Any) -> list[placement.Lane]:
    lanes = []
    for index in range(1, int(timeline.GetTrackCount("audio") or 0) + 1):
        items = timeline.GetItemListInTrack("audio", index) or []
        spans = tuple((it.GetStart(), it.GetEnd()) for it in items)
        lanes.append(placement.Lane(index, spans, kind=timeline.GetTrackSubType("audio", index) or ""))
    return lanes


def place(result_path: str, item: Any, project_manager: Any, project: Any, timeline: Any) -> str:
    """Import the WAV and put it under ``item`` on an adaptive4 track; verify it is there."""
    media_pool = project.GetMediaPool()
    media_pool.SetCurrentFolder(media_pool_folder(media_pool))
    imported = media_pool.ImportMedia([result_path])
    if not imported:
        raise ResolveProblem(f"Resolve did not import {result_path}")
    clip = imported[0]
    clip_rate = _clip_rate(clip) or timeline_rate(project, timeline)  # WAVs take the project rate
    duration = wav_info.read_wav_info(result_path).duration_s
    frames = math.floor(duration * clip_rate)
    record = item.GetStart()
    track = placement.resolve_audio_track(audio_lanes(timeline), record, record + frames)
    if track is None:
        if not timeline.AddTrack("audio", placement.RESOLVE_AMBIX_TRACK_TYPE):
            raise ResolveProblem("Resolve refused to add an adaptive4 audio track")
        track = int(timeline.GetTrackCount("audio"))
        timeline.SetTrackName("audio", track, placement.AMBIX_TRACK_NAME)
    info = ClipInfo(
        mediaPoolItem=clip, startFrame=0, endFrame=frames, recordFrame=record, trackIndex=track, mediaType=2
    )
    appended = media_pool.AppendToTimeline([info])
    project_manager.SaveProject()
    landed = [
        it
        for it in timeline.GetItemListInTrack("audio", track) or []
        if it.GetStart() == record and _same_clip(it.GetMediaPoolItem(), clip)
    ]
    if not appended or not landed:
        raise ResolveProblem(
            f"Resolve did not place the result on audio track {track} at frame {record} (it drops clips "
            f"that would overlap another one). The file is in the media pool folder {MEDIA_POOL_FOLDER!r}: "
            f"{result_path}"
        )
    return f"placed on audio track A{track} ({placement.RESOLVE_AMBIX_TRACK_TYPE}) at frame {record}"


def _same_clip(a: Any, b: Any) -> bool:
    if not a or not b:
        return False
    id_a, id_b = _safe(a.GetMediaId), _safe(b.GetMediaId)
    return bool(id_a) and id_a == id_b


def main(resolve: Any = None) -> int:
    """Run the flow; returns 0 when every item got its ambisonics, 1 otherwise, 2 when nothing could run."""
    resolve = resolve if resolve is not None else get_resolve()
    if resolve is None or is_free_edition(resolve):
        print(FREE_EDITION)
        return 2
    mismatch = python_mismatch()
    if mismatch:
        _console(mismatch)
    if IMPORT_PROBLEM is not None:
        _console(
            f"cannot import the visage client ({IMPORT_PROBLEM}). "
            f"{mismatch or 'Reinstall with `visage hosts install resolve`.'}"
        )
        return 2
    project_manager = resolve.GetProjectManager()
    project = project_manager.GetCurrentProject() if project_manager else None
    timeline = project.GetCurrentTimeline() if project else None
    if not timeline:
        _console("open a project and a timeline first")
        return 2
    items = target_items(timeline)
    if not items:
        _console("select a video clip on the timeline, or park the playhead over one")
        return 2
    try:
        address = host_client.locate_daemon(VISAGE_DAEMON, warn=_console)
    except ValueError as error:
        _console(f"bad daemon address {VISAGE_DAEMON!r}: {error}")
        return 2
    failures = 0
    for item in items:
        job_id = host_client.new_job_id("resolve")
        try:
            request, _ = build_request(item, project, timeline, job_id)
            job = host_client.HostJob(request, address, job_id=job_id).start(threaded=False)
        except ResolveProblem as problem:
            _console(str(problem))
            failures += 1
            continue
        except (JobFailed, DaemonUnavailable) as failure:
            _console(f"{item.GetName()}: {host_client.describe_error(failure, address)}")
            failures += 1
            if isinstance(failure, DaemonUnavailable):
                break
            continue
        except (ValueError, OSError) as problem:  # after DaemonUnavailable (an OSError): a bad range, an
            # unwritable curve file; this item fails, the others go on
            _console(f"{item.GetName()}: {problem}")
            failures += 1
            continue
        tracker = wait_for(job)
        job.close()
        if tracker.result is None:
            failed = tracker.error
            text = host_client.describe_failure(failed.code, failed.message) if failed else "failed"
            _console(f"{item.GetName()}: {text}")
            failures += 1
            continue
        try:
            said = place(tracker.result.output, item, project_manager, project, timeline)
            _console(f"{item.GetName()}: {said}")
        except ResolveProblem as problem:
            _console(f"{item.GetName()}: {problem}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__" or "resolve" in globals():
    main()
