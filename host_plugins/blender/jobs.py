"""Running jobs, the timer that follows them, and what happens when one ends.

Each job's worker thread (``common.host_client.HostJob``) only talks to the daemon; this module's
`poll_jobs` runs on Blender's main thread from ``bpy.app.timers`` and is the only code that touches
Blender data for a job: it applies progress, places the result as sound strips, and reports.

The timer is registered while jobs run and unregistered when the last one ends, when jobs are
cancelled, and by `shutdown` (called from the add-on's ``unregister``): a timer still registered when a
headless (module-mode) Blender exits hangs the process.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import bpy

from . import scene_data
from .common import host_client, job_state, placement, result_files, wav_info

POLL_INTERVAL_S = 0.25
MAX_MESSAGES = 8


@dataclass
class ActiveJob:
    """A submitted job and where its result goes."""

    job: host_client.HostJob
    scene_name: str  # the sequencer scene
    strip_name: str
    record_frame: int  # the source strip's first visible frame
    source_channel: int
    mute_ambix_with_preview: bool


_jobs: list[ActiveJob] = []
messages: deque[tuple[str, str]] = deque(maxlen=MAX_MESSAGES)  # (level, text), newest last


def active_jobs() -> list[ActiveJob]:
    return list(_jobs)


def notify(level: str, text: str) -> None:
    """Keep a message for the panel and print it (timers cannot use ``Operator.report``)."""
    messages.append((level, text))
    print(f"ViSAGe {level.lower()}: {text}")


def add(entry: ActiveJob) -> None:
    _jobs.append(entry)
    if not bpy.app.timers.is_registered(poll_jobs):
        # persistent: a job keeps being followed when another .blend is opened (its result is then
        # reported, not placed, if its scene is gone)
        bpy.app.timers.register(poll_jobs, first_interval=POLL_INTERVAL_S, persistent=True)
    _redraw()


def cancel(job_id: str | None = None) -> int:
    """Ask the daemon to cancel one job (or all); returns how many were asked."""
    count = 0
    for entry in _jobs:
        if job_id is None or entry.job.job_id == job_id:
            entry.job.cancel()
            count += 1
    return count


def poll_jobs() -> float | None:
    """Timer callback: apply events, finish ended jobs; None (= unregister) when none is left."""
    for entry in list(_jobs):
        tracker = entry.job.poll()
        if tracker.finished:
            _jobs.remove(entry)
            entry.job.close()
            _finish(entry, tracker)
    _redraw()
    return POLL_INTERVAL_S if _jobs else None


def shutdown() -> None:
    """Cancel every job, stop their threads and unregister the timer (add-on unregister)."""
    for entry in _jobs:
        entry.job.close()
    _jobs.clear()
    if bpy.app.timers.is_registered(poll_jobs):
        bpy.app.timers.unregister(poll_jobs)


def _finish(entry: ActiveJob, tracker: job_state.JobTracker) -> None:
    if tracker.phase is job_state.JobPhase.CANCELLED:
        notify("INFO", f"{entry.strip_name}: cancelled")
        return
    if tracker.phase is not job_state.JobPhase.DONE or tracker.result is None:
        error = tracker.error
        text = host_client.describe_failure(error.code, error.message) if error else "failed"
        notify("ERROR", f"{entry.strip_name}: {text}")
        return
    try:
        placed = place_result(entry, tracker.result)
    except (RuntimeError, ValueError, OSError) as error:
        notify(
            "ERROR", f"{entry.strip_name}: generated {tracker.result.output} but could not place it: {error}"
        )
        return
    notify("INFO", f"{entry.strip_name}: {placed}")


def place_result(entry: ActiveJob, result: job_state.Finished) -> str:
    """Add the AmbiX file (and the binaural preview, if the daemon made one) as sound strips.

    Returns:
        A sentence saying where the strips went.
    """
    scene = bpy.data.scenes.get(entry.scene_name)
    if scene is None or scene.sequence_editor is None:
        raise ValueError(f"scene {entry.scene_name!r} or its sequencer is gone")
    editor = scene.sequence_editor
    frames = _length_in_frames(result.output, scene)
    start, end = entry.record_frame, entry.record_frame + frames
    occupied = scene_data.occupied_spans(editor)
    channel = placement.blender_sound_channel(occupied, start, end, above=entry.source_channel)
    if channel is None:
        raise ValueError(f"no free channel at frames {start}..{end}")
    ambix = scene_data.add_sound_strip(editor, f"{entry.strip_name} AmbiX", result.output, channel, start)
    said = f"AmbiX on channel {channel} at frame {start}"
    preview = result_files.preview_path(result.metadata)
    if preview is not None:
        occupied.append((channel, start, end))
        preview_channel = placement.blender_sound_channel(occupied, start, end, above=channel)
        if preview_channel is not None:
            scene_data.add_sound_strip(
                editor, f"{entry.strip_name} binaural", str(preview), preview_channel, start
            )
            said += f", binaural preview on channel {preview_channel}"
            if entry.mute_ambix_with_preview:
                ambix.mute = True  # Blender would play the 4 AmbiX channels as quad speakers
                said += " (AmbiX strip muted for monitoring)"
    return said


def _length_in_frames(path: str, scene: Any) -> int:
    info = wav_info.read_wav_info(path)
    return max(1, math.ceil(info.duration_s * scene_data.scene_rate(scene)))


def _redraw() -> None:
    window_manager = getattr(bpy.context, "window_manager", None)
    for window in getattr(window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()
