"""Job state changes told to other systems. The store calls these after each write that
changes a job (one home: every function that changes a job does so through the store).

Publishing is best effort: it never fails the write that caused it.
"""

from __future__ import annotations

from typing import Protocol

from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import Settings


class JobEvents(Protocol):
    def changed(self, job: Job) -> None:
        """The job's state changed (created, started, continued, finished, a cancel asked)."""
        ...

    def progressed(self, job: Job) -> None:
        """The job's progress changed (the publisher may drop some: at most one every few
        seconds per job)."""
        ...


class NoEvents:
    """Nothing is published (no event bus configured)."""

    def changed(self, job: Job) -> None:
        return None

    def progressed(self, job: Job) -> None:
        return None


def events_from_settings(settings: Settings) -> JobEvents:
    return NoEvents()
