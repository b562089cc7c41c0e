"""The fencing of a claimed run's writes (the attempt its claim set), and the endings of a
run whose worker is gone: its lease expired, or its last segment handed the job off. Shared by
the run's own writes (runs.py), a claim, the API's cancel and the sweeper."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import texts
from kedro_jobs.core.store.expressions import Cond, before, eq, moving
from kedro_jobs.core.store.items import AttributeValue, encode, from_item, status_change
from kedro_jobs.core.store.table import Table

NOT_CANCELLED = eq("cancel_requested", False)


@dataclass(frozen=True)
class Fence:
    """The fencing condition of the run that claimed ``job``: the job is still running on
    the attempt that claim set."""

    job: Job

    def to(self, target: JobStatus) -> Cond:
        """The condition of this run's write moving the job to ``target``."""
        return moving(JobStatus.RUNNING, target) & eq("attempts", self.job.attempts)

    def held_by(self, item: dict[str, AttributeValue]) -> bool:
        """Whether ``item`` (as a failed write found it) is still this run's."""
        return item.get("status") == encode("status", JobStatus.RUNNING) and item.get(
            "attempts"
        ) == encode("attempts", self.job.attempts)


def abandoned(now: float) -> Cond:
    """No live worker holds the job: its lease expired, or its last segment handed it off."""
    return before("lease_expires_at", now) | eq("handed_off", True)


class Abandoned(Table):
    """The endings of a run whose worker is gone (its lease expired, or it handed the job
    off): shared by a claim, the API's cancel and the sweeper, so private here; the
    sweeper's role (roles/sweep.py) names them."""

    def _fail_exhausted(self, job: Job, max_attempts: int) -> Job | None:
        """A running job whose lease expired on its last allowed attempt: failed, saying so
        (None if it changed meanwhile)."""
        message = texts.gave_up(job.attempts, max_attempts)
        return self._end_abandoned(job, JobStatus.FAILED, message)

    def _cancel_abandoned(self, job: Job) -> Job | None:
        """A running job with a cancel asked and no live consumer (its lease expired, or it
        is between two segments): it ends cancelled now, and a later claim finds it finished
        (None if it changed)."""
        message = texts.cancelled_abandoned(job.handed_off)
        return self._end_abandoned(job, JobStatus.CANCELLED, message)

    def _end_abandoned(self, job: Job, status: JobStatus, message: str) -> Job | None:
        values = {**status_change(job.user_id, status), "error_message": message}
        when = Fence(job).to(status) & abandoned(time.time())
        attrs = self._update(job.id, values, when)
        return self._changed(from_item(attrs, lenient=True)) if attrs else None
