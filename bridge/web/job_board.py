"""`JobBoard`: the daemon's jobs as the page sees them (views of jobs and groups, and their files).

Reads the job store and the queue's live progress; knows where a job's files are (result, sidecar,
binaural preview, sound map) and whether they exist. Runs on the event loop (SQLite reads of at most
`const.WEB_JOBS_LISTED` rows, and a few ``stat`` calls per job).
"""

from __future__ import annotations

import time
from pathlib import Path

import visage.model.files.result_files as rf

from .. import const
from ..job_queue import JobQueue
from ..job_store import JobStore
from ..jobs import Job, JobState
from ..osc_protocol import Progress, Reply
from .job_views import group_view, job_progress, job_view, soundmap_path
from .soundmaps import SoundMaps

GROUPS_LISTED = 50


class JobBoard:
    def __init__(self, queue: JobQueue, store: JobStore, soundmaps: SoundMaps) -> None:
        self._queue = queue
        self._store = store
        self._soundmaps = soundmaps

    def job(self, job_id: str) -> Job | None:
        return self._store.get(job_id)

    @staticmethod
    def files(job: Job) -> dict[str, Path | None]:
        """The job's files by kind (`job_views.FILE_KINDS`), once it is done; None where it has none."""
        if job.state is not JobState.DONE or not job.output:
            return {"wav": None, "sidecar": None, "preview": None, "soundmap": None}
        output = Path(job.output)
        return {
            "wav": output,
            "sidecar": Path(job.metadata) if job.metadata else None,
            "preview": rf.preview_path(output),
            "soundmap": soundmap_path(output),
        }

    def view(self, job: Job, reply: Reply | None = None) -> dict[str, object]:
        running = (
            (reply.fraction, reply.stage) if isinstance(reply, Progress) else self._queue.progress_of(job.id)
        )
        files = self.files(job)
        present = {kind: path is not None and path.is_file() for kind, path in files.items()}
        return job_view(
            job,
            progress=job_progress(job, running),
            present=present,
            soundmap_state=self._soundmaps.state(job.id, files["soundmap"]),
        )

    def recent(self) -> list[dict[str, object]]:
        """Views of the newest jobs, newest first."""
        return [self.view(job) for job in self._store.recent(const.WEB_JOBS_LISTED)]

    def group(self, group: str) -> dict[str, object]:
        return group_view(group, self._store.in_group(group), time.time(), const.WEB_GROUP_IDLE_S)

    def groups(self) -> list[dict[str, object]]:
        """Views of the groups with the newest jobs, newest first."""
        return [self.group(group) for group in self._store.recent_groups(GROUPS_LISTED)]
