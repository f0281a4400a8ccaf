"""What the page sees of jobs and groups, pure: `Job` -> JobView, a group's jobs -> GroupView (JSON).

JobView: ``id, state, progress, stage, source, media, start_s, end_s, yaw_deg, pitch_deg, curve, seed, output,
cache_hit, error {code, message} | null, group, created_at, updated_at, files {wav, sidecar, preview,
soundmap}, soundmap_state``. GroupView: ``id, label, total, done, failed, running, queued, eta_s,
state``. File URLs are the API's; which files exist is the caller's to say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from ..jobs import Job, JobState

FILE_KINDS = ("wav", "sidecar", "preview", "soundmap")
SOUNDMAP_SUFFIX = ".soundmap.mp4"
RUN_COMMANDS = ("fill", "batch")  # a group id ``<command>:...`` is a run of `visage fill` or `visage batch`
_WAITING = (JobState.ACCEPTED, JobState.QUEUED)
_FAILED = (JobState.ERROR, JobState.CANCELLED)


def soundmap_path(output: Path) -> Path:
    """Where a result's sound-map video goes: ``clip.wav`` -> ``clip.soundmap.mp4``."""
    return output.with_name(output.stem + SOUNDMAP_SUFFIX)


def file_url(job_id: str, kind: str) -> str:
    return f"/api/jobs/{quote(job_id, safe='')}/files/{kind}"


def job_source(job: Job) -> str:
    """``fill`` (``batch``) for the jobs of a `visage fill` (`visage batch`) run through the daemon, else
    who submitted it (``osc``, ``web``)."""
    command = (job.group or "").partition(":")[0]
    return command if command in RUN_COMMANDS else job.source


def job_progress(job: Job, running: tuple[float, str] | None) -> tuple[float, str | None]:
    """(fraction 0..1, stage) of a job; ``running`` is the queue's latest for a running job."""
    if job.state is JobState.RUNNING:
        return running if running is not None else (0.0, "running")
    return (1.0, None) if job.state is JobState.DONE else (0.0, None)


def job_view(
    job: Job,
    *,
    progress: tuple[float, str | None],
    present: Mapping[str, bool],
    soundmap_state: str | None,
) -> dict[str, object]:
    """The JobView of ``job``; ``present`` says which of `FILE_KINDS` exist on disk."""
    spec = job.spec
    failed = job.state in _FAILED
    return {
        "id": job.id,
        "state": job.state.value,
        "progress": progress[0],
        "stage": progress[1],
        "source": job_source(job),
        "media": str(spec.media),
        "start_s": spec.start,
        "end_s": spec.end,
        "yaw_deg": spec.yaw,
        "pitch_deg": spec.pitch,
        "curve": None if spec.direction_curve is None else str(spec.direction_curve),
        "seed": spec.seed,
        "output": job.output or str(spec.output),
        "cache_hit": job.cached,
        "error": {"code": job.error_code or "", "message": job.error_message or ""} if failed else None,
        "group": job.group,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "files": {kind: file_url(job.id, kind) if present.get(kind) else None for kind in FILE_KINDS},
        "soundmap_state": soundmap_state,
    }


def group_view(group: str, jobs: Sequence[Job], now: float, idle_s: float) -> dict[str, object]:
    """The GroupView of one group's jobs (oldest first).

    Time left: the jobs still to finish (``group_total`` minus those finished, else those pending) at
    the pace of the group so far (finished jobs over the time since its first job was submitted).
    A group with jobs still to come (fewer than ``group_total`` submitted, none pending) is running
    for ``idle_s`` after its last change: `visage fill` submits its shots batch by batch.
    """
    counts = {state: 0 for state in JobState}
    for job in jobs:
        counts[job.state] += 1
    latest = jobs[-1] if jobs else None
    total = None if latest is None else latest.group_total
    done = counts[JobState.DONE]
    failed = sum(counts[s] for s in _FAILED)
    running = counts[JobState.RUNNING]
    queued = sum(counts[s] for s in _WAITING)
    finished = done + failed
    remaining = max(0, total - finished) if total is not None else running + queued
    last_change = max((job.updated_at for job in jobs), default=now)
    to_come = total is not None and len(jobs) < total and now - last_change < idle_s
    state = "running" if running + queued > 0 or to_come else "finished"
    eta: float | None = None
    if state == "running" and finished > 0 and jobs:
        elapsed = max(job.updated_at for job in jobs if job.state.terminal) - jobs[0].created_at
        if elapsed > 0:
            eta = remaining * elapsed / finished
    return {
        "id": group,
        "label": (latest.group_label if latest is not None else None) or group,
        "total": total,
        "done": done,
        "failed": failed,
        "running": running,
        "queued": queued,
        "eta_s": eta,
        "state": state,
    }
