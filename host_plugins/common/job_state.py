"""The life of one host job as the host's UI sees it: a small state machine fed by events.

The driver (a worker thread in Blender, a deferred poll in REAPER) turns daemon replies into events;
the host's main thread applies them with `JobTracker.apply` and draws `status_text`. Events that make
no sense in the current phase (progress after the end, a second terminal event) are ignored and
reported as such, so a late or repeated UDP datagram cannot resurrect a finished job.

    SUBMITTING --accepted--> QUEUED --progress--> RUNNING --finished--> DONE
         \\______________________\\__________________\\--failed--> FAILED (code "cancelled": CANCELLED)
    any live phase --cancel requested--> CANCELLING (then the daemon's terminal event decides)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class JobPhase(enum.Enum):
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_PHASES = frozenset({JobPhase.DONE, JobPhase.FAILED, JobPhase.CANCELLED})
CANCELLED_CODE = "cancelled"  # the daemon's error code for a cancelled job


@dataclass(frozen=True)
class Accepted:
    queue_ahead: int


@dataclass(frozen=True)
class Progressed:
    fraction: float
    stage: str


@dataclass(frozen=True)
class Finished:
    output: str
    metadata: str
    cached: bool = False


@dataclass(frozen=True)
class Failed:
    code: str
    message: str


@dataclass(frozen=True)
class CancelRequested:
    pass


JobEvent = Accepted | Progressed | Finished | Failed | CancelRequested


class JobTracker:
    """What the UI knows about one job. Not thread-safe: apply events on the host's main thread.

    Args:
        label: what the job is for, as the user would say it (a strip or item name).
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.phase = JobPhase.SUBMITTING
        self.fraction = 0.0
        self.stage = ""
        self.queue_ahead = 0
        self.result: Finished | None = None
        self.error: Failed | None = None

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def apply(self, event: JobEvent) -> bool:
        """Apply one event; return False if it was ignored (it made no sense in the current phase)."""
        if self.finished:
            return False
        if isinstance(event, CancelRequested):
            self.phase = JobPhase.CANCELLING
        elif isinstance(event, Accepted):
            if self.phase is not JobPhase.SUBMITTING:
                return False
            self.phase, self.queue_ahead = JobPhase.QUEUED, max(0, int(event.queue_ahead))
        elif isinstance(event, Progressed):
            self.fraction = min(1.0, max(self.fraction, float(event.fraction)))
            self.stage = event.stage
            if self.phase is not JobPhase.CANCELLING:
                self.phase = JobPhase.RUNNING
        elif isinstance(event, Finished):
            self.phase, self.fraction, self.result = JobPhase.DONE, 1.0, event
        elif isinstance(event, Failed):
            self.error = event
            self.phase = JobPhase.CANCELLED if event.code == CANCELLED_CODE else JobPhase.FAILED
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not a job event: {event!r}")
        return True

    @property
    def status_text(self) -> str:
        """One line for a status bar or panel."""
        if self.phase is JobPhase.SUBMITTING:
            return f"{self.label}: submitting"
        if self.phase is JobPhase.QUEUED:
            ahead = f" ({self.queue_ahead} ahead)" if self.queue_ahead else ""
            return f"{self.label}: queued{ahead}"
        if self.phase is JobPhase.RUNNING:
            return f"{self.label}: {self.stage or 'running'} {round(100 * self.fraction)}%"
        if self.phase is JobPhase.CANCELLING:
            return f"{self.label}: cancelling"
        if self.phase is JobPhase.DONE:
            cached = " (from cache)" if self.result is not None and self.result.cached else ""
            return f"{self.label}: done{cached}"
        if self.phase is JobPhase.CANCELLED:
            return f"{self.label}: cancelled"
        message = self.error.message if self.error is not None else "unknown error"
        return f"{self.label}: failed: {message}"
