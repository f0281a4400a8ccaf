"""Jobs, pure: the `JobState` machine, the `Job` record and the batching policy.

States::

    accepted --prepare--> queued --take--> running --engine--> done | error | cancelled
        |  \\--cache hit--> done            |  \\--shutdown/crash--> queued (re-run)
        \\--------------- cancel/fail ------+--> cancelled | error

``accepted``: persisted, not yet looked up in the result cache (that hashes the media, off the
request path). ``queued``: waiting for a batch. ``running``: in an engine call. The last three are
terminal. On restart every non-terminal job resumes (``running`` goes back to ``queued``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from .engine import GenerateSpec


class JobState(str, Enum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.DONE, JobState.ERROR, JobState.CANCELLED})
PENDING_STATES = (JobState.ACCEPTED, JobState.QUEUED, JobState.RUNNING)

_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.ACCEPTED: frozenset({JobState.QUEUED, JobState.DONE, JobState.ERROR, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.ERROR, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.QUEUED, JobState.DONE, JobState.ERROR, JobState.CANCELLED}),
    JobState.DONE: frozenset(),
    JobState.ERROR: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A state change the machine does not allow (a bug, or a job finished twice)."""


def check_transition(old: JobState, new: JobState) -> None:
    """Raise `InvalidTransition` unless ``old -> new`` is an edge of the machine."""
    if new not in _TRANSITIONS[old]:
        raise InvalidTransition(f"job cannot go from {old.value} to {new.value}")


@dataclass(frozen=True)
class Job:
    """One job as persisted.

    Attributes:
        id: client-chosen (or daemon-chosen) id, unique in the state folder.
        seq: submission order (FIFO).
        state: where it is in the machine.
        spec: the validated inputs handed to the engine.
        fingerprint: canonical request parameters; resubmitting the same id with the same fingerprint
            is idempotent (UDP clients retry), with a different one is `duplicate_id`.
        reply_host, reply_port: where UDP events go (None when the client used a TCP connection).
        use_cache: look up / store the result cache.
        cache_key: set once prepared (content hash of media + parameters + model id).
        output, metadata: result files once done.
        cached: the result came from the cache.
        error_code, error_message: why it failed or was cancelled.
        attempts: engine runs started (a crash mid-run shows as attempts > 1).
        batch_size: size of the batch it last ran in (batch-fill statistics).
        source: who submitted it: "osc" (an OSC request) or "web" (the web page).
        group: the run it belongs to (e.g. ``fill:<edit>:<run id>``), shown as one line on the web page;
            group_label names the run for people, group_total is its number of jobs when known.
    """

    id: str
    seq: int
    state: JobState
    spec: GenerateSpec
    fingerprint: str
    reply_host: str | None = None
    reply_port: int | None = None
    use_cache: bool = True
    cache_key: str | None = None
    output: str | None = None
    metadata: str | None = None
    cached: bool = False
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    batch_size: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    source: str = "osc"
    group: str | None = None
    group_label: str | None = None
    group_total: int | None = None

    def moved(self, state: JobState, **changes: object) -> Job:
        """Return a copy in ``state`` with ``changes``, checking the transition."""
        check_transition(self.state, state)
        return replace(self, state=state, **changes)  # type: ignore[arg-type]


def select_batch(queued: Sequence[Job], key: Callable[[Job], Hashable], max_batch: int) -> list[Job]:
    """Pick the next batch: the oldest queued job plus the next-oldest jobs with the same key.

    The oldest job always runs next, so no job starves; others may overtake jobs with different keys.

    Args:
        queued: jobs in state ``queued``, oldest first.
        key: the engine's batch key of a job.
        max_batch: batch size limit (>= 1).
    """
    if not queued:
        return []
    head_key = key(queued[0])
    batch = [queued[0]]
    for job in queued[1:]:
        if len(batch) >= max_batch:
            break
        if key(job) == head_key:
            batch.append(job)
    return batch
