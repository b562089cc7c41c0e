"""The job state machine: which transitions exist. It is the one source: the store builds the
status condition of every write that moves a job from this table (store/expressions.py)."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# pending -> failed covers a job that could not be queued, whose message could not be parsed,
# or whose message was dead-lettered. running -> running is a re-claim after an expired lease,
# the next segment's claim after a hand-off, or a cancel asked of a running job.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: JobStatus) -> tuple[JobStatus, ...]:
    """The states a job may be in for a write that moves it to ``target``."""
    return tuple(s for s, targets in TRANSITIONS.items() if target in targets)
